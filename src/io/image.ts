import { readFileSync } from "node:fs";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { ArgumentError } from "../tensor/errors.js";
import { writeFileAtomic } from "./atomic.js";
import { ImageError } from "./image-errors.js";
import { checkImageHeader, type ImageLimits } from "./image-header.js";
import type { Image } from "./image-tensor.js";
import { addPngText, isPng, readPngText } from "./png-text.js";

export {
  type Image,
  imageGrid,
  imagesFromPixels,
  imageToTensor,
  tensorToImage,
  tensorToImages,
} from "./image-tensor.js";

/** A decoded image file, with the text chunks of a PNG (e.g. A1111's `parameters`). */
export interface DecodedImage extends Image {
  readonly text: Record<string, string>;
}

export { ImageError } from "./image-errors.js";
export { checkImageHeader, type ImageHeader, type ImageLimits, readImageHeader } from "./image-header.js";
export { addPngText, readPngText } from "./png-text.js";

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
  if (Object.keys(text).length === 0) return encoded;
  const withText = addPngText(encoded, text);
  return Buffer.from(withText.buffer, withText.byteOffset, withText.byteLength);
}

/**
 * Decodes a PNG or JPEG file's bytes to RGB (or RGBA when the PNG has transparency), with PNG text chunks. With
 * `limits`, the size in the file's header is checked first and nothing is decoded when it is beyond them.
 */
export function decodeImage(bytes: Uint8Array, name = "image", limits?: ImageLimits): DecodedImage {
  if (limits) checkImageHeader(bytes, limits, name);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (isPng(buf)) {
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

/**
 * What a file is allowed to claim before anything is decoded: 8192 x 8192 pixels (256 MB as RGBA). A 1 KB PNG can
 * claim 20000 x 20000; without a limit, decoding it would allocate gigabytes.
 */
export const FILE_IMAGE_LIMITS: ImageLimits = { maxPixels: 8192 * 8192 };

/** Reads a PNG or JPEG file, refusing one whose header claims more than `limits` before decoding it. */
export function readImage(path: string, limits: ImageLimits = FILE_IMAGE_LIMITS): DecodedImage {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new ImageError(
      `${path}: cannot read file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  return decodeImage(bytes, path, limits);
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
