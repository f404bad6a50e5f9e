// The one reader of diffusers' `model_index.json`: the pipeline class, its components (`[library, class]`, or
// `[null, null]` for one left out) and the pipeline options this library uses, each checked, with errors naming the
// file, what was expected and what was found.
import { CheckpointError } from "../io/errors.js";
import { type ModelSource, modelFolder } from "../io/folder.js";
import { readJsonObject } from "../models/blocks/weights.js";
import { checkGuidanceInterval, type GuidanceInterval } from "./guidance.js";

/** The file name of a pipeline folder's index. */
export const MODEL_INDEX = "model_index.json";

/** A component of model_index.json: `[library, class]`, or null when absent (`[null, null]`). */
export type ModelIndexEntry = readonly [string, string] | null;

/** A parsed model_index.json. */
export interface ModelIndex {
  /** The file it was read from. */
  path: string;
  /** `_class_name`: the pipeline class. */
  className: string;
  /** `_diffusers_version`, when written. */
  diffusersVersion?: string;
  /** The components by name (unet, vae, scheduler, ...). */
  components: Readonly<Record<string, ModelIndexEntry>>;
  /** `force_zeros_for_empty_prompt` (SDXL): an empty negative prompt is all zeros. */
  forceZerosForEmptyPrompt?: boolean;
  /** `guidance_interval` ([sigma_min, sigma_max or null]): the pipeline's default guidance interval. */
  guidanceInterval?: GuidanceInterval;
  /** Every other key, as written (e.g. `requires_safety_checker`). */
  options: Readonly<Record<string, unknown>>;
}

/**
 * The model_index.json contents of a StableDiffusionPipeline folder (unet, vae, one CLIP text encoder and
 * tokenizer, the scheduler class given, no safety checker), as the package writes them.
 */
export function stableDiffusionModelIndex(schedulerClass: string): Record<string, unknown> {
  return {
    _class_name: "StableDiffusionPipeline",
    _diffusers_version: "0.30.0",
    feature_extractor: [null, null],
    requires_safety_checker: false,
    safety_checker: [null, null],
    scheduler: ["diffusers", schedulerClass],
    text_encoder: ["transformers", "CLIPTextModel"],
    tokenizer: ["transformers", "CLIPTokenizer"],
    unet: ["diffusers", "UNet2DConditionModel"],
    vae: ["diffusers", "AutoencoderKL"],
  };
}

/** Checks the contents of a model_index.json (`path`: the file, for errors). */
export function parseModelIndex(raw: Record<string, unknown>, path: string): ModelIndex {
  const found = (v: unknown) => JSON.stringify(v) ?? String(v);
  const className = raw._class_name;
  if (typeof className !== "string") {
    throw new CheckpointError(
      `${path}: expected "_class_name" (the pipeline class) to be a string, found ${found(className)}`,
    );
  }
  const index: ModelIndex = { path, className, components: {}, options: {} };
  const components: Record<string, ModelIndexEntry> = {};
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === "_class_name") continue;
    if (key === "_diffusers_version") {
      if (typeof value === "string") index.diffusersVersion = value;
    } else if (key === "force_zeros_for_empty_prompt") {
      if (typeof value !== "boolean") {
        throw new CheckpointError(`${path}: expected ${key} to be true or false, found ${found(value)}`);
      }
      index.forceZerosForEmptyPrompt = value;
    } else if (key === "guidance_interval") {
      if (value !== null) index.guidanceInterval = guidanceIntervalOf(value, path);
    } else if (Array.isArray(value) && !key.startsWith("_")) {
      if (value.length === 2 && value.every((x) => typeof x === "string")) {
        components[key] = [value[0], value[1]] as const;
      } else if (value.every((x) => x === null)) components[key] = null;
      else {
        throw new CheckpointError(
          `${path}: expected component ${key} to be [library, class] or [null, null], found ${found(value)}`,
        );
      }
    } else options[key] = value;
  }
  return { ...index, components, options };
}

/** `guidance_interval`: [sigma_min, sigma_max] with null for no upper bound. */
function guidanceIntervalOf(value: unknown, path: string): GuidanceInterval {
  const ok =
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === "number" &&
    (typeof value[1] === "number" || value[1] === null);
  if (!ok) {
    throw new CheckpointError(
      `${path}: expected guidance_interval to be [sigma_min, sigma_max or null], found ${JSON.stringify(value)}`,
    );
  }
  const interval = { sigmaMin: value[0] as number, sigmaMax: (value[1] as number | null) ?? Infinity };
  try {
    checkGuidanceInterval(interval);
  } catch (err) {
    throw new CheckpointError(`${path}: guidance_interval: ${(err as Error).message}`, { cause: err });
  }
  return interval;
}

/**
 * Reads and checks `<dir>/model_index.json` (CheckpointError naming the file when it is missing or invalid); `dir`
 * is a path (Node.js), a base URL or a map of files.
 */
export async function readModelIndex(dir: ModelSource): Promise<ModelIndex> {
  const folder = modelFolder(dir);
  return parseModelIndex(
    await readJsonObject(folder, MODEL_INDEX, MODEL_INDEX),
    folder.describe(MODEL_INDEX),
  );
}
