/**
 * `diffuse train clip --out DIR [...]`: learns a BPE vocabulary from the emoji captions and trains a CLIP-style
 * text and image encoder pair contrastively (see src/train/run-clip.ts); the text tower is written as
 * `DIR/text_encoder` with `DIR/tokenizer`, ready to condition a text-to-image UNet.
 */
import type { Command } from "commander";
import { loadEmoji } from "../train/data/emoji.js";
import { trainClip } from "../train/run-clip.js";
import { CliError } from "./errors.js";
import { cliInt, cliInts } from "./option-values.js";
import { recordedOptions, resumeOptions } from "./resume-options.js";
import {
  addTrainRunOptions,
  loopFromCli,
  optimFromCli,
  type TrainRunCliOptions,
  trainSession,
} from "./train-session.js";

/** Parsed options of `diffuse train clip`. */
export interface TrainClipCliOptions extends TrainRunCliOptions {
  data: string;
  merges: string;
  maxLength: string;
  hidden: string;
  layers: string;
  heads: string;
  projectionDim: string;
  imageChannels: string;
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
  const train = optimFromCli(o, 2);
  const loop = await loopFromCli(o);
  const data = loadEmoji(32);
  await trainSession(o, async ({ signal, onProgress, onSaved, log }) => {
    const r = await trainClip({
      outDir: o.out,
      data,
      model,
      train,
      resumeFrom: o.resume,
      ...loop,
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
    .option("--data <name>", "image set: emoji", "emoji")
    .option("--merges <n>", "BPE merges to learn", "1500")
    .option("--max-length <n>", "token sequence length (BOS and EOS included)", "32")
    .option("--hidden <n>", "text transformer width", "256")
    .option("--layers <n>", "text transformer layers", "4")
    .option("--heads <n>", "attention heads", "4")
    .option("--projection-dim <n>", "shared embedding size", "256")
    .option("--image-channels <list>", "image encoder block channels", "16,32,64");
  addTrainRunOptions(cmd, {
    steps: "800",
    batch: "128",
    batchHelp: "image-caption pairs per step",
    samplesHelp: "measure retrieval and write the loss curve",
  }).action(async (o: TrainClipCliOptions, c: Command) => runTrainClip(resumeOptions(c, o, ["steps"])));
}
