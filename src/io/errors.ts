import { DiffuseError } from "../tensor/errors.js";

/**
 * A safetensors file or buffer was malformed, truncated or could not be read or written. The message names the
 * file and the problem; `cause` holds the underlying system error where there was one.
 */
export class SafetensorsError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * A checkpoint (a model folder, a weights file, a single-file Stable Diffusion checkpoint) could not be loaded: a
 * file is missing or unreadable, or its contents are not what was expected. The message names what was found,
 * what was expected and what to do. (Key and shape mismatches against a model are nn's `StateDictError`.)
 */
export class CheckpointError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** A short description of a Node.js file-system error ("file not found", "permission denied", ...). */
export function describeFsError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case "ENOENT":
      return "file not found";
    case "EISDIR":
      return "is a directory, not a file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "ENOTDIR":
      return "a parent of the path is not a directory";
    case "ENOSPC":
      return "no space left on the device";
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

/**
 * A file, Blob or URL could not be read: missing (`notFound`), an HTTP error (`status`), a network or
 * file-system failure (`cause`), or a read past its end.
 */
export class IoError extends DiffuseError {
  /** True when the file or URL does not exist (ENOENT, HTTP 404). */
  readonly notFound: boolean;
  /** The HTTP status of a failed fetch. */
  readonly status?: number;
  constructor(message: string, options: { cause?: unknown; status?: number; notFound?: boolean } = {}) {
    super(message);
    if (options.cause !== undefined) this.cause = options.cause;
    if (options.status !== undefined) this.status = options.status;
    this.notFound = options.notFound ?? options.status === 404;
  }
}
