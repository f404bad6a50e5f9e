import { DiffuseError } from "../tensor/errors.js";

/**
 * A scheduler was configured or driven in a way it cannot handle (an unknown `beta_schedule`, more inference steps
 * than training steps, `step()` before `setTimesteps()`, ...). The message names the option, what it accepts and
 * what it got.
 */
export class SchedulerError extends DiffuseError {}
