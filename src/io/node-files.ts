/**
 * Node.js file access behind the {@link FileSystem} seam of source.ts: positioned reads of a file, so a tensor is
 * read from its own byte range. Imported only by the Node entry (src/platform-node.ts), never by the browser one.
 */
import { createHash } from "node:crypto";
import {
  close,
  closeSync,
  createReadStream,
  fstat,
  fstatSync,
  open,
  openSync,
  read,
  readSync,
} from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describeFsError, IoError } from "./errors.js";
import type { ByteSource, FileSystem } from "./source.js";

const openAsync = promisify(open);
const closeAsync = promisify(close);
const fstatAsync = promisify(fstat);
const readAsync = promisify(read);

/** fs reads at most 2^31 - 1 bytes per call; larger ranges are read in chunks. */
const MAX_READ = 1 << 30;

function openFailed(path: string, err: unknown): IoError {
  const code = (err as { code?: string }).code;
  return new IoError(`${path}: ${describeFsError(err)}`, { cause: err, notFound: code === "ENOENT" });
}

function checkRange(path: string, size: number, offset: number, length: number): void {
  if (offset < 0 || length < 0 || offset + length > size) {
    throw new IoError(`${path}: unexpected end of file: bytes ${offset}..${offset + length} of ${size}`);
  }
}

/** Maps a whole file into memory (the native addon's mapFile); null where it cannot. */
export type FileMapper = (path: string) => ArrayBuffer | null;

let mapper: FileMapper | null = null;

/**
 * Installs the function that memory-maps files for {@link ByteSource.view} (the Node entry passes the native
 * addon's; `DIFFUSE_MMAP=0` in the environment keeps files read into their own buffers).
 */
export function setFileMapper(fn: FileMapper | null): void {
  mapper = process.env.DIFFUSE_MMAP === "0" ? null : fn;
}

function fileSource(path: string, fd: number, size: number): ByteSource {
  let isOpen = true;
  // the whole file, mapped on the first view (undefined: not tried yet; null: cannot be mapped)
  let mapped: Uint8Array | null | undefined;
  const check = (offset: number, length: number): void => {
    if (!isOpen) throw new IoError(`${path}: file is closed`);
    checkRange(path, size, offset, length);
  };
  const truncated = (at: number) =>
    new IoError(`${path}: unexpected end of file at byte ${at} (truncated while open?)`);
  const failed = (err: unknown) =>
    err instanceof IoError
      ? err
      : new IoError(`${path}: read failed: ${describeFsError(err)}`, { cause: err });
  return {
    label: path,
    size,
    readSync(offset, length) {
      check(offset, length);
      const out = new Uint8Array(length);
      try {
        for (let done = 0; done < length; ) {
          const got = readSync(fd, out, done, Math.min(length - done, MAX_READ), offset + done);
          if (got === 0) throw truncated(offset + done);
          done += got;
        }
      } catch (err) {
        throw failed(err);
      }
      return out;
    },
    async read(offset, length) {
      check(offset, length);
      const out = new Uint8Array(length);
      try {
        for (let done = 0; done < length; ) {
          const n = Math.min(length - done, MAX_READ);
          const got = (await readAsync(fd, out, done, n, offset + done)).bytesRead;
          if (got === 0) throw truncated(offset + done);
          done += got;
        }
      } catch (err) {
        throw failed(err);
      }
      return out;
    },
    view(offset, length) {
      check(offset, length);
      if (mapped === undefined) {
        const buffer = mapper?.(path) ?? null;
        // a file that changed size since it was opened is not the file the header describes
        mapped = buffer && buffer.byteLength === size ? new Uint8Array(buffer) : null;
      }
      return mapped?.subarray(offset, offset + length) ?? null;
    },
    close() {
      if (!isOpen) return;
      isOpen = false;
      closeSync(fd);
    },
  };
}

/** Node's file system: what the Node entry installs with `setFileSystem`. */
export const nodeFileSystem: FileSystem = {
  async open(path) {
    let fd: number;
    try {
      fd = await openAsync(path, "r");
    } catch (err) {
      throw openFailed(path, err);
    }
    try {
      const info = await fstatAsync(fd);
      if (info.isDirectory()) throw new IoError(`${path}: is a directory, not a file`);
      return fileSource(path, fd, info.size);
    } catch (err) {
      await closeAsync(fd).catch(() => {});
      throw err;
    }
  },
  openSync(path) {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      throw openFailed(path, err);
    }
    try {
      const info = fstatSync(fd);
      if (info.isDirectory()) throw new IoError(`${path}: is a directory, not a file`);
      return fileSource(path, fd, info.size);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  },
  async isFile(path) {
    return (await stat(path).catch(() => null))?.isFile() ?? false;
  },
  async isDirectory(path) {
    return (await stat(path).catch(() => null))?.isDirectory() ?? false;
  },
  async list(dir) {
    return readdir(dir).catch(() => null);
  },
  join: (...parts) => join(...parts),
  async sha256(path, start) {
    const hash = createHash("sha256");
    try {
      for await (const chunk of createReadStream(path, { start, highWaterMark: 1 << 20 })) {
        hash.update(chunk as Buffer);
      }
    } catch (err) {
      throw new IoError(`${path}: cannot hash (${describeFsError(err)})`, { cause: err });
    }
    return hash.digest("hex");
  },
};
