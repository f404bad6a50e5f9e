/**
 * `diffuse train classifier --out DIR`: trains the digit classifier that `diffuse eval` scores generated digits with,
 * on the 9,000 training digits of the MNIST split, reports its accuracy on the 1,000 held-out digits and saves it as
 * `config.json` + `model.safetensors`.
 */
import { existsSync, statSync } from "node:fs";
import type { Command } from "commander";
import { trainDigitClassifier } from "../train/classifier.js";
import { loadMnist } from "../train/data/mnist.js";
import { CliError } from "./errors.js";
import { cliInt } from "./option-values.js";
import { progressReporter } from "./progress.js";

/** How users run this command (`diffuse train-classifier` is kept as a hidden alias in main.ts). */
export const TRAIN_CLASSIFIER_COMMAND = "diffuse train classifier";

/** Parsed options of the command. */
interface TrainClassifierCliOptions {
  out: string;
  steps: string;
  batch: string;
  lr: string;
  seed: string;
  augment: boolean;
  json?: boolean;
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
  const { train, heldOut } = loadMnist();
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
      augment: opts.augment ? {} : false,
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
      data: "mnist 9000/1000 split",
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
    heldOutPerClass: result.heldOutPerClass,
    finalLoss: result.finalLoss,
    seconds: result.seconds,
    parameters: result.model.numParameters(),
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    const perClass = (result.heldOutPerClass ?? []).map((a, c) => `${c}: ${percent(a)}`).join(", ");
    process.stdout.write(
      `trained ${steps} steps in ${result.seconds.toFixed(0)} s (final loss ${result.finalLoss.toFixed(4)})\n` +
        `held-out accuracy ${percent(accuracy)} on ${heldOut.count} digits (${perClass})\n` +
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
      "train the digit classifier used by `diffuse eval` (MNIST 9,000 train / 1,000 held-out digits)",
    )
    .requiredOption("--out <dir>", "folder to write config.json and model.safetensors to")
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
