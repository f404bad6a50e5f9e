import { CheckpointError } from "../blocks/errors.js";

/**
 * A text-encoder folder could not be loaded: `config.json` or the weights file is missing or unreadable, or the
 * config is invalid. The message names the path and what was expected there. A {@link CheckpointError}, so one
 * `catch` handles every model's loading errors. (Key and shape mismatches between checkpoint and model are
 * reported as nn's `StateDictError`.)
 */
export class CLIPLoadError extends CheckpointError {}
