import { readFileSync } from "node:fs";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { ArgumentError, DiffuseError } from "../tensor/errors.js";
import { Tensor } from "../tensor/tensor.js";
import { writeFileAtomic } from "./atomic.js";

/** An 8-bit image, rows top to bottom, channels interleaved (1 = gray, 3 = RGB, 4 = RGBA). */
export interface Image {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3 | 4;
  readonly data: Uint8Array;
}

/** A decoded image file, with the text chunks of a PNG (e.g. A1111's `parameters`). */
export interface DecodedImage extends Image {
  readonly text: Record<string, string>;
}

/** An image file that could not be read or written. */
export class ImageError extends DiffuseError {}

// --- PNG chunks ------------------------------------------------------------------------------------------------

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** An `iTXt` chunk (UTF-8 text, uncompressed), which A1111 and ComfyUI read like `tEXt`. */
function textChunk(keyword: string, text: string): Buffer {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword))
    throw new ArgumentError(`PNG text keyword must be 1-79 Latin-1 printable characters, got "${keyword}"`);
  // Plain Latin-1 text goes in tEXt (the most widely read form); anything else in iTXt as UTF-8.
  const latin1 = [...text].every((ch) => ch.charCodeAt(0) <= 0xff && ch !== "\0");
  const type = latin1 ? "tEXt" : "iTXt";
  const body = latin1
    ? Buffer.concat([Buffer.from(keyword, "latin1"), Buffer.from([0]), Buffer.from(text, "latin1")])
    : Buffer.concat([
        Buffer.from(keyword, "latin1"),
        Buffer.from([0, 0, 0, 0, 0]),
        Buffer.from(text, "utf8"),
      ]);
  const chunk = Buffer.alloc(12 + body.length);
  chunk.writeUInt32BE(body.length, 0);
  chunk.write(type, 4, "latin1");
  body.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + body.length)), 8 + body.length);
  return chunk;
}

/** Reads the tEXt/iTXt chunks of a PNG file's bytes. */
export function readPngText(bytes: Uint8Array): Record<string, string> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(PNG_SIGNATURE))
    throw new ImageError("not a PNG file (bad signature)");
  const text: Record<string, string> = {};
  let pos = 8;
  while (pos + 12 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    if (pos + 12 + len > buf.length)
      throw new ImageError(`truncated PNG: chunk ${type} runs past the end of the file`);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (type === "tEXt") {
      const z = body.indexOf(0);
      if (z > 0) text[body.toString("latin1", 0, z)] = body.toString("latin1", z + 1);
    } else if (type === "iTXt") {
      const z = body.indexOf(0);
      const compressed = body[z + 1] === 1;
      // skip compression flag/method, then language tag and translated keyword (both NUL-terminated)
      const lang = body.indexOf(0, z + 3);
      const translated = lang >= 0 ? body.indexOf(0, lang + 1) : -1;
      if (z > 0 && translated >= 0 && !compressed)
        text[body.toString("latin1", 0, z)] = body.toString("utf8", translated + 1);
    } else if (type === "IEND") {
      break;
    }
    pos += 12 + len;
  }
  return text;
}

/** Encodes an image as PNG, with optional text chunks (inserted before the image data). */
export function encodePng(image: Image, text: Record<string, string> = {}): Buffer {
  checkImage(image);
  const png = new PNG({ width: image.width, height: image.height, colorType: 6, inputHasAlpha: true });
  const n = image.width * image.height;
  const src = image.data;
  const dst = png.data;
  for (let i = 0; i < n; i++) {
    const c = image.channels;
    const r = src[i * c]!;
    dst[i * 4] = r;
    dst[i * 4 + 1] = c === 1 ? r : src[i * c + 1]!;
    dst[i * 4 + 2] = c === 1 ? r : src[i * c + 2]!;
    dst[i * 4 + 3] = c === 4 ? src[i * c + 3]! : 255;
  }
  const encoded = PNG.sync.write(png, { colorType: image.channels === 4 ? 6 : image.channels === 1 ? 0 : 2 });
  const entries = Object.entries(text);
  if (entries.length === 0) return encoded;
  // IHDR is always the first chunk: 8 (signature) + 12 + 13 bytes.
  const afterHeader = 8 + 12 + 13;
  return Buffer.concat([
    encoded.subarray(0, afterHeader),
    ...entries.map(([k, v]) => textChunk(k, v)),
    encoded.subarray(afterHeader),
  ]);
}

/** Decodes a PNG or JPEG file's bytes to RGB (or RGBA when the PNG has transparency), with PNG text chunks. */
export function decodeImage(bytes: Uint8Array, name = "image"): DecodedImage {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (buf.subarray(0, 8).equals(PNG_SIGNATURE)) {
      const png = PNG.sync.read(buf);
      let hasAlpha = false;
      for (let i = 3; i < png.data.length; i += 4) {
        if (png.data[i] !== 255) {
          hasAlpha = true;
          break;
        }
      }
      const channels = hasAlpha ? 4 : 3;
      const data = hasAlpha ? new Uint8Array(png.data) : stripAlpha(png.data, png.width * png.height);
      return { width: png.width, height: png.height, channels, data, text: readPngText(buf) };
    }
    if (buf[0] === 0xff && buf[1] === 0xd8) {
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 2048 });
      return {
        width: img.width,
        height: img.height,
        channels: 3,
        data: stripAlpha(img.data, img.width * img.height),
        text: {},
      };
    }
  } catch (e) {
    throw new ImageError(`${name}: cannot decode image (${(e as Error).message})`);
  }
  throw new ImageError(`${name}: not a PNG or JPEG file`);
}

/** Reads a PNG or JPEG file. */
export function readImage(path: string): DecodedImage {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new ImageError(
      `${path}: cannot read file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  return decodeImage(bytes, path);
}

/** Writes an image as PNG (atomically), with optional text chunks. */
export function writePng(path: string, image: Image, text: Record<string, string> = {}): void {
  writeFileAtomic(path, encodePng(image, text));
}

function stripAlpha(rgba: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    out[i * 3] = rgba[i * 4]!;
    out[i * 3 + 1] = rgba[i * 4 + 1]!;
    out[i * 3 + 2] = rgba[i * 4 + 2]!;
  }
  return out;
}

function checkImage(image: Image): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ArgumentError(`image size must be positive integers, got ${width}x${height}`);
  }
  if (data.length !== width * height * channels) {
    throw new ArgumentError(
      `image data has ${data.length} bytes, expected ${width}x${height}x${channels} = ${width * height * channels}`,
    );
  }
}

// --- tensors <-> images ----------------------------------------------------------------------------------------

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
