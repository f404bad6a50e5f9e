// Building a scheduler from a diffusers config: `_class_name` picks the class (diffusers' `from_pretrained` of
// a `scheduler/` folder).
import { parseConfigJson } from "../io/config-json.js";
import { type ModelSource, modelFolder } from "../io/folder.js";
import type { SchedulerConfigInput, SchedulerOptions } from "./config.js";
import { DDIMScheduler } from "./ddim.js";
import { DDPMScheduler } from "./ddpm.js";
import { DPMSolverMultistepScheduler } from "./dpmsolver-multistep.js";
import { SchedulerError } from "./errors.js";
import { EulerDiscreteScheduler } from "./euler.js";
import { EulerAncestralDiscreteScheduler } from "./euler-ancestral.js";
import { HeunDiscreteScheduler } from "./heun.js";
import { LCMScheduler } from "./lcm.js";
import { LMSDiscreteScheduler } from "./lms.js";
import { PNDMScheduler } from "./pndm.js";
import type { Scheduler, SchedulerClass } from "./scheduler.js";
import { UniPCMultistepScheduler } from "./unipc.js";

/** Every scheduler class, by diffusers' class name. */
export const SCHEDULER_CLASSES: Readonly<Record<string, SchedulerClass>> = Object.freeze({
  DDPMScheduler,
  DDIMScheduler,
  PNDMScheduler,
  LMSDiscreteScheduler,
  EulerDiscreteScheduler,
  EulerAncestralDiscreteScheduler,
  HeunDiscreteScheduler,
  DPMSolverMultistepScheduler,
  UniPCMultistepScheduler,
  LCMScheduler,
});

/** The scheduler class named `className` (diffusers' name), or a SchedulerError listing the known ones. */
export function schedulerClass(className: string): SchedulerClass {
  const cls = Object.hasOwn(SCHEDULER_CLASSES, className) ? SCHEDULER_CLASSES[className] : undefined;
  if (!cls) {
    throw new SchedulerError(
      `unknown scheduler class ${JSON.stringify(className)}; known: ${Object.keys(SCHEDULER_CLASSES).join(", ")}`,
    );
  }
  return cls;
}

/** Builds the scheduler a diffusers config describes, choosing the class by its `_class_name`. */
export function schedulerFromConfig(config: SchedulerConfigInput, options?: SchedulerOptions): Scheduler {
  const name = config._class_name;
  if (typeof name !== "string") {
    throw new SchedulerError('scheduler config has no "_class_name"; use a class\'s fromConfig() instead');
  }
  return new (schedulerClass(name))(config, options);
}

/**
 * Parses scheduler_config.json text. diffusers writes non-finite floats as bare `Infinity` / `-Infinity` / `NaN`
 * (Python's json module), which JSON.parse rejects; those tokens are read as numbers.
 */
export function parseSchedulerConfigJson(
  text: string,
  file = "scheduler_config.json",
): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = parseConfigJson(text);
  } catch (err) {
    throw new SchedulerError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new SchedulerError(`${file}: expected a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Loads the scheduler of a diffusers model folder from `<dir>/scheduler/scheduler_config.json` (or
 * `<dir>/scheduler_config.json` when `dir` is the scheduler folder itself). `dir` is a path (Node.js), a URL or a
 * map of files (see ModelSource).
 */
export async function loadScheduler(dir: ModelSource, options?: SchedulerOptions): Promise<Scheduler> {
  const folder = modelFolder(dir);
  const names = ["scheduler/scheduler_config.json", "scheduler_config.json"];
  for (const name of names) {
    const file = folder.describe(name);
    let text: string | null;
    try {
      text = await folder.readText(name);
    } catch (err) {
      throw new SchedulerError(`${file}: cannot read (${(err as Error).message})`);
    }
    if (text === null) continue;
    const config = parseSchedulerConfigJson(text, file);
    try {
      return schedulerFromConfig(config, options);
    } catch (err) {
      if (err instanceof SchedulerError) throw new SchedulerError(`${file}: ${err.message}`);
      throw err;
    }
  }
  throw new SchedulerError(`no scheduler config found: ${folder.describe(names[0]!)} does not exist`);
}
