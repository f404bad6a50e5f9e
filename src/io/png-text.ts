// PNG text chunks (tEXt / iTXt) on plain bytes: read them from a PNG file, or insert them into one, such as
// A1111's `parameters`. No pixels are decoded and nothing here needs Node.js: the browser entry uses it on the PNGs
// a canvas encodes.
import { ArgumentError } from "../tensor/errors.js";
import { ImageError } from "./image-errors.js";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC-32 of PNG chunks (ISO 3309). */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** True when `bytes` start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (ch) => ch.charCodeAt(0));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * A text chunk: `tEXt` for Latin-1 text (the most widely read form), else `iTXt` with UTF-8 text, uncompressed
 * (A1111 and ComfyUI read both).
 */
export function pngTextChunk(keyword: string, text: string): Uint8Array {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword))
    throw new ArgumentError(`PNG text keyword must be 1-79 Latin-1 printable characters, got "${keyword}"`);
  const isLatin1 = [...text].every((ch) => ch.charCodeAt(0) <= 0xff && ch !== "\0");
  const type = isLatin1 ? "tEXt" : "iTXt";
  const body = isLatin1
    ? concat([latin1(keyword), Uint8Array.of(0), latin1(text)])
    : concat([latin1(keyword), Uint8Array.of(0, 0, 0, 0, 0), new TextEncoder().encode(text)]);
  const chunk = new Uint8Array(12 + body.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, body.length);
  chunk.set(latin1(type), 4);
  chunk.set(body, 8);
  view.setUint32(8 + body.length, crc32(chunk.subarray(4, 8 + body.length)));
  return chunk;
}

/** Reads the tEXt / iTXt chunks of a PNG file's bytes (uncompressed iTXt only). Throws ImageError for a non-PNG. */
export function readPngText(bytes: Uint8Array): Record<string, string> {
  if (!isPng(bytes)) throw new ImageError("not a PNG file (bad signature)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decodeLatin1 = (a: number, b: number) => String.fromCharCode(...bytes.subarray(a, b));
  const utf8 = new TextDecoder();
  const text: Record<string, string> = {};
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const len = view.getUint32(pos);
    const type = decodeLatin1(pos + 4, pos + 8);
    if (pos + 12 + len > bytes.length)
      throw new ImageError(`truncated PNG: chunk ${type} runs past the end of the file`);
    const start = pos + 8;
    const body = bytes.subarray(start, start + len);
    const z = body.indexOf(0);
    if (type === "tEXt") {
      if (z > 0) text[decodeLatin1(start, start + z)] = latin1String(body.subarray(z + 1));
    } else if (type === "iTXt") {
      const compressed = body[z + 1] === 1;
      // skip compression flag/method, then language tag and translated keyword (both NUL-terminated)
      const lang = body.indexOf(0, z + 3);
      const translated = lang >= 0 ? body.indexOf(0, lang + 1) : -1;
      if (z > 0 && translated >= 0 && !compressed)
        text[decodeLatin1(start, start + z)] = utf8.decode(body.subarray(translated + 1));
    } else if (type === "IEND") {
      break;
    }
    pos += 12 + len;
  }
  return text;
}

/** Latin-1 bytes as a string, in pieces (a long parameters text would overflow one spread call). */
function latin1String(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return out;
}

/**
 * The PNG with text chunks inserted right after its header (IHDR), e.g. `{ parameters: formatParameters(s) }`.
 * Throws ImageError when `png` is not a PNG.
 */
export function addPngText(png: Uint8Array, text: Record<string, string>): Uint8Array {
  if (!isPng(png)) throw new ImageError("not a PNG file (bad signature)");
  const entries = Object.entries(text);
  if (entries.length === 0) return png;
  // IHDR is always the first chunk: 8 (signature) + 12 + 13 bytes.
  const afterHeader = 8 + 12 + 13;
  return concat([
    png.subarray(0, afterHeader),
    ...entries.map(([k, v]) => pngTextChunk(k, v)),
    png.subarray(afterHeader),
  ]);
}
