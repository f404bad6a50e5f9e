/**
 * Reading safetensors lazily from any byte source: opening reads and validates only the header; each tensor is
 * then read on demand from its own byte range, so a multi-GB checkpoint never sits in one buffer. Sources are file
 * paths (Node.js), `ArrayBuffer` / `Uint8Array`, `Blob` / `File` (read slice by slice) and URLs (fetch); see
 * source.ts. No `node:` imports: this module is part of the browser entry.
 */
import type { DType, StorageArray } from "../tensor/dtype.js";
import { Tensor } from "../tensor/tensor.js";
import { IoError, SafetensorsError } from "./errors.js";
import {
  parseHeader,
  readHeaderLength,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsHeader,
} from "./safetensors-header.js";
import { type ByteSource, type FileInput, openSource, openSourceSync } from "./source.js";

export type { SafetensorsDType, SafetensorsEntry, SafetensorsHeader } from "./safetensors-header.js";

/** All tensors of a file (in file order) and its `__metadata__`. */
export interface SafetensorsData {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string> | null;
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** An IoError from a source as this module's error type. */
function asSafetensorsError(err: unknown): unknown {
  return err instanceof IoError ? new SafetensorsError(err.message, { cause: err }) : err;
}

/**
 * An open safetensors file. The header is parsed and validated; tensors are read one at a time by {@link get} /
 * {@link getAsync}. Call {@link close} when done.
 */
export class SafetensorsFile {
  /** The path, URL or name of the source (in error messages). */
  readonly path: string;
  readonly header: SafetensorsHeader;
  private source: ByteSource | null;
  private readonly byName: Map<string, SafetensorsEntry>;

  /** Use {@link openSafetensors} / {@link openSafetensorsSync}. */
  constructor(source: ByteSource, header: SafetensorsHeader) {
    this.path = source.label;
    this.source = source;
    this.header = header;
    this.byName = new Map(header.entries.map((e) => [e.name, e]));
  }

  /** Tensors in file order. */
  get entries(): readonly SafetensorsEntry[] {
    return this.header.entries;
  }

  /** The `__metadata__` map, or null. */
  get metadata(): Readonly<Record<string, string>> | null {
    return this.header.metadata;
  }

  /** Tensor names in file order. */
  keys(): string[] {
    return this.header.entries.map((e) => e.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The header entry of one tensor (dtype, shape, byte range). */
  entry(name: string): SafetensorsEntry {
    const e = this.byName.get(name);
    if (!e) {
      throw new SafetensorsError(
        `${this.path}: no tensor named ${JSON.stringify(name)} (the file has ${this.byName.size} tensors)`,
      );
    }
    return e;
  }

  /**
   * Reads one tensor (its own buffer, in the file's dtype; see {@link decodeSafetensor} for the mapping).
   * Synchronous: file paths in Node.js and bytes in memory only; use {@link getAsync} for Blobs and URLs.
   */
  get(name: string): Tensor {
    const e = this.entry(name);
    const source = this.open();
    const inPlace = this.view(source, e);
    if (inPlace) return decodeSafetensor(e, inPlace, this.path);
    if (!source.readSync) {
      throw new SafetensorsError(`${this.path}: this source is read asynchronously; use getAsync`);
    }
    let bytes: Uint8Array;
    try {
      bytes = source.readSync(this.header.dataStart + e.dataOffsets[0], e.byteLength);
    } catch (err) {
      throw asSafetensorsError(err);
    }
    return decodeSafetensor(e, bytes, this.path);
  }

  /**
   * A tensor's bytes in the source's memory map, when the source has one and the bytes are aligned for a typed
   * array of the tensor's element size; else null (the tensor is read into its own buffer).
   */
  private view(source: ByteSource, e: SafetensorsEntry): Uint8Array | null {
    if (!source.view || e.byteLength === 0) return null;
    const offset = this.header.dataStart + e.dataOffsets[0];
    if (offset % SAFETENSORS_DTYPE_BYTES[e.dtype] !== 0) return null;
    try {
      return source.view(offset, e.byteLength);
    } catch (err) {
      throw asSafetensorsError(err);
    }
  }

  /** Reads one tensor without blocking (a positioned file read, a Blob slice). */
  async getAsync(name: string): Promise<Tensor> {
    const e = this.entry(name);
    const source = this.open();
    const inPlace = this.view(source, e);
    if (inPlace) return decodeSafetensor(e, inPlace, this.path);
    let bytes: Uint8Array;
    try {
      bytes = await source.read(this.header.dataStart + e.dataOffsets[0], e.byteLength);
    } catch (err) {
      throw asSafetensorsError(err);
    }
    return decodeSafetensor(e, bytes, this.path);
  }

  /** Closes the file; later reads throw. Closing twice is allowed. */
  close(): void {
    const source = this.source;
    this.source = null;
    source?.close();
  }

  private open(): ByteSource {
    if (this.source === null) throw new SafetensorsError(`${this.path}: file is closed`);
    return this.source;
  }
}

/** Reads and validates the header of an open source. */
async function readHeader(source: ByteSource): Promise<SafetensorsHeader> {
  const prefix = await source.read(0, Math.min(8, source.size));
  const n = readHeaderLength(prefix, source.size, source.label);
  return parseHeader(await source.read(8, n), source.size - 8 - n, source.label);
}

/**
 * Opens a safetensors file and validates its header (only the header is read): a path (Node.js), a URL, an
 * `ArrayBuffer` / `Uint8Array` or a `Blob` / `File`. Tensors are then read one at a time.
 */
export async function openSafetensors(input: FileInput): Promise<SafetensorsFile> {
  let source: ByteSource;
  try {
    source = await openSource(input);
  } catch (err) {
    throw asSafetensorsError(err);
  }
  try {
    return new SafetensorsFile(source, await readHeader(source));
  } catch (err) {
    source.close();
    throw asSafetensorsError(err);
  }
}

/** Synchronous {@link openSafetensors}: a file path (Node.js) or bytes in memory. */
export function openSafetensorsSync(input: FileInput): SafetensorsFile {
  let source: ByteSource;
  try {
    source = openSourceSync(input);
  } catch (err) {
    throw asSafetensorsError(err);
  }
  try {
    const read = source.readSync!;
    const n = readHeaderLength(read(0, Math.min(8, source.size)), source.size, source.label);
    return new SafetensorsFile(source, parseHeader(read(8, n), source.size - 8 - n, source.label));
  } catch (err) {
    source.close();
    throw asSafetensorsError(err);
  }
}

/** Reads every tensor of a file (path, URL, bytes or Blob), one read per tensor. */
export async function loadSafetensors(input: FileInput): Promise<SafetensorsData> {
  const file = await openSafetensors(input);
  try {
    const tensors = new Map<string, Tensor>();
    for (const e of file.entries) tensors.set(e.name, await file.getAsync(e.name));
    return { tensors, metadata: file.metadata ? { ...file.metadata } : null };
  } finally {
    file.close();
  }
}

/**
 * Parses a whole safetensors file held in memory. Each tensor gets a copy of its bytes, so the input buffer can
 * be dropped afterwards. (For large files prefer {@link openSafetensors} on a Blob: it reads tensor by tensor.)
 */
export function parseSafetensors(bytes: Uint8Array | ArrayBuffer, label = "<buffer>"): SafetensorsData {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const n = readHeaderLength(buf.subarray(0, 8), buf.length, label);
  const header = parseHeader(buf.subarray(8, 8 + n), buf.length - 8 - n, label);
  const tensors = new Map<string, Tensor>();
  for (const e of header.entries) {
    const begin = header.dataStart + e.dataOffsets[0];
    tensors.set(e.name, decodeSafetensor(e, buf.slice(begin, begin + e.byteLength), label));
  }
  return { tensors, metadata: header.metadata ? { ...header.metadata } : null };
}

/**
 * Turns one tensor's little-endian bytes into a Tensor. F32, F16, BF16, I64, I32, I16, I8, U8 and BOOL keep their
 * dtype (float32, float16, bfloat16, int64, ...); F64 is rounded to float32, U16 widened to int32, U32 to int64.
 * U64 and the 8-bit float formats are listed by the header but cannot be read.
 * @param bytes exactly `entry.byteLength` bytes; if the dtype has more than one byte per element, `bytes` must
 *   start at a multiple of the element size within its buffer (a fresh buffer does)
 */
export function decodeSafetensor(entry: SafetensorsEntry, bytes: Uint8Array, label: string): Tensor {
  if (!hostIsLittleEndian)
    throw new SafetensorsError("safetensors data is little-endian; big-endian hosts are not supported");
  const { buffer, byteOffset } = bytes;
  const n = entry.numel;
  const wrap = (data: StorageArray, dtype: DType) => Tensor.fromStorage(data, entry.shape, dtype);
  switch (entry.dtype) {
    case "F32":
      return wrap(new Float32Array(buffer, byteOffset, n), "float32");
    case "F16":
      return wrap(new Uint16Array(buffer, byteOffset, n), "float16");
    case "BF16":
      return wrap(new Uint16Array(buffer, byteOffset, n), "bfloat16");
    case "I64":
      return wrap(new BigInt64Array(buffer, byteOffset, n), "int64");
    case "I32":
      return wrap(new Int32Array(buffer, byteOffset, n), "int32");
    case "I16":
      return wrap(new Int16Array(buffer, byteOffset, n), "int16");
    case "I8":
      return wrap(new Int8Array(buffer, byteOffset, n), "int8");
    case "U8":
      return wrap(new Uint8Array(buffer, byteOffset, n), "uint8");
    case "BOOL":
      return wrap(new Uint8Array(buffer, byteOffset, n), "bool");
    case "F64":
      return wrap(Float32Array.from(new Float64Array(buffer, byteOffset, n)), "float32");
    case "U16":
      return wrap(Int32Array.from(new Uint16Array(buffer, byteOffset, n)), "int32");
    case "U32": {
      const src = new Uint32Array(buffer, byteOffset, n);
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt(src[i]!);
      return wrap(out, "int64");
    }
    default:
      throw new SafetensorsError(
        `${label}: tensor ${JSON.stringify(entry.name)} has dtype ${entry.dtype satisfies SafetensorsDType}, which cannot be read (no matching tensor dtype)`,
      );
  }
}
