// A whole text-to-image UNet training run into a Stable Diffusion pipeline folder. A new run copies the trained
// VAE, text encoder and tokenizer into the folder first (so the folder is complete and a resumed run needs nothing
// else), encodes every image's latent posterior once, and trains the UNet; every K steps a grid of prompts sampled
// with the EMA weights and the loss curve and/or a checkpoint; at the end (or when stopped) unet/ with the EMA
// weights, scheduler/ and model_index.json.
// Layout: model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/, checkpoint/, samples/.
import { cpSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { imageGrid, writePng } from "../io/image.js";
import type { RawConfig } from "../models/blocks/config-values.js";
import { CLIPTextModel } from "../models/clip/text-model.js";
import { CLIPTokenizer } from "../models/clip/tokenizer.js";
import { UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import { MODEL_INDEX, stableDiffusionModelIndex } from "../pipelines/model-index.js";
import { configJson, saveModelFolder } from "../pipelines/save-model-folder.js";
import { StableDiffusionPipeline } from "../pipelines/stable-diffusion.js";
import { DDPMScheduler } from "../schedulers/ddpm.js";
import type { Device } from "../tensor/device.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import type { Tensor } from "../tensor/tensor.js";
import { loadCheckpoint, resumeCheckpoint } from "./checkpoint.js";
import type { EmojiSet } from "./data/emoji.js";
import { type RunLoopOptions, trainIntoFolder, writeLossCurve } from "./loop.js";
import { encodeLatents, TextToImageTrainer, type TextToImageTrainOptions } from "./text-to-image-trainer.js";
import { withEmaWeights } from "./trainer-base.js";

/** Prompts of the periodic sample grids. */
export const SAMPLE_PROMPTS = [
  "red heart",
  "grinning cat",
  "smiling face with sunglasses",
  "thumbs up",
  "fire",
  "pile of poo",
  "rocket",
  "pizza",
  "dog face",
  "rainbow",
  "flag: Japan",
  "waving hand: dark skin tone",
  "ghost",
  "birthday cake",
  "four leaf clover",
  "snowman",
];

/** How the sample grids and the shipped defaults sample. */
export interface TextToImageSampling {
  sampler: string;
  steps: number;
  guidanceScale: number;
}

/** Options of {@link trainTextToImage}. */
export interface TrainTextToImageOptions extends RunLoopOptions {
  outDir: string;
  data: EmojiSet;
  /** A new run's VAE: a `vae/` folder, or a `diffuse train vae` output folder holding one. */
  vaeFrom?: string;
  /** A new run's text encoder: a `diffuse train clip` output folder (text_encoder/ + tokenizer/). */
  textFrom?: string;
  /** UNet2DConditionModel config of a new run (sample_size, channels and cross_attention_dim are filled in). */
  unetConfig?: RawConfig;
  schedulerConfig?: Record<string, unknown>;
  train: TextToImageTrainOptions;
  resumeFrom?: string;
  device?: Device;
  sampling?: Partial<TextToImageSampling>;
}

/** Copies the component folder `from/sub` (or `from` itself when it is one) to `to`. */
function copyComponent(from: string, sub: string, to: string, what: string): void {
  const src =
    existsSync(join(from, sub, "config.json")) || existsSync(join(from, sub, "vocab.json"))
      ? join(from, sub)
      : from;
  if (!existsSync(join(src, "config.json")) && !existsSync(join(src, "vocab.json")))
    throw new ArgumentError(`${what}: ${from} holds no ${sub}/ folder (config.json or vocab.json)`);
  cpSync(src, to, { recursive: true });
}

/** Loads the frozen parts from the run folder and builds the trainer (new or resumed). */
export async function createTextToImageTrainer(opts: TrainTextToImageOptions): Promise<TextToImageTrainer> {
  const out = opts.outDir;
  let state: {
    dir: string;
    unetConfig: RawConfig;
    schedulerConfig: Record<string, unknown>;
    options: object;
  } | null = null;
  if (opts.resumeFrom) {
    const r = resumeCheckpoint(opts.resumeFrom);
    if (!r.state.unetConfig || !r.state.schedulerConfig || !existsSync(join(opts.resumeFrom, "text_encoder")))
      throw new ArgumentError(`resume: ${opts.resumeFrom} is not a text-to-image training run`);
    state = {
      dir: r.dir,
      unetConfig: r.state.unetConfig,
      schedulerConfig: r.state.schedulerConfig,
      options: r.state.options,
    };
  } else {
    if (!opts.vaeFrom) throw new ArgumentError("a new text-to-image run needs a VAE (vaeFrom)");
    if (!opts.textFrom) throw new ArgumentError("a new text-to-image run needs a text encoder (textFrom)");
    mkdirSync(out, { recursive: true });
    copyComponent(opts.vaeFrom, "vae", join(out, "vae"), "vae");
    copyComponent(opts.textFrom, "text_encoder", join(out, "text_encoder"), "text encoder");
    copyComponent(opts.textFrom, "tokenizer", join(out, "tokenizer"), "tokenizer");
  }
  const base = opts.resumeFrom ?? out;
  const vae = await AutoencoderKL.fromPretrained(join(base, "vae"));
  const textEncoder = await CLIPTextModel.fromPretrained(join(base, "text_encoder"));
  const tokenizer = await CLIPTokenizer.fromPretrained(join(base, "tokenizer"));
  if (opts.device) {
    vae.toDevice(opts.device);
    textEncoder.toDevice(opts.device);
  }
  const latents = encodeLatents(vae, opts.data, { onProgress: opts.onProgress });
  const parts = { textEncoder, tokenizer, set: opts.data, latents };
  if (state) {
    const unet = new UNet2DConditionModel(state.unetConfig, { skipInit: true });
    if (opts.device) unet.toDevice(opts.device);
    const trainer = new TextToImageTrainer(unet, new DDPMScheduler(state.schedulerConfig), parts, {
      ...(state.options as TextToImageTrainOptions),
      steps: opts.train.steps,
    });
    await loadCheckpoint(trainer, state.dir);
    return trainer;
  }
  const seed = opts.train.seed ?? 0;
  const unet = new UNet2DConditionModel(
    {
      ...opts.unetConfig,
      sample_size: latents.height,
      in_channels: latents.channels,
      out_channels: latents.channels,
      cross_attention_dim: textEncoder.config.hidden_size,
    },
    { generator: new Generator(seed + 2) },
  );
  if (opts.device) unet.toDevice(opts.device);
  return new TextToImageTrainer(unet, new DDPMScheduler(opts.schedulerConfig ?? {}), parts, opts.train);
}

/** The pipeline around the trainer's current UNet weights. */
export function trainerPipeline(trainer: TextToImageTrainer, vae: AutoencoderKL): StableDiffusionPipeline {
  const scheduler = new DDPMScheduler(trainer.noiseScheduler.config);
  return new StableDiffusionPipeline({
    unet: trainer.unet,
    vae,
    textEncoder: trainer.textEncoder,
    tokenizer: trainer.tokenizer,
    scheduler,
  });
}

/**
 * Writes the trained parts of a Stable Diffusion folder `out` (its vae/, text_encoder/ and tokenizer/ are already
 * there): unet/ (config + `weights`), scheduler/scheduler_config.json (its class from `_class_name`) and
 * model_index.json naming that scheduler class.
 */
export async function writeTextToImagePipeline(
  out: string,
  parts: {
    unetConfig: object;
    weights: ReadonlyMap<string, Tensor>;
    schedulerConfig: Record<string, unknown> & { _class_name: string };
  },
): Promise<void> {
  await saveModelFolder(join(out, "unet"), {
    config: { _class_name: "UNet2DConditionModel", _diffusers_version: "0.30.0", ...parts.unetConfig },
    weights: parts.weights,
  });
  writeSchedulerFolder(out, parts.schedulerConfig);
  writeFileAtomic(
    join(out, MODEL_INDEX),
    configJson(stableDiffusionModelIndex(parts.schedulerConfig._class_name)),
  );
}

/** Writes `out`/scheduler/scheduler_config.json (diffusers layout) from a config with its `_class_name`. */
function writeSchedulerFolder(out: string, config: Record<string, unknown> & { _class_name: string }): void {
  const { _class_name: className, _diffusers_version: _, ...sched } = config;
  mkdirSync(join(out, "scheduler"), { recursive: true });
  writeFileAtomic(
    join(out, "scheduler", "scheduler_config.json"),
    configJson({ _class_name: className, _diffusers_version: "0.30.0", ...sched }),
  );
}

/** Runs (or resumes) text-to-image training into `outDir`; see the file comment. */
export async function trainTextToImage(opts: TrainTextToImageOptions) {
  const trainer = await createTextToImageTrainer(opts);
  const out = opts.outDir;
  const vae = await AutoencoderKL.fromPretrained(join(out, "vae"));
  if (opts.device) vae.toDevice(opts.device);
  const sampling: TextToImageSampling = {
    sampler: "dpmpp-2m",
    steps: 20,
    guidanceScale: 4,
    ...opts.sampling,
  };
  const samplesDir = join(out, "samples");
  mkdirSync(samplesDir, { recursive: true });
  const writeSamples = async (): Promise<void> => {
    const pipe = trainerPipeline(trainer, vae);
    const images = await withEmaWeights(trainer, async () => {
      const all = [];
      for (const prompt of SAMPLE_PROMPTS) {
        const r = await pipe.generate({ prompt, ...sampling, seed: 0 });
        all.push(r.images[0]!);
      }
      return all;
    });
    const path = join(samplesDir, `step-${String(trainer.step).padStart(6, "0")}.png`);
    writePng(path, imageGrid(images, 8, 2, 255));
    opts.onSaved?.("samples", path, trainer.step);
    const svg = join(samplesDir, "loss.svg");
    await writeLossCurve(trainer, svg);
    opts.onSaved?.("samples", svg, trainer.step);
  };
  const stopped = await trainIntoFolder(trainer, out, opts, writeSamples);
  // the pipeline is written when stopped too (with the EMA weights so far), as `train mnist` does; its default
  // sampler is DPM-Solver++ 2M on the training schedule (DDPM's ancestral sampling needs hundreds of steps)
  const { _class_name: _, ...sched } = trainer.noiseScheduler.config as Record<string, unknown>;
  await writeTextToImagePipeline(out, {
    unetConfig: trainer.unet.config,
    weights: trainer.ema.averagedStateDict(),
    schedulerConfig: { ...sched, _class_name: "DPMSolverMultistepScheduler" },
  });
  opts.onSaved?.("pipeline", out, trainer.step);
  if (!stopped) await writeSamples();
  return { trainer, stopped };
}
