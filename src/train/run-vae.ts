// A whole autoencoder training run into an output folder: start (or resume from its checkpoint), step with
// progress events, every K steps a grid of originals over reconstructions and the loss curve and/or a checkpoint;
// at the end the diffusers `vae/` folder with the EMA weights and the measured scaling_factor. Layout:
//   vae/ (config.json + diffusion_pytorch_model.safetensors), checkpoint/, samples/.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { imageGrid, tensorToImage, writePng } from "../io/image.js";
import type { RawConfig } from "../models/blocks/config-values.js";
import { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import { select, toDevice } from "../ops/index.js";
import { saveModelFolder } from "../pipelines/save-model-folder.js";
import { noGrad } from "../tensor/autograd.js";
import { tensor } from "../tensor/create.js";
import type { Device } from "../tensor/device.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import { loadCheckpoint, resumeCheckpoint } from "./checkpoint.js";
import type { LabeledImages } from "./data/loader.js";
import { type RunLoopOptions, trainIntoFolder, writeLossCurve } from "./loop.js";
import { withEmaWeights } from "./trainer-base.js";
import { measureScalingFactor, VaeTrainer, type VaeTrainOptions, vaeConfigJson } from "./vae-trainer.js";

/** Options of {@link trainVae}. */
export interface TrainVaeOptions extends RunLoopOptions<"samples" | "vae"> {
  outDir: string;
  /** [count, 3, S, S] images in [-1, 1]. */
  data: LabeledImages;
  /** AutoencoderKL config of a new run (a resumed run uses its checkpoint's). */
  vaeConfig?: RawConfig;
  /** Hyperparameters of a new run; when resuming only `steps` is taken from here. */
  train: VaeTrainOptions;
  resumeFrom?: string;
  device?: Device;
}

/** How well the autoencoder reproduces a set of images (posterior mode, pixel values in [0, 1]). */
export interface ReconstructionError {
  /** Mean absolute error. */
  l1: number;
  /** Peak signal-to-noise ratio of the mean squared error, dB. */
  psnr: number;
  images: number;
}

/** What {@link trainVae} returns. */
export interface TrainVaeResult {
  trainer: VaeTrainer;
  stopped: boolean;
  resumedAt: number;
  /** Measured with the EMA weights at the end of a run that was not stopped. */
  scalingFactor: number | null;
  reconstruction: ReconstructionError | null;
}

/** A new trainer, or one restored from `resumeFrom`'s checkpoint. */
export async function createVaeTrainer(
  opts: Pick<TrainVaeOptions, "data" | "vaeConfig" | "train" | "resumeFrom" | "device">,
): Promise<VaeTrainer> {
  if (opts.resumeFrom) {
    const { dir, state } = resumeCheckpoint(opts.resumeFrom);
    const config = state.vaeConfig as RawConfig | undefined;
    if (!config)
      throw new ArgumentError(`resume: ${dir} is not an autoencoder training checkpoint (no vaeConfig)`);
    const vae = new AutoencoderKL(config, { skipInit: true });
    if (opts.device) vae.toDevice(opts.device);
    const trainer = new VaeTrainer(vae, opts.data, { ...state.options, steps: opts.train.steps });
    await loadCheckpoint(trainer, dir);
    return trainer;
  }
  const vae = new AutoencoderKL(opts.vaeConfig ?? {}, {
    generator: new Generator((opts.train.seed ?? 0) + 2),
  });
  if (opts.device) vae.toDevice(opts.device);
  return new VaeTrainer(vae, opts.data, opts.train);
}

/** Originals (top row) over their reconstructions (posterior mode) for `count` images spread over the set. */
export function reconstructionGrid(vae: AutoencoderKL, data: LabeledImages, count = 16) {
  const per = data.images.length / data.count;
  const side = Math.round(Math.sqrt(per / 3));
  const picks = Array.from({ length: Math.min(count, data.count) }, (_, i) =>
    Math.floor((i * data.count) / Math.min(count, data.count)),
  );
  const x = tensor(
    Float32Array.from(picks.flatMap((i) => Array.from(data.images.subarray(i * per, (i + 1) * per)))),
    [picks.length, 3, side, side],
  );
  const y = noGrad(() => toDevice(vae.decode(vae.encode(toDevice(x, vae.device)).latentDist.mode()), "cpu"));
  const originals = picks.map((_, i) => tensorToImage(select(x, 0, i)));
  const recons = picks.map((_, i) => tensorToImage(select(y, 0, i)));
  return imageGrid([...originals, ...recons], picks.length, 2, 255);
}

/** The VAE's reconstructions (posterior mode) of `count` [3, S, S] images in [-1, 1], `batch` at a time. */
export function reconstructImages(
  vae: AutoencoderKL,
  images: Float32Array,
  count: number,
  batch = 64,
): Float32Array {
  const per = images.length / count;
  const side = Math.round(Math.sqrt(per / 3));
  const out = new Float32Array(images.length);
  noGrad(() => {
    for (let i = 0; i < count; i += batch) {
      const b = Math.min(batch, count - i);
      const x = tensor(images.subarray(i * per, (i + b) * per), [b, 3, side, side]);
      const y = vae.decode(vae.encode(toDevice(x, vae.device)).latentDist.mode());
      out.set(toDevice(y, "cpu").toFloat32Array(), i * per);
    }
  });
  return out;
}

/** Reconstruction error of the posterior mode over every image of `data` (see {@link reconstructImages}). */
export function reconstructionError(vae: AutoencoderKL, data: LabeledImages): ReconstructionError {
  const y = reconstructImages(vae, data.images, data.count);
  const src = data.images;
  let abs = 0;
  let sq = 0;
  for (let k = 0; k < y.length; k++) {
    // both in [-1, 1]; the error in [0, 1] units is half of it, after clamping the output as a PNG would
    const d = (Math.max(-1, Math.min(1, y[k]!)) - src[k]!) / 2;
    abs += Math.abs(d);
    sq += d * d;
  }
  const n = src.length;
  return { l1: abs / n, psnr: -10 * Math.log10(sq / n), images: data.count };
}

/** Runs (or resumes) autoencoder training into `outDir`; see the file comment. */
export async function trainVae(opts: TrainVaeOptions): Promise<TrainVaeResult> {
  const trainer = await createVaeTrainer(opts);
  const resumedAt = trainer.step;
  const out = opts.outDir;
  const samplesDir = join(out, "samples");
  mkdirSync(samplesDir, { recursive: true });
  const writeSamples = async (): Promise<void> => {
    const grid = await withEmaWeights(trainer, () => reconstructionGrid(trainer.vae, opts.data));
    const path = join(samplesDir, `step-${String(trainer.step).padStart(6, "0")}.png`);
    writePng(path, grid);
    opts.onSaved?.("samples", path, trainer.step);
    const svg = join(samplesDir, "loss.svg");
    await writeLossCurve(trainer, svg);
    opts.onSaved?.("samples", svg, trainer.step);
  };
  const stopped = await trainIntoFolder(trainer, out, opts, writeSamples);
  if (stopped) return { trainer, stopped, resumedAt, scalingFactor: null, reconstruction: null };
  await writeSamples();
  const { scalingFactor, reconstruction } = await withEmaWeights(trainer, () => ({
    scalingFactor: measureScalingFactor(trainer.vae, opts.data.images, opts.data.count),
    reconstruction: reconstructionError(trainer.vae, opts.data),
  }));
  const dir = join(out, "vae");
  await saveModelFolder(dir, {
    config: vaeConfigJson(trainer.vae.config, scalingFactor),
    weights: trainer.ema.averagedStateDict(),
  });
  opts.onSaved?.("vae", dir, trainer.step);
  return { trainer, stopped, resumedAt, scalingFactor, reconstruction };
}
