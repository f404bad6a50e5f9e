import { DiffuseError } from "../tensor/errors.js";

/**
 * A pipeline could not run as asked (missing component, invalid size, NaN latents, ...). The message says what
 * was expected, what was found and what to do.
 */
export class PipelineError extends DiffuseError {}
