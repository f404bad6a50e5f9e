import { DiffuseError } from "../../tensor/errors.js";

/**
 * A text-encoder folder could not be loaded: `config.json` or the weights file is missing or unreadable, or the
 * config is invalid. The message names the path and what was expected there. (Key and shape mismatches between
 * checkpoint and model are reported as nn's `StateDictError`.)
 */
export class CLIPLoadError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
