/**
 * `diffuse train classifier --out DIR`: trains the digit classifier that `diffuse eval` scores generated digits with,
 * on the 9,000 training digits of the MNIST split, reports its accuracy on the 1,000 held-out digits and saves it as
 * `config.json` + `model.safetensors`.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import { trainDigitClassifier } from "../train/classifier.js";
import { loadEmoji } from "../train/data/emoji.js";
import { loadMnist } from "../train/data/mnist.js";
import { reconstructImages } from "../train/run-vae.js";
import { CliError } from "./errors.js";
import { cliInt } from "./option-values.js";
import { progressReporter } from "./progress.js";

/** How users run this command (`diffuse train-classifier` is kept as a hidden alias in main.ts). */
export const TRAIN_CLASSIFIER_COMMAND = "diffuse train classifier";

/** Parsed options of the command. */
interface TrainClassifierCliOptions {
  out: string;
  data: string;
  vae?: string;
  steps: string;
  batch: string;
  lr: string;
  seed: string;
  augment: boolean;
  json?: boolean;
}

/** The MNIST split and the digit classifier's defaults. */
function mnistClassifierData() {
  const { train, heldOut } = loadMnist();
  return {
    train,
    heldOut,
    config: undefined,
    augment: {},
    description: "mnist 9000/1000 split",
  };
}

/**
 * Every emoji image with its base emoji as the class, on white; with `vaeDir`, also every image as the VAE
 * reconstructs it, so that the classifier knows the softness of decoded images. There is no held-out set (one or
 * six images per name): the accuracy reported is on the real images without augmentation.
 */
async function emojiClassifierData(vaeDir: string | undefined) {
  const set = loadEmoji(32);
  let images = set.images;
  let labels = set.labels;
  let description = `emoji ${set.count} images, ${set.classNames.length} names`;
  if (vaeDir) {
    const dir = existsSync(join(vaeDir, "vae", "config.json")) ? join(vaeDir, "vae") : vaeDir;
    const vae = await AutoencoderKL.fromPretrained(dir);
    const recon = reconstructImages(vae, set.images, set.count);
    images = new Float32Array(2 * set.images.length);
    images.set(set.images);
    images.set(recon, set.images.length);
    labels = Int32Array.from([...set.labels, ...set.labels]);
    description += ` + their reconstructions by ${dir}`;
  }
  return {
    train: { images, labels, count: labels.length },
    heldOut: { images: set.images, labels: set.labels, count: set.count },
    config: {
      in_channels: 3,
      sample_size: 32,
      block_out_channels: [32, 64, 128],
      norm_num_groups: 16,
      feature_dim: 256,
      num_classes: set.classNames.length,
    },
    augment: { rotate: 5, scale: 0.05, shift: 2, background: 1 },
    description,
  };
}

function percent(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

/** Runs the command; returns the JSON summary it printed. */
export async function runTrainClassifier(opts: TrainClassifierCliOptions): Promise<Record<string, unknown>> {
  const steps = cliInt("steps", opts.steps, 1);
  const batchSize = cliInt("batch", opts.batch, 1);
  const seed = cliInt("seed", opts.seed, 0);
  const lr = Number(opts.lr);
  if (!(lr > 0 && Number.isFinite(lr)))
    throw new CliError(`--lr must be a positive number, got "${opts.lr}"`);
  if (existsSync(opts.out) && !statSync(opts.out).isDirectory()) {
    throw new CliError(`--out ${opts.out} exists and is not a folder`);
  }
  if (opts.data !== "mnist" && opts.data !== "emoji")
    throw new CliError(`--data must be mnist or emoji, got "${opts.data}"`);
  if (opts.vae && opts.data !== "emoji") throw new CliError("--vae applies to --data emoji only");
  const { train, heldOut, config, augment, description } =
    opts.data === "emoji" ? await emojiClassifierData(opts.vae) : mnistClassifierData();
  const reporter = progressReporter({ json: opts.json });
  const controller = new AbortController();
  const onSigint = () => controller.abort(new CliError("interrupted; nothing was saved"));
  process.once("SIGINT", onSigint);
  let result: Awaited<ReturnType<typeof trainDigitClassifier>>;
  try {
    result = await trainDigitClassifier({
      train,
      heldOut,
      steps,
      batchSize,
      lr,
      seed,
      config,
      augment: opts.augment ? augment : false,
      onProgress: reporter.onProgress,
      signal: controller.signal,
    });
  } finally {
    reporter.stop();
    process.off("SIGINT", onSigint);
  }
  const accuracy = result.heldOutAccuracy ?? 0;
  await result.model.save(opts.out, {
    training: JSON.stringify({
      data: description,
      steps,
      batchSize,
      lr,
      seed,
      augment: opts.augment,
    }),
    held_out_accuracy: accuracy.toFixed(4),
  });
  const summary = {
    type: "result",
    out: opts.out,
    steps,
    batchSize,
    lr,
    seed,
    trainDigits: train.count,
    heldOutDigits: heldOut.count,
    heldOutAccuracy: accuracy,
    heldOutPerClass: opts.data === "emoji" ? undefined : result.heldOutPerClass,
    finalLoss: result.finalLoss,
    seconds: result.seconds,
    parameters: result.model.numParameters(),
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    const perClass = (result.heldOutPerClass ?? []).map((a, c) => `${c}: ${percent(a)}`).join(", ");
    const scored =
      opts.data === "emoji"
        ? `accuracy ${percent(accuracy)} on the ${heldOut.count} real images (no held-out set: 1 to 6 images per name)`
        : `held-out accuracy ${percent(accuracy)} on ${heldOut.count} digits (${perClass})`;
    process.stdout.write(
      `trained ${steps} steps in ${result.seconds.toFixed(0)} s (final loss ${result.finalLoss.toFixed(4)})\n` +
        `${scored}\n` +
        `saved ${opts.out}/config.json and ${opts.out}/model.safetensors\n`,
    );
  }
  return summary;
}

/**
 * Adds the classifier-training command under `parent` as `name`: `registerTrainClassifier(trainCommand)` gives
 * `diffuse train classifier`; `registerTrainClassifier(program, "train-classifier")` a top-level command.
 */
export function registerTrainClassifier(
  parent: Command,
  name = "classifier",
  opts: { hidden?: boolean } = {},
): Command {
  return parent
    .command(name, opts)
    .description(
      "train the classifier `diffuse eval` scores with: MNIST digits (9,000 train / 1,000 held out) or emoji names",
    )
    .requiredOption("--out <dir>", "folder to write config.json and model.safetensors to")
    .option("--data <name>", "mnist (digits) or emoji (one class per emoji name)", "mnist")
    .option("--vae <dir>", "emoji: also train on this VAE's reconstructions (a `train vae` output)")
    .option("--steps <n>", "optimizer steps", "1500")
    .option("--batch <n>", "images per step", "64")
    .option("--lr <x>", "peak learning rate (warm-up, then cosine to 0)", "0.002")
    .option("--seed <n>", "seed of the weights, batch order and augmentation", "0")
    .option("--no-augment", "train without random rotation / scale / shift")
    .option("--json", "print progress and the result as JSON lines")
    .action(async (opts: TrainClassifierCliOptions) => {
      await runTrainClassifier(opts);
    });
}
