/**
 * Reading safetensors files lazily: opening reads and validates only the header; each tensor is then read on
 * demand with a positioned read of its own byte range, so a multi-GB checkpoint never sits in one buffer.
 * Writing lives in safetensors-write.ts, header validation in safetensors-header.ts.
 */
import { close, closeSync, fstat, fstatSync, open, openSync, read, readSync } from "node:fs";
import { promisify } from "node:util";
import type { DType, StorageArray } from "../tensor/dtype.js";
import { Tensor } from "../tensor/tensor.js";
import { describeFsError, SafetensorsError } from "./errors.js";
import {
  parseHeader,
  readHeaderLength,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsHeader,
} from "./safetensors-header.js";

export { SafetensorsError } from "./errors.js";
export type { SafetensorsDType, SafetensorsEntry, SafetensorsHeader } from "./safetensors-header.js";
export { MAX_HEADER_BYTES, parseHeader as parseSafetensorsHeader } from "./safetensors-header.js";
export { saveSafetensors, serializeSafetensors, type TensorMap } from "./safetensors-write.js";

/** All tensors of a file (in file order) and its `__metadata__`. */
export interface SafetensorsData {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string> | null;
}

const openAsync = promisify(open);
const closeAsync = promisify(close);
const fstatAsync = promisify(fstat);
const readAsync = promisify(read);

/** fs.read reads at most 2^31 - 1 bytes per call; larger tensors are read in chunks. */
const MAX_READ = 1 << 30;

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * An open safetensors file. The header is parsed and validated; tensors are read one at a time by {@link get}.
 * Call {@link close} when done.
 */
export class SafetensorsFile {
  readonly path: string;
  readonly header: SafetensorsHeader;
  private fd: number | null;
  private readonly byName: Map<string, SafetensorsEntry>;

  /** Use {@link openSafetensors} / {@link openSafetensorsSync}. */
  constructor(path: string, fd: number, header: SafetensorsHeader) {
    this.path = path;
    this.fd = fd;
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

  /** Reads one tensor (its own buffer, in the file's dtype; see {@link decodeSafetensor} for the mapping). */
  get(name: string): Tensor {
    const e = this.entry(name);
    const bytes = readAtSync(
      this.openFd(),
      e.byteLength,
      this.header.dataStart + e.dataOffsets[0],
      this.path,
    );
    return decodeSafetensor(e, bytes, this.path);
  }

  /** Like {@link get} with a non-blocking read. */
  async getAsync(name: string): Promise<Tensor> {
    const e = this.entry(name);
    const bytes = await readAtAsync(
      this.openFd(),
      e.byteLength,
      this.header.dataStart + e.dataOffsets[0],
      this.path,
    );
    return decodeSafetensor(e, bytes, this.path);
  }

  /** Closes the file; later reads throw. Closing twice is allowed. */
  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
  }

  private openFd(): number {
    if (this.fd === null) throw new SafetensorsError(`${this.path}: file is closed`);
    return this.fd;
  }
}

/** Opens a safetensors file and validates its header (only the header is read). */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  let fd: number;
  try {
    fd = await openAsync(path, "r");
  } catch (err) {
    throw new SafetensorsError(`${path}: ${describeFsError(err)}`, { cause: err });
  }
  try {
    const size = (await fstatAsync(fd)).size;
    const prefix = await readAtAsync(fd, Math.min(8, size), 0, path);
    const n = readHeaderLength(prefix, size, path);
    const headerBytes = await readAtAsync(fd, n, 8, path);
    return new SafetensorsFile(path, fd, parseHeader(headerBytes, size - 8 - n, path));
  } catch (err) {
    await closeAsync(fd).catch(() => {});
    throw err;
  }
}

/** Synchronous {@link openSafetensors}. */
export function openSafetensorsSync(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new SafetensorsError(`${path}: ${describeFsError(err)}`, { cause: err });
  }
  try {
    const size = fstatSync(fd).size;
    const prefix = readAtSync(fd, Math.min(8, size), 0, path);
    const n = readHeaderLength(prefix, size, path);
    const headerBytes = readAtSync(fd, n, 8, path);
    return new SafetensorsFile(path, fd, parseHeader(headerBytes, size - 8 - n, path));
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Reads every tensor of a file, one positioned read per tensor. */
export async function loadSafetensors(path: string): Promise<SafetensorsData> {
  const file = await openSafetensors(path);
  try {
    const tensors = new Map<string, Tensor>();
    for (const e of file.entries) tensors.set(e.name, await file.getAsync(e.name));
    return { tensors, metadata: file.metadata ? { ...file.metadata } : null };
  } finally {
    file.close();
  }
}

/**
 * Parses a whole safetensors file held in memory (e.g. fetched in a browser). Each tensor gets a copy of its
 * bytes, so the input buffer can be dropped afterwards.
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

function truncated(path: string, position: number): SafetensorsError {
  return new SafetensorsError(
    `${path}: unexpected end of file at byte ${position} (file truncated while open?)`,
  );
}

function readFailed(path: string, err: unknown): SafetensorsError {
  return new SafetensorsError(`${path}: read failed: ${describeFsError(err)}`, { cause: err });
}

/** Reads exactly `length` bytes at `position` into a fresh buffer. */
function readAtSync(fd: number, length: number, position: number, path: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    let got: number;
    try {
      got = readSync(fd, out, done, Math.min(length - done, MAX_READ), position + done);
    } catch (err) {
      throw readFailed(path, err);
    }
    if (got === 0) throw truncated(path, position + done);
    done += got;
  }
  return out;
}

async function readAtAsync(fd: number, length: number, position: number, path: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    let got: number;
    try {
      got = (await readAsync(fd, out, done, Math.min(length - done, MAX_READ), position + done)).bytesRead;
    } catch (err) {
      throw readFailed(path, err);
    }
    if (got === 0) throw truncated(path, position + done);
    done += got;
  }
  return out;
}
