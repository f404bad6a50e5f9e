// Resizing 8-bit images with a separable Lanczos-3 filter whose support widens by the downscale factor (as PIL's
// Image.resize(LANCZOS), which diffusers' VaeImageProcessor uses; not bit-equal to PIL, which works in fixed point).
import type { Image } from "../io/image.js";
import { ArgumentError } from "../tensor/errors.js";

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

function lanczos3(x: number): number {
  return Math.abs(x) < 3 ? sinc(x) * sinc(x / 3) : 0;
}

/** Per output position: first input index and normalised weights. */
function filterTaps(inLen: number, outLen: number): { start: Int32Array; weights: Float64Array[] } {
  const scale = inLen / outLen;
  const filterScale = Math.max(scale, 1);
  const support = 3 * filterScale;
  const start = new Int32Array(outLen);
  const weights: Float64Array[] = [];
  for (let i = 0; i < outLen; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(Math.floor(center - support + 0.5), 0);
    const hi = Math.min(Math.floor(center + support + 0.5), inLen);
    const w = new Float64Array(Math.max(hi - lo, 1));
    let total = 0;
    for (let j = lo; j < hi; j++) {
      const v = lanczos3((j + 0.5 - center) / filterScale);
      w[j - lo] = v;
      total += v;
    }
    if (total !== 0) for (let k = 0; k < w.length; k++) w[k]! /= total;
    else w[0] = 1;
    start[i] = lo;
    weights.push(w);
  }
  return { start, weights };
}

/** `image` resized to width x height (same channels); returns the image itself when the size already matches. */
export function resizeImage(image: Image, width: number, height: number): Image {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ArgumentError(`resizeImage: size must be positive integers, got ${width}x${height}`);
  }
  if (image.width === width && image.height === height) return image;
  const { width: w0, height: h0, channels: c, data } = image;
  // horizontal pass into float rows, then vertical pass with rounding to 8 bits
  const tx = filterTaps(w0, width);
  const tmp = new Float64Array(h0 * width * c);
  for (let y = 0; y < h0; y++) {
    for (let x = 0; x < width; x++) {
      const w = tx.weights[x]!;
      const s = tx.start[x]!;
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < w.length; k++) acc += w[k]! * data[(y * w0 + s + k) * c + ch]!;
        tmp[(y * width + x) * c + ch] = acc;
      }
    }
  }
  const ty = filterTaps(h0, height);
  const out = new Uint8Array(height * width * c);
  for (let y = 0; y < height; y++) {
    const w = ty.weights[y]!;
    const s = ty.start[y]!;
    for (let x = 0; x < width; x++) {
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < w.length; k++) acc += w[k]! * tmp[((s + k) * width + x) * c + ch]!;
        out[(y * width + x) * c + ch] = Math.min(255, Math.max(0, Math.round(acc)));
      }
    }
  }
  return { width, height, channels: c, data: out };
}
