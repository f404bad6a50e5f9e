// PNG files in the page: pixels to a PNG (the browser's canvas encoder) with A1111's `parameters` chunk added by
// the library, and a PNG or JPEG file back to pixels and text chunks. Works in the page and in the worker.
import { addPngText, readPngText } from "../../src/io/png-text.js";
import type { Pixels } from "./protocol.js";

/** RGBA pixels of an image with 1, 3 or 4 channels. */
function toRgba(image: Pixels): Uint8ClampedArray<ArrayBuffer> {
  const n = image.width * image.height;
  const c = image.channels;
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    const r = image.data[i * c]!;
    out[i * 4] = r;
    out[i * 4 + 1] = c === 1 ? r : image.data[i * c + 1]!;
    out[i * 4 + 2] = c === 1 ? r : image.data[i * c + 2]!;
    out[i * 4 + 3] = c === 4 ? image.data[i * c + 3]! : 255;
  }
  return out;
}

/** The image as a PNG file, with a `parameters` text chunk when given. */
export async function encodePng(image: Pixels, parameters?: string): Promise<Blob> {
  const canvas = new OffscreenCanvas(image.width, image.height);
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new Error("this browser gives no 2D canvas to encode PNGs with");
  ctx.putImageData(new ImageData(toRgba(image), image.width, image.height), 0, 0);
  const png = await canvas.convertToBlob({ type: "image/png" });
  if (!parameters) return png;
  const bytes = addPngText(new Uint8Array(await png.arrayBuffer()), { parameters });
  return new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "image/png" });
}

/** An image on a canvas (e.g. a preview), scaled by `scale` without smoothing. */
export function drawPixels(canvas: HTMLCanvasElement, image: Pixels): void {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext("2d")?.putImageData(new ImageData(toRgba(image), image.width, image.height), 0, 0);
}

/** A PNG or JPEG file decoded to pixels (RGB, or RGBA when it has transparency), with its PNG text chunks. */
export async function decodeImageFile(file: Blob): Promise<{ image: Pixels; text: Record<string, string> }> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let text: Record<string, string> = {};
  try {
    text = readPngText(bytes);
  } catch {
    // not a PNG (a JPEG): no text chunks
  }
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new Error("this browser gives no 2D canvas to decode images with");
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const n = bitmap.width * bitmap.height;
  let opaque = true;
  for (let i = 3; i < rgba.length && opaque; i += 4) opaque = rgba[i] === 255;
  const channels = opaque ? 3 : 4;
  const data = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) for (let k = 0; k < channels; k++) data[i * channels + k] = rgba[i * 4 + k]!;
  return { image: { width: bitmap.width, height: bitmap.height, channels, data }, text };
}
