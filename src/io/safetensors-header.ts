/**
 * The safetensors header: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
 * `{"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {string: string}}`, then the
 * data section. Validation follows the checks of the reference Rust crate (huggingface/safetensors): bounded header
 * size, known dtypes, byte lengths that match dtype x shape, and tensors that tile the data section exactly (no
 * gaps, no overlaps, nothing left over).
 */
import type { DType } from "../tensor/dtype.js";
import { SafetensorsError } from "./errors.js";

/** Largest header accepted (bytes), as in the Rust crate: protects against huge allocations from bad files. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Every dtype name the format defines with a whole number of bytes per element. */
export type SafetensorsDType =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL"
  | "F8_E4M3"
  | "F8_E5M2"
  | "F8_E8M0";

/** Bytes per element of each safetensors dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  F8_E8M0: 1,
};

/** The safetensors dtype that stores each tensor dtype. */
export const SAFETENSORS_DTYPE_OF: Readonly<Record<DType, SafetensorsDType>> = {
  float32: "F32",
  float16: "F16",
  bfloat16: "BF16",
  int64: "I64",
  int32: "I32",
  int16: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

/** One tensor described by the header. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** [begin, end) in bytes, relative to the start of the data section. */
  readonly dataOffsets: readonly [number, number];
  /** Number of elements (product of the shape). */
  readonly numel: number;
  readonly byteLength: number;
}

/** A validated header. */
export interface SafetensorsHeader {
  /** Tensors in the order their data appears in the file. */
  readonly entries: readonly SafetensorsEntry[];
  /** The `__metadata__` map, or null when the file has none. */
  readonly metadata: Readonly<Record<string, string>> | null;
  /** N: the JSON header's length in bytes (padding included). */
  readonly headerLength: number;
  /** Absolute byte offset of the data section (8 + N). */
  readonly dataStart: number;
  /** Length of the data section in bytes. */
  readonly dataLength: number;
}

/**
 * Reads N from the first 8 bytes and checks it against the total size (file or buffer) in bytes.
 * @param prefix at least the first 8 bytes (fewer means the input is too short)
 */
export function readHeaderLength(prefix: Uint8Array, totalSize: number, label: string): number {
  if (prefix.length < 8 || totalSize < 8) {
    throw new SafetensorsError(
      `${label}: not a safetensors file: ${totalSize} bytes is shorter than the 8-byte header length`,
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n)
    throw new SafetensorsError(`${label}: header length ${n} is too small (at least 2 bytes: "{}")`);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      `${label}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`,
    );
  }
  if (n > BigInt(totalSize - 8)) {
    throw new SafetensorsError(
      `${label}: header length ${n} exceeds the ${totalSize - 8} bytes after the length field (truncated file?)`,
    );
  }
  return Number(n);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses and validates the JSON header.
 * @param headerBytes the N header bytes
 * @param dataLength bytes available after the header (the data section must be exactly this long)
 */
export function parseHeader(headerBytes: Uint8Array, dataLength: number, label: string): SafetensorsHeader {
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch {
    throw new SafetensorsError(`${label}: header is not valid UTF-8`);
  }
  if (!text.startsWith("{")) throw new SafetensorsError(`${label}: header does not start with "{"`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(`${label}: header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json)) throw new SafetensorsError(`${label}: header is not a JSON object`);

  let metadata: Record<string, string> | null = null;
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === "__metadata__") metadata = parseMetadata(value, label);
    else entries.push(parseEntry(name, value, dataLength, label));
  }

  // Tensors must tile [0, dataLength) exactly: sorted by offsets, each begins where the previous one ended.
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let end = 0;
  let previous: string | null = null;
  for (const e of entries) {
    const [begin] = e.dataOffsets;
    if (begin !== end) {
      const after =
        previous === null ? "the start of the data section" : `tensor ${JSON.stringify(previous)}`;
      const problem = begin < end ? "overlaps" : `leaves a gap of ${begin - end} bytes after`;
      throw new SafetensorsError(
        `${label}: tensor ${JSON.stringify(e.name)} (data_offsets [${begin}, ${e.dataOffsets[1]}]) ${problem} ${after} (ending at ${end})`,
      );
    }
    end = e.dataOffsets[1];
    previous = e.name;
  }
  if (end !== dataLength) {
    throw new SafetensorsError(
      `${label}: tensors cover ${end} bytes but the data section has ${dataLength} bytes` +
        (end > dataLength ? " (truncated file?)" : " (trailing bytes)"),
    );
  }
  const headerLength = headerBytes.length;
  return { entries, metadata, headerLength, dataStart: 8 + headerLength, dataLength };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseMetadata(value: unknown, label: string): Record<string, string> | null {
  if (value === null) return null;
  if (!isPlainObject(value)) {
    throw new SafetensorsError(`${label}: __metadata__ must be an object of strings, got ${describe(value)}`);
  }
  const entries = Object.entries(value);
  for (const [k, v] of entries) {
    if (typeof v !== "string") {
      throw new SafetensorsError(
        `${label}: __metadata__ values must be strings, but ${JSON.stringify(k)} is ${describe(v)}`,
      );
    }
  }
  // fromEntries defines own properties, so even a "__proto__" key is kept as data
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseEntry(name: string, value: unknown, dataLength: number, label: string): SafetensorsEntry {
  const what = `${label}: tensor ${JSON.stringify(name)}`;
  if (!isPlainObject(value)) throw new SafetensorsError(`${what} must be an object, got ${describe(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string" || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) {
    throw new SafetensorsError(
      `${what} has unknown dtype ${describe(dtype)} (known: ${Object.keys(SAFETENSORS_DTYPE_BYTES).join(", ")})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    throw new SafetensorsError(
      `${what} has shape ${describe(shape)}; expected a list of non-negative integers`,
    );
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
    throw new SafetensorsError(
      `${what} has data_offsets ${describe(offsets)}; expected [begin, end] with non-negative integers`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw new SafetensorsError(`${what} has data_offsets [${begin}, ${end}] with begin > end`);
  if (end > dataLength) {
    throw new SafetensorsError(
      `${what} has data_offsets [${begin}, ${end}] past the end of the ${dataLength}-byte data section (truncated file?)`,
    );
  }
  let numel = 1;
  if (shape.includes(0)) numel = 0;
  else {
    for (const d of shape as number[]) {
      numel *= d;
      if (numel > Number.MAX_SAFE_INTEGER) {
        throw new SafetensorsError(`${what} has shape ${describe(shape)} whose element count overflows`);
      }
    }
  }
  const byteLength = numel * SAFETENSORS_DTYPE_BYTES[dtype as SafetensorsDType];
  if (byteLength !== end - begin) {
    throw new SafetensorsError(
      `${what}: ${dtype} ${describe(shape)} needs ${byteLength} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
    );
  }
  return {
    name,
    dtype: dtype as SafetensorsDType,
    shape: Object.freeze([...(shape as number[])]),
    dataOffsets: Object.freeze([begin, end]) as readonly [number, number],
    numel,
    byteLength,
  };
}

function isIndex(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** A short JSON rendering of an offending value for error messages. */
function describe(v: unknown): string {
  const s = v === undefined ? "missing" : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
