/**
 * `diffuse train clip --out DIR [...]`: learns a BPE vocabulary from the emoji captions and trains a CLIP-style
 * text and image encoder pair contrastively (see src/train/run-clip.ts); the text tower is written as
 * `DIR/text_encoder` with `DIR/tokenizer`, ready to condition a text-to-image UNet.
 */
import type { Command } from "commander";
import { loadEmoji } from "../train/data/emoji.js";
import { trainClip } from "../train/run-clip.js";
import { addDeviceOption, resolveDevice } from "./device-option.js";
import { CliError } from "./errors.js";
import { cliInt, cliInts, cliNumber } from "./option-values.js";
import { recordedOptions, resumeOptions } from "./resume-options.js";
import { trainSession } from "./train-session.js";

/** Parsed options of `diffuse train clip`. */
export interface TrainClipCliOptions {
  out: string;
  resume?: string;
  device?: string;
  data: string;
  steps: string;
  batch: string;
  lr: string;
  warmup?: string;
  emaDecay: string;
  merges: string;
  maxLength: string;
  hidden: string;
  layers: string;
  heads: string;
  projectionDim: string;
  imageChannels: string;
  seed: string;
  sampleEvery: string;
  checkpointEvery: string;
  json?: boolean;
}

/** Runs `diffuse train clip`. */
export async function runTrainClip(o: TrainClipCliOptions): Promise<void> {
  if (o.data !== "emoji")
    throw new CliError(`--data must be emoji (the only image set so far), got "${o.data}"`);
  const hidden = cliInt("hidden", o.hidden, 8);
  const heads = cliInt("heads", o.heads, 1);
  if (hidden % heads !== 0) throw new CliError(`--hidden ${hidden} is not divisible by --heads ${heads}`);
  const model = {
    merges: cliInt("merges", o.merges, 0),
    maxLength: cliInt("max-length", o.maxLength, 3),
    hiddenSize: hidden,
    layers: cliInt("layers", o.layers, 1),
    heads,
    projectionDim: cliInt("projection-dim", o.projectionDim, 1),
    imageChannels: cliInts("image-channels", o.imageChannels, 1),
  };
  const train = {
    steps: cliInt("steps", o.steps, 1),
    batchSize: cliInt("batch", o.batch, 2),
    lr: cliNumber("lr", o.lr, Number.MIN_VALUE),
    warmupSteps: o.warmup !== undefined ? cliInt("warmup", o.warmup, 0) : undefined,
    emaDecay: cliNumber("ema-decay", o.emaDecay, 0, 1),
    seed: cliInt("seed", o.seed, 0),
  };
  const sampleEvery = cliInt("sample-every", o.sampleEvery, 0);
  const checkpointEvery = cliInt("checkpoint-every", o.checkpointEvery, 0);
  const device = await resolveDevice(o.device, (text) => {
    if (!o.json) process.stderr.write(`diffuse: warning: ${text}\n`);
  });
  const data = loadEmoji(32);
  await trainSession(o, async ({ signal, onProgress, onSaved, log }) => {
    const r = await trainClip({
      outDir: o.out,
      data,
      model,
      train,
      resumeFrom: o.resume,
      device,
      logEvery: device === "cpu" ? 1 : 10,
      sampleEvery,
      checkpointEvery,
      onProgress,
      signal,
      onSaved,
      extra: { argv: process.argv.slice(2), options: recordedOptions({ ...o }) },
    });
    if (r.retrieval) {
      const a = r.retrieval;
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      log(
        { type: "metrics", ...a },
        `image -> text retrieval over ${a.images} labels: top-1 ${pct(a.top1)}, top-5 ${pct(a.top5)}, base emoji top-1 ${pct(a.top1BaseEmoji)}`,
      );
    }
    return { stopped: r.stopped, step: r.trainer.step };
  });
}

/** Adds `train clip` to `train`. */
export function registerTrainClip(train: Command): void {
  const cmd = train
    .command("clip")
    .description("train a CLIP-style text encoder (and tokenizer) contrastively on images and captions")
    .requiredOption("--out <dir>", "output folder (text_encoder/, tokenizer/, clip/, checkpoint/, samples/)")
    .option("--resume <dir>", "continue the run whose output folder this is")
    .option("--data <name>", "image set: emoji", "emoji")
    .option("--steps <n>", "optimisation steps", "800")
    .option("--batch <n>", "image-caption pairs per step", "128")
    .option("--lr <x>", "peak learning rate (AdamW, warm-up then cosine)", "1e-3")
    .option("--warmup <n>", "warm-up steps (default min(200, steps / 10))")
    .option("--ema-decay <x>", "EMA decay upper bound", "0.999")
    .option("--merges <n>", "BPE merges to learn", "1500")
    .option("--max-length <n>", "token sequence length (BOS and EOS included)", "32")
    .option("--hidden <n>", "text transformer width", "256")
    .option("--layers <n>", "text transformer layers", "4")
    .option("--heads <n>", "attention heads", "4")
    .option("--projection-dim <n>", "shared embedding size", "256")
    .option("--image-channels <list>", "image encoder block channels", "16,32,64")
    .option("--seed <n>", "seed of the vocabulary's captions, weights and data order", "0")
    .option(
      "--sample-every <k>",
      "measure retrieval and write the loss curve every k steps (0: at the end)",
      "500",
    )
    .option("--checkpoint-every <k>", "write a checkpoint every k steps (0: at the end)", "250")
    .option("--json", "print progress as JSON lines");
  addDeviceOption(cmd).action(async (o: TrainClipCliOptions, c: Command) =>
    runTrainClip(resumeOptions(c, o, ["steps"])),
  );
}
