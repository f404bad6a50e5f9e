import { readFileSync } from "node:fs";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { ArgumentError } from "../tensor/errors.js";
import { writeFileAtomic } from "./atomic.js";
import { ImageError } from "./image-errors.js";
import { checkImageHeader, type ImageLimits } from "./image-header.js";
import type { Image } from "./image-tensor.js";

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

/**
 * Decodes a PNG or JPEG file's bytes to RGB (or RGBA when the PNG has transparency), with PNG text chunks. With
 * `limits`, the size in the file's header is checked first and nothing is decoded when it is beyond them.
 */
export function decodeImage(bytes: Uint8Array, name = "image", limits?: ImageLimits): DecodedImage {
  if (limits) checkImageHeader(bytes, limits, name);
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
