// Image dimensions read from a PNG or JPEG file's header, before any pixel is decoded: a few hundred bytes that
// claim 20000x20000 would otherwise make the decoder allocate gigabytes (a "decompression bomb").
import { ImageError } from "./image-errors.js";

/** What an image file's header says. */
export interface ImageHeader {
  readonly format: "png" | "jpeg";
  readonly width: number;
  readonly height: number;
}

/** Limits checked by {@link checkImageHeader}. */
export interface ImageLimits {
  /** Largest width x height accepted. */
  readonly maxPixels: number;
  /** Largest width or height accepted (default: no limit beyond maxPixels). */
  readonly maxSide?: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function u16(b: Uint8Array, i: number): number {
  return (b[i]! << 8) | b[i + 1]!;
}

function u32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) >>> 0) + (b[i + 1]! << 16) + (b[i + 2]! << 8) + b[i + 3]!;
}

/**
 * Width and height from a PNG's IHDR chunk or a JPEG's start-of-frame marker, without decoding. Throws an
 * ImageError for anything else (or a header cut short).
 */
export function readImageHeader(bytes: Uint8Array, name = "image"): ImageHeader {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((v, i) => bytes[i] === v)) {
    // IHDR must be the first chunk: length (4) + "IHDR" (4) + width (4) + height (4)
    const type = String.fromCharCode(bytes[12]!, bytes[13]!, bytes[14]!, bytes[15]!);
    if (bytes.length < 24 || type !== "IHDR") {
      throw new ImageError(`${name}: PNG without an IHDR chunk first (${bytes.length} bytes)`);
    }
    return { format: "png", width: u32(bytes, 16), height: u32(bytes, 20) };
  }
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let i = 2;
    while (i + 4 <= bytes.length) {
      if (bytes[i] !== 0xff) throw new ImageError(`${name}: JPEG marker expected at byte ${i}`);
      const marker = bytes[i + 1]!;
      if (marker === 0xff) {
        i++; // fill byte
        continue;
      }
      // markers without a length: TEM, RSTn, SOI
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
        i += 2;
        continue;
      }
      const len = u16(bytes, i + 2);
      // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision (1), height (2), width (2)
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        if (i + 9 > bytes.length) break;
        return { format: "jpeg", width: u16(bytes, i + 7), height: u16(bytes, i + 5) };
      }
      if (marker === 0xda || marker === 0xd9) break; // scan data or end before any frame header
      i += 2 + len;
    }
    throw new ImageError(`${name}: JPEG without a frame header (SOF) before its image data`);
  }
  throw new ImageError(`${name}: not a PNG or JPEG file (the first bytes are neither signature)`);
}

/** The header of `bytes`, or an ImageError when its size is zero or beyond `limits` (nothing is decoded). */
export function checkImageHeader(bytes: Uint8Array, limits: ImageLimits, name = "image"): ImageHeader {
  const header = readImageHeader(bytes, name);
  const { width, height } = header;
  if (width < 1 || height < 1) throw new ImageError(`${name}: the header says ${width}x${height} pixels`);
  if (limits.maxSide !== undefined && Math.max(width, height) > limits.maxSide) {
    throw new ImageError(
      `${name}: ${width}x${height} pixels; at most ${limits.maxSide} pixels a side are accepted`,
    );
  }
  if (width * height > limits.maxPixels) {
    throw new ImageError(
      `${name}: ${width}x${height} = ${width * height} pixels; at most ${limits.maxPixels} are accepted`,
    );
  }
  return header;
}
