// Tensors to 8-bit images and back, and image grids: plain arithmetic on pixels (no files, no `node:` imports), so
// the browser entry has them too. Reading and writing image files is image.ts (Node.js).
import { ArgumentError } from "../tensor/errors.js";
import { Tensor } from "../tensor/tensor.js";

/** An 8-bit image, rows top to bottom, channels interleaved (1 = gray, 3 = RGB, 4 = RGBA). */
export interface Image {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3 | 4;
  readonly data: Uint8Array;
}

/**
 * Converts a [C, H, W] or [1, C, H, W] tensor (C = 1, 3 or 4) to an 8-bit image. Values are mapped from
 * `range` (default [-1, 1], the diffusion convention) to 0..255, clamped and rounded (round half to even, as
 * `(x * 255).round()` in PyTorch).
 */
export function tensorToImage(t: Tensor, range: [number, number] = [-1, 1]): Image {
  const shape = t.ndim === 4 && t.shape[0] === 1 ? t.shape.slice(1) : t.shape;
  if (shape.length !== 3 || ![1, 3, 4].includes(shape[0]!)) {
    throw new ArgumentError(
      `tensorToImage: expected [C, H, W] with C = 1, 3 or 4, got [${t.shape.join(", ")}]`,
    );
  }
  const [c, h, w] = shape as [1 | 3 | 4, number, number];
  return pixelsToImage(t.toFloat32Array(), c, h, w, range);
}

/**
 * Converts a batch [B, C, H, W] (C = 1, 3 or 4) to B images, reading the tensor back once, from any device
 * (see {@link tensorToImage} for the value mapping).
 */
export async function tensorToImages(t: Tensor, range: [number, number] = [-1, 1]): Promise<Image[]> {
  checkImageBatch(t.shape);
  return imagesFromPixels(await t.toFloat32ArrayAsync(), t.shape, range);
}

function checkImageBatch(shape: readonly number[]): void {
  if (shape.length !== 4 || ![1, 3, 4].includes(shape[1]!)) {
    throw new ArgumentError(
      `expected an image batch [B, C, H, W] with C = 1, 3 or 4, got [${shape.join(", ")}]`,
    );
  }
}

/** B images from the values of a batch [B, C, H, W] already read back (see {@link tensorToImages}). */
export function imagesFromPixels(
  pixels: Float32Array,
  shape: readonly number[],
  range: [number, number] = [-1, 1],
): Image[] {
  checkImageBatch(shape);
  const [b, c, h, w] = shape as [number, 1 | 3 | 4, number, number];
  const plane = c * h * w;
  return Array.from({ length: b }, (_, i) =>
    pixelsToImage(pixels.subarray(i * plane, (i + 1) * plane), c, h, w, range),
  );
}

/** Planar float pixels [C, H, W] in `range` to an interleaved 8-bit image. */
function pixelsToImage(
  src: Float32Array,
  c: 1 | 3 | 4,
  h: number,
  w: number,
  range: [number, number],
): Image {
  const data = new Uint8Array(c * h * w);
  const [lo, hi] = range;
  const scale = 1 / (hi - lo);
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < h * w; i++) {
      const v = Math.min(Math.max((src[ch * h * w + i]! - lo) * scale, 0), 1);
      data[i * c + ch] = roundHalfEven(Math.fround(v * 255));
    }
  }
  return { width: w, height: h, channels: c, data };
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Converts an image to a [1, C, H, W] float32 tensor with values mapped to `range` (default [-1, 1]). */
export function imageToTensor(image: Image, range: [number, number] = [-1, 1], channels?: 1 | 3): Tensor {
  const c = channels ?? (image.channels === 1 ? 1 : 3);
  const { width: w, height: h } = image;
  const out = new Float32Array(c * h * w);
  const [lo, hi] = range;
  for (let i = 0; i < h * w; i++) {
    for (let ch = 0; ch < c; ch++) {
      let v: number;
      if (image.channels === 1) v = image.data[i]!;
      else if (c === 1)
        v =
          0.299 * image.data[i * image.channels]! +
          0.587 * image.data[i * image.channels + 1]! +
          0.114 * image.data[i * image.channels + 2]!;
      else v = image.data[i * image.channels + ch]!;
      out[ch * h * w + i] = lo + (v / 255) * (hi - lo);
    }
  }
  return Tensor.fromStorage(out, [1, c, h, w], "float32");
}

/** Tiles equally sized images into a grid (`columns` wide, default ceil(sqrt(n))), with `gap` pixels between. */
export function imageGrid(images: readonly Image[], columns?: number, gap = 2, background = 0): Image {
  if (images.length === 0) throw new ArgumentError("imageGrid: no images");
  const { width, height, channels } = images[0]!;
  for (const im of images) {
    if (im.width !== width || im.height !== height || im.channels !== channels) {
      throw new ArgumentError("imageGrid: all images must have the same size and channels");
    }
  }
  const cols = columns ?? Math.ceil(Math.sqrt(images.length));
  const rows = Math.ceil(images.length / cols);
  const W = cols * width + (cols - 1) * gap;
  const H = rows * height + (rows - 1) * gap;
  const data = new Uint8Array(W * H * channels).fill(background);
  images.forEach((im, k) => {
    const x0 = (k % cols) * (width + gap);
    const y0 = Math.floor(k / cols) * (height + gap);
    for (let y = 0; y < height; y++) {
      data.set(
        im.data.subarray(y * width * channels, (y + 1) * width * channels),
        ((y0 + y) * W + x0) * channels,
      );
    }
  });
  return { width: W, height: H, channels, data };
}
