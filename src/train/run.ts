// A whole training run into an output folder: start (or resume from its checkpoint), step with progress events,
// every K steps a sample grid and the loss curve and/or a checkpoint, and at the end (or when stopped) a final
// checkpoint and the pipeline folder with the EMA weights. The output folder is a pipeline folder:
//   model_index.json, unet/, scheduler/  (loadClassConditionalPipeline reads it), checkpoint/, samples/.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { imageGrid, tensorToImage, writePng } from "../io/image.js";
import type { RawConfig } from "../models/blocks/config-values.js";
import { UNet2DModel } from "../models/unet/unet-2d.js";
import { select, toDeviceAsync } from "../ops/index.js";
import { generateClassImages } from "../pipelines/class-conditional.js";
import { saveClassConditionalPipeline } from "../pipelines/class-conditional-save.js";
import type { GuidanceInterval } from "../pipelines/guidance.js";
import { formatParameters } from "../pipelines/params.js";
import { DDPMScheduler } from "../schedulers/ddpm.js";
import { samplerFromName } from "../schedulers/samplers.js";
import type { Device } from "../tensor/device.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import { loadCheckpoint, resumeCheckpoint } from "./checkpoint.js";
import type { LabeledImages } from "./data/loader.js";
import { DiffusionTrainer, type DiffusionTrainOptions } from "./diffusion-trainer.js";
import { trainIntoFolder, writeLossCurve } from "./loop.js";
import { withEmaWeights } from "./trainer-base.js";

/** How the periodic sample grids are drawn. */
export interface SampleGridOptions {
  /** Labels of the grid's images, row by row (default 0..9 twice). */
  labels?: number[];
  /** Grid columns (default 10). */
  columns?: number;
  sampler?: string;
  steps?: number;
  guidanceScale?: number;
  /** Guided noise levels (default: the run's {@link TrainDiffusionOptions.guidanceInterval}). */
  guidanceInterval?: GuidanceInterval;
  seed?: number;
}

/** Options of {@link trainDiffusion}. */
export interface TrainDiffusionOptions {
  /** Output (pipeline) folder. */
  outDir: string;
  data: LabeledImages;
  /** UNet2DModel config of a new run (ignored when resuming: the checkpoint's is used). */
  unetConfig?: RawConfig;
  /** DDPMScheduler config of a new run (prediction_type, beta schedule...). */
  schedulerConfig?: Record<string, unknown>;
  /** Hyperparameters of a new run; when resuming only `steps` is taken from here (to extend a run). */
  train: DiffusionTrainOptions;
  /** Continue from this folder's checkpoint (an output folder or its checkpoint/ folder). */
  resumeFrom?: string;
  /** The device the UNet trains on (default "cpu"; `"webgpu"` after `await initWebGpu()`). */
  device?: Device;
  /** Write a sample grid + loss curve every this many steps (0: only at the end). */
  sampleEvery?: number;
  /** Write a checkpoint every this many steps (0: only at the end / when stopped). */
  checkpointEvery?: number;
  /**
   * Report progress (loss, gradient norm: read back from the device) every this many steps (default 1; a GPU
   * run reads back less often with a larger value). The last step is always reported.
   */
  logEvery?: number;
  samples?: SampleGridOptions;
  /** The sampling default written into the pipeline folder (model_index.json `guidance_interval`). */
  guidanceInterval?: GuidanceInterval;
  /** Stage "train" events with loss, lr, images/s; stage "sample" during sample grids. */
  onProgress?: ProgressCallback;
  /** Stops the run after the current step; a checkpoint and the pipeline folder are written. */
  signal?: AbortSignal;
  /** Told about each file written (sample grids, loss curve, checkpoints, the pipeline). */
  onSaved?: (what: "samples" | "checkpoint" | "pipeline", path: string, step: number) => void;
  /** Extras stored in the checkpoint (e.g. the command line). */
  extra?: Record<string, unknown>;
}

/** What {@link trainDiffusion} returns. */
export interface TrainDiffusionResult {
  trainer: DiffusionTrainer;
  /** True when stopped by the signal before the last step. */
  stopped: boolean;
  /** Step the run resumed from (0 for a new run). */
  resumedAt: number;
}

/** Builds a fresh trainer, or one restored from `resumeFrom`'s checkpoint. */
export async function createTrainer(
  opts: Pick<
    TrainDiffusionOptions,
    "data" | "unetConfig" | "schedulerConfig" | "train" | "resumeFrom" | "device"
  >,
): Promise<DiffusionTrainer> {
  if (opts.resumeFrom) {
    const { dir, state } = resumeCheckpoint(opts.resumeFrom);
    if (!state.unetConfig || !state.schedulerConfig)
      throw new ArgumentError(`resume: ${dir} is not a diffusion training checkpoint (no unetConfig)`);
    const unet = new UNet2DModel(state.unetConfig, { skipInit: true });
    if (opts.device) unet.toDevice(opts.device);
    const scheduler = new DDPMScheduler(state.schedulerConfig);
    const trainer = new DiffusionTrainer(unet, scheduler, opts.data, {
      ...state.options,
      steps: opts.train.steps,
    });
    await loadCheckpoint(trainer, dir);
    return trainer;
  }
  const seed = opts.train.seed ?? 0;
  const unet = new UNet2DModel(opts.unetConfig ?? {}, { generator: new Generator(seed + 2) });
  // the optimizer's and EMA's state is made where the parameters are: move before the trainer builds them
  if (opts.device) unet.toDevice(opts.device);
  const scheduler = new DDPMScheduler(opts.schedulerConfig ?? {});
  return new DiffusionTrainer(unet, scheduler, opts.data, opts.train);
}

/** The scheduler config to ship: the training DDPM config with its class name. */
function schedulerJson(trainer: DiffusionTrainer): Record<string, unknown> {
  return { ...trainer.noiseScheduler.config, _class_name: trainer.noiseScheduler.className };
}

/** Draws a grid of samples with the EMA weights (the training weights are put back afterwards). */
export async function sampleGrid(
  trainer: DiffusionTrainer,
  opts: SampleGridOptions = {},
  onProgress?: ProgressCallback,
) {
  const labels = opts.labels ?? [...Array(20).keys()].map((i) => i % 10);
  const sampler = samplerFromName(opts.sampler ?? "dpmpp-2m", schedulerJson(trainer));
  return withEmaWeights(trainer, async () => {
    const x = await generateClassImages(trainer.unet, sampler, {
      classLabels: labels,
      steps: opts.steps ?? 20,
      guidanceScale: opts.guidanceScale ?? 3,
      guidanceInterval: opts.guidanceInterval,
      seed: opts.seed ?? 0,
      onProgress,
    });
    const cpu = await toDeviceAsync(x, "cpu");
    const images = labels.map((_, i) => tensorToImage(select(cpu, 0, i)));
    return imageGrid(images, opts.columns ?? 10);
  });
}

/** Runs (or resumes) training into `outDir`; see the file comment for the layout. */
export async function trainDiffusion(opts: TrainDiffusionOptions): Promise<TrainDiffusionResult> {
  const trainer = await createTrainer(opts);
  const resumedAt = trainer.step;
  const out = opts.outDir;
  const samplesDir = join(out, "samples");
  mkdirSync(samplesDir, { recursive: true });
  const writeSamples = async (): Promise<void> => {
    const interval = opts.samples?.guidanceInterval ?? opts.guidanceInterval;
    const grid = await sampleGrid(trainer, { ...opts.samples, guidanceInterval: interval }, opts.onProgress);
    const path = join(samplesDir, `step-${String(trainer.step).padStart(6, "0")}.png`);
    const parameters = formatParameters({
      prompt: "class grid",
      negativePrompt: "",
      steps: opts.samples?.steps ?? 20,
      sampler: opts.samples?.sampler ?? "dpmpp-2m",
      guidanceScale: opts.samples?.guidanceScale ?? 3,
      seed: opts.samples?.seed ?? 0,
      width: grid.width,
      height: grid.height,
      guidanceInterval: interval ?? undefined,
      extra: { "Training step": String(trainer.step) },
    });
    writePng(path, grid, { parameters });
    opts.onSaved?.("samples", path, trainer.step);
    const svg = join(samplesDir, "loss.svg");
    await writeLossCurve(trainer, svg);
    opts.onSaved?.("samples", svg, trainer.step);
  };
  const stopped = await trainIntoFolder(trainer, out, opts, writeSamples);
  await saveClassConditionalPipeline(out, trainer.unet, schedulerJson(trainer), {
    weights: trainer.ema.averagedStateDict(),
    guidanceInterval: opts.guidanceInterval,
  });
  opts.onSaved?.("pipeline", out, trainer.step);
  if (!stopped) await writeSamples();
  return { trainer, stopped, resumedAt };
}
