// A whole LoRA training run: a Stable Diffusion 1.x / 2.x model (diffusers folder or single file) is loaded and
// frozen, the captioned images are read one at a time and their latent posteriors encoded once, adapters are
// attached to the chosen layers and trained (LoraTrainer), and the LoRA is written as one .safetensors file in kohya
// or PEFT layout with the base model's name, family and hash in its metadata (also when stopped). The run folder
// holds checkpoint/ (resumable bit for bit) and samples/: the dataset's first captions drawn by the base model
// (step 0) and with the LoRA every K steps, and the loss curve.
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { imageGrid, writePng } from "../io/image.js";
import { type LoraSaveEntry, type LoraSaveFormat, loraFileMetadata, saveLoraFile } from "../io/lora-write.js";
import { packageVersion } from "../io/package-version.js";
import { CLIPTextModel } from "../models/clip/text-model.js";
import { modelFamily } from "../pipelines/lora.js";
import { fileSha256, modelHashFile } from "../pipelines/model-hash.js";
import { StableDiffusionPipeline } from "../pipelines/stable-diffusion.js";
import { DDPMScheduler } from "../schedulers/ddpm.js";
import type { Device } from "../tensor/device.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import { findCheckpoint, loadCheckpoint, readTrainerState } from "./checkpoint.js";
import { listCaptionedImages, readTrainingImages } from "./data/image-captions.js";
import { type RunLoopOptions, trainIntoFolder, writeLossCurve } from "./loop.js";
import { type LoraLayout, LoraSet, LoraTrainer, type LoraTrainOptions } from "./lora-trainer.js";
import { encodeLatents } from "./text-to-image-trainer.js";
import { withEmaWeights } from "./trainer-base.js";

/** How the sample grids are drawn (defaults: the model's sampler, 20 steps, the pipeline's guidance). */
export interface LoraSampling {
  sampler?: string;
  steps?: number;
  guidanceScale?: number;
}

/** Options of {@link trainLora}. */
export interface TrainLoraOptions extends RunLoopOptions {
  /** The base model: a diffusers folder or a single-file SD 1.x / 2.x checkpoint. */
  base: string;
  /** A folder of images with same-name .txt captions, or a .jsonl file (see data/image-captions.ts). */
  data: string;
  /** A tokenizer folder for a single-file base (which carries none). */
  tokenizer?: string;
  /** The LoRA file to write (.safetensors). */
  out: string;
  /** Holds checkpoint/ and samples/. */
  runDir: string;
  format: LoraSaveFormat;
  layout: LoraLayout;
  train: LoraTrainOptions;
  /** Continue from runDir/checkpoint (which must be a run of the same base, data and layout). */
  resume?: boolean;
  device?: Device;
  sampling?: LoraSampling;
  /** Prompts of the sample grids (default: the data set's first distinct captions, up to 8). */
  samplePrompts?: readonly string[];
}

/** What a run records about itself in its checkpoints, checked when it is resumed. */
interface LoraRunRecord {
  base: string;
  baseSha256: string;
  images: number;
  targets: string;
  rank: number;
  alpha: number;
  textEncoder: boolean;
}

/** The file entries of a LoRA set's current weights. */
export function loraSaveEntries(lora: LoraSet): LoraSaveEntry[] {
  const entries: LoraSaveEntry[] = lora.unet
    .weights()
    .map((w) => ({ target: "unet", modulePath: w.path, down: w.down, up: w.up, alpha: w.alpha }));
  for (const w of lora.text_encoder?.weights() ?? []) {
    entries.push({ target: "text_encoder", modulePath: w.path, down: w.down, up: w.up, alpha: w.alpha });
  }
  return entries;
}

function checkResumable(dir: string, record: LoraRunRecord): void {
  const saved = readTrainerState(dir).loraRun as Partial<LoraRunRecord> | undefined;
  if (!saved) throw new ArgumentError(`resume: ${dir} is not a LoRA training checkpoint`);
  const diffs = (Object.keys(record) as (keyof LoraRunRecord)[])
    .filter((k) => k !== "base" && saved[k] !== record[k])
    .map((k) => `${k} ${String(saved[k])} (now ${String(record[k])})`);
  if (diffs.length > 0)
    throw new ArgumentError(
      `resume: the checkpoint in ${dir} was made with another setup: ${diffs.join(", ")}; start a new run instead`,
    );
}

/** Runs (or resumes) LoRA training; see the file comment. Returns the trainer, the LoRA and whether it was stopped. */
export async function trainLora(opts: TrainLoraOptions) {
  const { layout } = opts;
  const images = listCaptionedImages(opts.data);
  const pipe = await StableDiffusionPipeline.fromPretrained(opts.base, {
    device: opts.device,
    tokenizer: opts.tokenizer,
  });
  const { unet, vae, tokenizer } = pipe;
  if (!(pipe.textEncoder instanceof CLIPTextModel))
    throw new ArgumentError(`${opts.base}: LoRA training needs a CLIPTextModel text encoder (SD 1.x / 2.x)`);
  const textEncoder = pipe.textEncoder;
  if (unet.config.in_channels !== vae.config.latent_channels)
    throw new ArgumentError(
      `${opts.base}: the UNet takes ${unet.config.in_channels} channels (an inpainting model?); LoRA training needs a text-to-image UNet with ${vae.config.latent_channels}`,
    );
  const size = (unet.config.sample_size as number) * vae.downscaleFactor;
  const family = modelFamily(unet);
  const hashFile = pipe.hashPath ?? (await modelHashFile(opts.base));
  const record: LoraRunRecord = {
    base: opts.base,
    baseSha256: await fileSha256(hashFile),
    images: images.items.length,
    targets: layout.targets,
    rank: layout.rank,
    alpha: layout.alpha ?? layout.rank,
    textEncoder: layout.textEncoder ?? false,
  };
  const resumeDir = opts.resume ? findCheckpoint(join(opts.runDir, "checkpoint")) : null;
  if (opts.resume && !resumeDir)
    throw new ArgumentError(`resume: no checkpoint in ${join(opts.runDir, "checkpoint")}`);
  if (resumeDir) checkResumable(resumeDir, record);

  const source = {
    count: images.items.length,
    size,
    read: (start: number, n: number) => readTrainingImages(images, start, n, size),
  };
  const latents = encodeLatents(vae, source, { batch: 8, onProgress: opts.onProgress });
  const seed = opts.train.seed ?? 0;
  const lora = new LoraSet({ unet, textEncoder }, layout, new Generator(seed + 2));
  const trainer = new LoraTrainer(
    {
      unet,
      textEncoder,
      tokenizer,
      noiseScheduler: new DDPMScheduler(pipe.scheduler.config),
      latents,
      captions: images.items.map((i) => i.caption),
      record: { ...record },
    },
    lora,
    opts.train,
  );
  if (resumeDir) await loadCheckpoint(trainer, resumeDir);

  const samplesDir = join(opts.runDir, "samples");
  mkdirSync(samplesDir, { recursive: true });
  const prompts = opts.samplePrompts ?? [...new Set(images.items.map((i) => i.caption))].slice(0, 8);
  const sampling = { steps: 20, ...opts.sampling };
  const drawSamples = async (name: string): Promise<void> => {
    const all = [];
    for (const prompt of prompts)
      all.push((await pipe.generate({ prompt, ...sampling, seed: 0 })).images[0]!);
    const path = join(samplesDir, name);
    writePng(path, imageGrid(all, Math.min(8, all.length), 2, 255));
    opts.onSaved?.("samples", path, trainer.step);
  };
  const writeSamples = async (): Promise<void> => {
    await withWeights(trainer, () => drawSamples(`step-${String(trainer.step).padStart(6, "0")}.png`));
    const svg = join(samplesDir, "loss.svg");
    await writeLossCurve(trainer, svg);
    opts.onSaved?.("samples", svg, trainer.step);
  };
  if (!resumeDir && prompts.length > 0) {
    // the base model's drawings of the same prompts, for comparison (a fresh LoRA's up factors are zero)
    lora.setScale(0);
    try {
      await drawSamples("base.png");
    } finally {
      lora.setScale(1);
    }
  }
  const stopped = await trainIntoFolder(
    trainer,
    opts.runDir,
    opts,
    prompts.length ? writeSamples : undefined,
  );
  await withWeights(trainer, async () => {
    const entries = loraSaveEntries(lora);
    const metadata = loraFileMetadata(
      entries,
      opts.format,
      {
        name: pipe.modelName ?? basename(opts.base),
        family: family.family,
        familyLabel: family.label,
        sha256: record.baseSha256,
      },
      {
        steps: trainer.step,
        learningRate: trainer.options.lr,
        images: images.items.length,
        targets: layout.textEncoder ? `${layout.targets}+text-encoder` : layout.targets,
        version: packageVersion(),
      },
    );
    await saveLoraFile(opts.out, entries, opts.format, metadata);
  });
  opts.onSaved?.("lora", opts.out, trainer.step);
  if (!stopped && prompts.length > 0) await writeSamples();
  return { trainer, lora, pipeline: pipe, stopped };
}

/** Runs `fn` with the weights the LoRA file gets: the EMA's when the run keeps one (emaDecay > 0), else the live ones. */
function withWeights<T>(trainer: LoraTrainer, fn: () => Promise<T>): Promise<T> {
  return trainer.options.emaDecay > 0 ? withEmaWeights(trainer, fn) : fn();
}
