// Sampling a class-conditional pixel-space diffusion model (a diffusers UNet2DModel with a class-embedding table
// whose last row is the "null" class), with classifier-free guidance (Ho & Salimans 2022): the conditional and the
// unconditional prediction come from one batched UNet call and are mixed as e_u + g (e_c - e_u).
import { type ModelSource, modelFolder } from "../io/folder.js";
import type { FromPretrainedOptions } from "../models/blocks/weights.js";
import { UNet2DModel } from "../models/unet/unet-2d.js";
import { add, cat, clamp, mul, narrow, sub } from "../ops/index.js";
import { loadScheduler } from "../schedulers/registry.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { noGrad } from "../tensor/autograd.js";
import { randn } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import type { Tensor } from "../tensor/tensor.js";
import { checkGuidanceInterval, type GuidanceInterval, guidedAt } from "./guidance.js";

/** Options of {@link generateClassImages}. */
export interface ClassImageOptions {
  /** One image per label, each in [0, numClasses). */
  classLabels: readonly number[];
  /**
   * Classifier-free guidance scale g (default 3; 1 = the conditional model alone, 0 = the unconditional one; with a
   * guidance interval only its steps use g, the others the conditional model).
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
  seed?: number;
  generator?: Generator;
  /** Called after each step with stage "sample". */
  onProgress?: ProgressCallback;
  /** Aborts between steps (throws the signal's reason). */
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

/** model_index.json's `guidance_interval`: [sigma_min, sigma_max] with null for no upper bound. */
function readGuidanceInterval(value: unknown, file: string): GuidanceInterval | undefined {
  if (value === undefined || value === null) return undefined;
  const ok =
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === "number" &&
    (typeof value[1] === "number" || value[1] === null);
  if (!ok) {
    throw new ArgumentError(
      `${file}: guidance_interval must be [sigma_min, sigma_max or null], got ${JSON.stringify(value)}`,
    );
  }
  return checkedInterval(
    { sigmaMin: value[0] as number, sigmaMax: (value[1] as number | null) ?? Infinity },
    file,
  );
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
 * Samples one image per class label with any scheduler (setTimesteps / scaleModelInput / step): returns
 * [N, out_channels, H, W] clamped to [-1, 1]. With guidance (g != 1) each step runs the UNet once on a batch of 2N:
 * the labels and N null labels.
 */
export function generateClassImages(
  unet: UNet2DModel,
  scheduler: Scheduler,
  opts: ClassImageOptions,
): Tensor {
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
  if (!Number.isFinite(g))
    throw new ArgumentError(`generateClassImages: guidanceScale must be finite, got ${g}`);
  if (opts.guidanceInterval) checkedInterval(opts.guidanceInterval, "generateClassImages");
  if (!Number.isInteger(steps) || steps < 1) {
    throw new ArgumentError(`generateClassImages: steps must be a positive integer, got ${steps}`);
  }
  const generator = opts.generator ?? new Generator(opts.seed ?? 0);
  const n = labels.length;
  const [h, w] = sampleSize(unet);
  const guided = g !== 1;
  const batchLabels = guided ? [...labels, ...new Array<number>(n).fill(nullClass)] : [...labels];
  return noGrad(() => {
    scheduler.setTimesteps(steps);
    let x = randn([n, unet.config.in_channels, h, w], { generator });
    if (scheduler.initNoiseSigma !== 1) x = mul(x, scheduler.initNoiseSigma);
    const timesteps = scheduler.timesteps;
    for (let i = 0; i < timesteps.length; i++) {
      opts.signal?.throwIfAborted();
      const t = timesteps[i]!;
      const input = scheduler.scaleModelInput(x, t);
      // outside the guidance interval the conditional branch runs alone
      const guidedStep = guided && guidedAt(scheduler, t, opts.guidanceInterval);
      let out = unet.call(guidedStep ? cat([input, input], 0) : input, t, guidedStep ? batchLabels : labels);
      if (guidedStep) {
        const cond = narrow(out, 0, 0, n);
        const uncond = narrow(out, 0, n, n);
        out = add(uncond, mul(sub(cond, uncond), g));
      }
      x = scheduler.step(out, t, x, { generator }).prevSample;
      opts.onProgress?.({ stage: "sample", step: i + 1, total: timesteps.length, values: { t } });
    }
    return clamp(x, -1, 1);
  });
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
  const indexFile = folder.describe("model_index.json");
  let index: Record<string, unknown> | null = null;
  try {
    const text = await folder.readText("model_index.json");
    if (text !== null) index = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new ArgumentError(`${indexFile}: cannot read (${(err as Error).message})`);
  }
  const unetEntry = index?.unet;
  if (index && !(Array.isArray(unetEntry) && unetEntry[1] === "UNet2DModel")) {
    throw new ArgumentError(
      `${indexFile}: not a class-conditional UNet2DModel pipeline (unet is ${JSON.stringify(unetEntry)})`,
    );
  }
  const guidanceInterval = readGuidanceInterval(index?.guidance_interval, indexFile);
  const unet = await UNet2DModel.fromPretrained(folder.sub("unet"), opts);
  const scheduler = await loadScheduler(folder);
  return guidanceInterval ? { unet, scheduler, guidanceInterval } : { unet, scheduler };
}

/** `_class_name` of the model_index.json of these folders. */
export const CLASS_CONDITIONAL_PIPELINE = "ClassConditionalPipeline";
