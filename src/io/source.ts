/**
 * Where file bytes come from, in Node.js and in browsers: a random-access {@link ByteSource} over a file path
 * (Node), an `ArrayBuffer` / `Uint8Array`, a `Blob` / `File`, or a URL read with `fetch`. Readers such as the
 * safetensors reader ask for byte ranges, so a Blob is read slice by slice and never as one buffer.
 *
 * This module has no `node:` imports. File paths work once a {@link FileSystem} is installed with
 * {@link setFileSystem}, which the package's Node entry does; without one (a browser) a string is a URL.
 */
import { ArgumentError } from "../tensor/errors.js";
import { IoError } from "./errors.js";

/** Random-access bytes: a file, a buffer, a Blob or a downloaded response. */
export interface ByteSource {
  /** A name for error messages (the path, URL or file name). */
  readonly label: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes starting at `offset`, in a fresh buffer (throws past the end). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Synchronous {@link read}; only file and in-memory sources have it. */
  readSync?(offset: number, length: number): Uint8Array;
  /**
   * The bytes in place, without a copy: a view of a memory map of the file (Node with the native addon). Views of
   * one source share memory; writing to one changes what later views of the same bytes see, never the file.
   * Null when this source cannot be mapped (callers then {@link read}).
   */
  view?(offset: number, length: number): Uint8Array | null;
  /** Releases the source (closes a file). Closing twice is allowed. */
  close(): void;
}

/** A file: a path (Node.js; a URL in browsers), a `URL`, bytes, or a `Blob` / `File`. */
export type FileInput = string | URL | ArrayBuffer | Uint8Array | Blob;

/** File access by path: what the Node entry installs (see node-files.ts). */
export interface FileSystem {
  /** Opens a file for random-access reads. */
  open(path: string): Promise<ByteSource>;
  /** Opens a file synchronously. */
  openSync(path: string): ByteSource;
  /** True when `path` exists and is a file. */
  isFile(path: string): Promise<boolean>;
  /** True when `path` exists and is a folder. */
  isDirectory(path: string): Promise<boolean>;
  /** The names in a folder, or null when it cannot be read. */
  list(dir: string): Promise<string[] | null>;
  /** Joins path segments with the platform's separator. */
  join(...parts: string[]): string;
  /** The hex sha256 of a file's bytes from `start` to its end, streamed (never held in memory). */
  sha256(path: string, start: number): Promise<string>;
}

let fileSystem: FileSystem | null = null;

/** Installs (or with null removes) path access; the Node entry installs Node's file system. */
export function setFileSystem(fs: FileSystem | null): void {
  fileSystem = fs;
}

/** The installed file system, or null (browsers), where strings are URLs. */
export function getFileSystem(): FileSystem | null {
  return fileSystem;
}

function checkRange(label: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new ArgumentError(`${label}: bad byte range offset=${offset} length=${length}`);
  }
  if (offset + length > size) {
    throw new IoError(`${label}: unexpected end of data: bytes ${offset}..${offset + length} of ${size}`);
  }
}

/** A source over bytes already in memory; reads copy their range (the input may be dropped afterwards). */
export function bytesSource(data: ArrayBuffer | Uint8Array, label = "<buffer>"): ByteSource {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const readSync = (offset: number, length: number): Uint8Array => {
    checkRange(label, bytes.length, offset, length);
    return bytes.slice(offset, offset + length);
  };
  return {
    label,
    size: bytes.length,
    readSync,
    read: async (offset, length) => readSync(offset, length),
    close: () => {},
  };
}

/** A source over a `Blob` or `File`: each read is `blob.slice(a, b).arrayBuffer()`, never the whole blob. */
export function blobSource(blob: Blob, label?: string): ByteSource {
  const name = label ?? ((blob as { name?: unknown }).name as string | undefined) ?? "<blob>";
  return {
    label: name,
    size: blob.size,
    async read(offset, length) {
      checkRange(name, blob.size, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
    close: () => {},
  };
}

/**
 * Downloads `url` with `fetch` and reads the response as a Blob (browsers keep large blobs out of the JS heap, on
 * disk if needed), then serves ranges of it like {@link blobSource}.
 */
export async function fetchSource(url: string | URL, init?: RequestInit): Promise<ByteSource> {
  const label = String(url);
  const response = await fetchOk(url, init);
  return blobSource(await response.blob(), label);
}

/** `fetch` that turns network errors and non-2xx statuses into an IoError naming the URL. */
export async function fetchOk(url: string | URL, init?: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new IoError(`${String(url)}: fetch failed (${(err as Error).message})`, { cause: err });
  }
  if (!response.ok) {
    throw new IoError(`${String(url)}: HTTP ${response.status} ${response.statusText}`.trimEnd(), {
      status: response.status,
    });
  }
  return response;
}

/** A string as a URL relative to the page (browsers); absolute URLs stay as they are. */
function toUrl(s: string | URL): URL {
  if (s instanceof URL) return s;
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  return base ? new URL(s, base) : new URL(s);
}

/** A name for error messages. */
export function describeInput(input: FileInput): string {
  if (typeof input === "string" || input instanceof URL) return String(input);
  if (typeof Blob !== "undefined" && input instanceof Blob) return blobSource(input).label;
  return "<buffer>";
}

/**
 * Opens any {@link FileInput} for random-access reads: a path through the installed file system (a URL when
 * there is none), a `URL` with fetch, bytes in memory, a Blob slice by slice.
 */
export async function openSource(input: FileInput, label?: string): Promise<ByteSource> {
  if (input instanceof ArrayBuffer || input instanceof Uint8Array) return bytesSource(input, label);
  if (typeof Blob !== "undefined" && input instanceof Blob) return blobSource(input, label);
  if (typeof input === "string" && fileSystem) return fileSystem.open(input);
  if (typeof input === "string" || input instanceof URL) return fetchSource(toUrl(input));
  throw new ArgumentError(`expected a path, URL, ArrayBuffer, Uint8Array or Blob, got ${typeof input}`);
}

/** Synchronous {@link openSource}: file paths (Node.js) and bytes in memory only. */
export function openSourceSync(input: FileInput, label?: string): ByteSource {
  if (input instanceof ArrayBuffer || input instanceof Uint8Array) return bytesSource(input, label);
  if (typeof input === "string" && fileSystem) return fileSystem.openSync(input);
  throw new ArgumentError(
    `${describeInput(input)}: synchronous reads need a file path in Node.js or bytes in memory; use the async reader`,
  );
}

/** All bytes of a file (for small files such as JSON configs). */
export async function readAllBytes(input: FileInput): Promise<Uint8Array> {
  const source = await openSource(input);
  try {
    return await source.read(0, source.size);
  } finally {
    source.close();
  }
}

/** A file as UTF-8 text. */
export async function readText(input: FileInput): Promise<string> {
  return new TextDecoder().decode(await readAllBytes(input));
}
