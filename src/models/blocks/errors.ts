import { DiffuseError } from "../../tensor/errors.js";

/**
 * A model config (diffusers' `config.json` keys) cannot describe a model this library builds: an unknown block
 * type, lists of the wrong length, channels that do not split into the norm groups or attention heads, an option
 * that is not supported. The message names the key, what it accepts and what it got.
 */
export class ModelConfigError extends DiffuseError {}

/**
 * A model folder could not be loaded: `config.json` or the weights are missing, unreadable or not what the model
 * expects. (Key and shape mismatches between the checkpoint and the model are reported as nn's `StateDictError`.)
 */
export class CheckpointError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
