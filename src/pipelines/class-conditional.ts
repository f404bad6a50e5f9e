// Sampling a class-conditional pixel-space diffusion model (a diffusers UNet2DModel with a class-embedding table
// whose last row is the "null" class), with classifier-free guidance (Ho & Salimans 2022) in the pipelines' one
// denoising loop (denoise.ts): the unconditional and the conditional prediction come from one batched UNet call and
// are mixed as e_u + g (e_c - e_u). Saving a pipeline folder (Node.js) is in class-conditional-save.ts; this module
// also runs in browsers.
import { CheckpointError } from "../io/errors.js";
import { type ModelSource, modelFolder } from "../io/folder.js";
import type { FromPretrainedOptions } from "../models/blocks/weights.js";
import { UNet2DModel } from "../models/unet/unet-2d.js";
import { clamp, mul } from "../ops/index.js";
import { loadScheduler } from "../schedulers/registry.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { noGrad } from "../tensor/autograd.js";
import { randn } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import type { Tensor } from "../tensor/tensor.js";
import { denoise, type NoisePredictor } from "./denoise.js";
import { checkGuidance, checkGuidanceInterval, type GuidanceInterval, usesGuidance } from "./guidance.js";
import { MODEL_INDEX, readModelIndex } from "./model-index.js";

/** Options of {@link generateClassImages}. */
export interface ClassImageOptions {
  /** One image per label, each in [0, numClasses). */
  classLabels: readonly number[];
  /**
   * Classifier-free guidance scale g >= 0 (default 3). As diffusers, g <= 1 runs the conditional model alone; with a
   * guidance interval only its steps use g, the others the conditional model.
   */
  guidanceScale?: number;
  /**
   * Guide only the steps whose noise level lies in this interval (default: every step; see
   * {@link GuidanceInterval}); the others run the conditional branch alone.
   */
  guidanceInterval?: GuidanceInterval;
  /** Inference steps (default 20). */
  steps?: number;
  /** Seed of a new Generator for the initial noise and stochastic steps (default 0), unless `generator`. */
  seed?: number | bigint;
  generator?: Generator;
  /** Called after each step with stage "sample". */
  onProgress?: ProgressCallback;
  /** Aborts between steps (rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Index of the unconditional class (default num_class_embeds - 1). */
  nullClass?: number;
}

/** The parts of a class-conditional pipeline folder. */
export interface ClassConditionalPipeline {
  unet: UNet2DModel;
  scheduler: Scheduler;
  /** The folder's default guidance interval (model_index.json `guidance_interval`), if it has one. */
  guidanceInterval?: GuidanceInterval;
}

/** `interval` when usable, else an ArgumentError naming `where` (this module's error type for bad input). */
export function checkedInterval(interval: GuidanceInterval, where: string): GuidanceInterval {
  try {
    checkGuidanceInterval(interval);
  } catch (err) {
    throw new ArgumentError(`${where}: ${(err as Error).message}`);
  }
  return interval;
}

/** Image size [H, W] of the UNet's `sample_size`. */
function sampleSize(unet: UNet2DModel): [number, number] {
  const s = unet.config.sample_size;
  if (typeof s === "number") return [s, s];
  if (Array.isArray(s) && s.length === 2) return [s[0] as number, s[1] as number];
  throw new ArgumentError(
    "generateClassImages: the UNet config has no sample_size; cannot choose the image size",
  );
}

/**
 * The {@link NoisePredictor} of a class-conditional UNet: the guidance batch gets N null labels then the labels
 * ([uncond; cond], diffusers' order), a step without guidance the labels alone.
 */
export function classPredictor(
  unet: UNet2DModel,
  labels: readonly number[],
  nullClass: number,
): NoisePredictor {
  const batchLabels = [...new Array<number>(labels.length).fill(nullClass), ...labels];
  return (input, t, guided) => unet.call(input, t, guided ? batchLabels : labels);
}

/**
 * Samples one image per class label with any scheduler (setTimesteps / scaleModelInput / step) in the pipelines'
 * one loop ({@link denoise}): returns [N, out_channels, H, W] clamped to [-1, 1]. With guidance (g > 1, as
 * diffusers) each guided step runs the UNet once on a batch of 2N: N null labels, then the labels.
 */
export async function generateClassImages(
  unet: UNet2DModel,
  scheduler: Scheduler,
  opts: ClassImageOptions,
): Promise<Tensor> {
  const labels = opts.classLabels;
  const nEmbeds = unet.numClassEmbeds;
  if (nEmbeds < 2) {
    throw new ArgumentError("generateClassImages: the UNet is not class-conditional (num_class_embeds < 2)");
  }
  const nullClass = opts.nullClass ?? nEmbeds - 1;
  const numClasses = nEmbeds - 1;
  if (labels.length === 0) throw new ArgumentError("generateClassImages: classLabels is empty");
  for (const c of labels) {
    if (!Number.isInteger(c) || c < 0 || c >= nEmbeds || c === nullClass) {
      throw new ArgumentError(
        `generateClassImages: class label ${c} is out of range; this model has classes 0..${numClasses - 1}`,
      );
    }
  }
  const g = opts.guidanceScale ?? 3;
  const steps = opts.steps ?? 20;
  checkGuidance(g, 0);
  if (opts.guidanceInterval) checkedInterval(opts.guidanceInterval, "generateClassImages");
  if (!Number.isInteger(steps) || steps < 1) {
    throw new ArgumentError(`generateClassImages: steps must be a positive integer, got ${steps}`);
  }
  opts.signal?.throwIfAborted();
  const generator = opts.generator ?? new Generator(opts.seed ?? 0);
  const [h, w] = sampleSize(unet);
  scheduler.setTimesteps(steps);
  let x = randn([labels.length, unet.config.in_channels, h, w], { generator, device: unet.device });
  if (scheduler.initNoiseSigma !== 1) x = noGrad(() => mul(x, scheduler.initNoiseSigma));
  const final = await denoise({
    predict: classPredictor(unet, labels, nullClass),
    scheduler,
    timesteps: scheduler.timesteps,
    latents: x,
    guided: usesGuidance(g),
    guidanceScale: g,
    guidanceRescale: 0,
    guidanceInterval: opts.guidanceInterval,
    generator,
    onProgress: opts.onProgress,
    signal: opts.signal,
  });
  return noGrad(() => clamp(final, -1, 1));
}

/**
 * Loads a class-conditional pipeline folder: `unet/` (UNet2DModel) and `scheduler/scheduler_config.json`
 * (model_index.json is checked when present). `dir` is a path (Node.js), a base URL (fetch) or a map of file
 * names to Blobs / ArrayBuffers (see ModelSource).
 */
export async function loadClassConditionalPipeline(
  dir: ModelSource,
  opts: FromPretrainedOptions = {},
): Promise<ClassConditionalPipeline> {
  const folder = modelFolder(dir);
  const index = (await folder.exists(MODEL_INDEX)) ? await readModelIndex(folder) : null;
  const unetEntry = index?.components.unet;
  if (index && unetEntry?.[1] !== "UNet2DModel") {
    throw new CheckpointError(
      `${index.path}: not a class-conditional UNet2DModel pipeline (expected unet: ["diffusers", "UNet2DModel"], found ${JSON.stringify(unetEntry ?? null)})`,
    );
  }
  const guidanceInterval = index?.guidanceInterval;
  const unet = await UNet2DModel.fromPretrained(folder.sub("unet"), opts);
  const scheduler = await loadScheduler(folder);
  return guidanceInterval ? { unet, scheduler, guidanceInterval } : { unet, scheduler };
}

/** `_class_name` of the model_index.json of these folders. */
export const CLASS_CONDITIONAL_PIPELINE = "ClassConditionalPipeline";
