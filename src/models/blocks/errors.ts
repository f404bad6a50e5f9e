import { DiffuseError } from "../../tensor/errors.js";

/**
 * A model config (diffusers' `config.json` keys) cannot describe a model this library builds: an unknown block
 * type, lists of the wrong length, channels that do not split into the norm groups or attention heads, an option
 * that is not supported. The message names the key, what it accepts and what it got.
 */
export class ModelConfigError extends DiffuseError {}

// A model folder could not be loaded (`config.json` or the weights missing, unreadable or not what the model
// expects). Defined in io so that checkpoint-format code below the models can throw it too.
export { CheckpointError } from "../../io/errors.js";
