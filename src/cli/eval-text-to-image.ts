/**
 * `diffuse eval --model <emoji text-to-image folder>`: prompt adherence measured by the emoji classifier (one image
 * per emoji name, prompted with the name; top-1 / top-5 over all names) and the Fréchet distance of the classifier
 * features to the real images next to the real-vs-real reference (see src/train/eval-text-to-image.ts).
 */
import { fileURLToPath } from "node:url";
import { DigitClassifier } from "../models/classifier/digit-classifier.js";
import { StableDiffusionPipeline } from "../pipelines/stable-diffusion.js";
import type { Device } from "../tensor/device.js";
import { loadEmoji } from "../train/data/emoji.js";
import { type EvalSetting, settingsTable } from "../train/eval.js";
import {
  evaluateTextToImage,
  realEmojiStats,
  type TextToImageEvalResult,
} from "../train/eval-text-to-image.js";
import { CliError } from "./errors.js";
import { cliInt } from "./option-values.js";
import { progressReporter } from "./progress.js";

/** The shipped emoji classifier (inside the package). */
export const DEFAULT_EMOJI_CLASSIFIER_DIR = fileURLToPath(
  new URL("../../models/emoji-classifier", import.meta.url),
);

/** Options of {@link runTextToImageEval}. */
export interface TextToImageEvalCliOptions {
  modelDir: string;
  classifierDir: string;
  /** How many names to prompt (spread evenly over all of them). */
  names?: string;
  /** Names per generation batch (default 16). */
  batch?: string;
  /** LoRA files applied to the model while scoring, with their scales. */
  loras?: readonly { path: string; scale: number }[];
  seed: string;
  settings: EvalSetting[];
  sweep?: boolean;
  json?: boolean;
  device: Device;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** The sweep as a markdown table (cells "top-1 / top-5 / FD"; see settingsTable). */
export function textToImageSweepMarkdown(results: readonly TextToImageEvalResult[]): string {
  return settingsTable(
    results,
    "top-1 / top-5 / FD",
    (r) => `${pct(r.top1)} / ${pct(r.top5)} / ${r.fd.toFixed(2)}`,
  );
}

/** Runs the text-to-image path of `diffuse eval`; returns its results. */
export async function runTextToImageEval(o: TextToImageEvalCliOptions): Promise<TextToImageEvalResult[]> {
  const set = loadEmoji(32);
  const all = set.classNames.length;
  const n = o.names === undefined ? all : cliInt("names", o.names, 2);
  if (n > all) throw new CliError(`--names must be at most ${all} (the emoji names), got ${n}`);
  const classes = Array.from({ length: n }, (_, i) => Math.floor((i * all) / n));
  const seed = cliInt("seed", o.seed, 0);
  const batchSize = cliInt("batch", o.batch ?? "16", 1);
  const pipeline = await StableDiffusionPipeline.fromPretrained(o.modelDir, { device: o.device });
  for (const { path, scale } of o.loras ?? []) await pipeline.loadLora(path, { scale });
  const classifier = await DigitClassifier.fromPretrained(o.classifierDir);
  if (classifier.config.num_classes !== all)
    throw new CliError(
      `${o.classifierDir} classifies ${classifier.config.num_classes} classes, not the ${all} emoji names (train one with "diffuse train classifier --data emoji")`,
    );
  const real = realEmojiStats(classifier, set);
  const reporter = progressReporter({ json: o.json });
  const controller = new AbortController();
  const onSigint = () => controller.abort(new CliError("interrupted"));
  process.once("SIGINT", onSigint);
  const results: TextToImageEvalResult[] = [];
  try {
    for (const s of o.settings) {
      const r = await evaluateTextToImage({
        ...s,
        pipeline,
        classifier,
        set,
        classes,
        seed,
        batchSize,
        real,
        onProgress: reporter.onProgress,
        signal: controller.signal,
      });
      results.push(r);
      if (o.json) process.stdout.write(`${JSON.stringify({ type: "setting", ...r })}\n`);
    }
  } finally {
    reporter.stop();
    process.off("SIGINT", onSigint);
  }
  const loras = pipeline.activeLoras.map((l) => `${l.name}:${l.scale}`);
  const info = {
    model: o.modelDir,
    loras,
    classifier: o.classifierDir,
    classifierAccuracy: real.classifierAccuracy,
    referenceFd: real.referenceFd,
    names: n,
    seed,
  };
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ type: "result", ...info, results })}\n`);
    return results;
  }
  const header =
    `model ${o.modelDir}${loras.length > 0 ? ` + LoRA ${loras.join(", ")}` : ""}; classifier ${o.classifierDir} (top-1 ${pct(real.classifierAccuracy)} on the ${set.count} real images)\n` +
    `${n} names prompted, one image each (batches of ${batchSize}, seed ${seed} + batch); reference FD between the two halves of the real images: ${real.referenceFd.toFixed(3)}`;
  const body = o.sweep
    ? `cells: top-1 / top-5 / FD(generated, real half)\n\n${textToImageSweepMarkdown(results)}`
    : results
        .map(
          (r) =>
            `${r.sampler}, ${r.steps} steps, guidance ${r.guidance} (${r.seconds.toFixed(0)} s): top-1 ${pct(r.top1)}, top-5 ${pct(r.top5)}, FD ${r.fd.toFixed(3)} (${r.fdRatio.toFixed(2)}x the reference)`,
        )
        .join("\n");
  process.stdout.write(`${header}\n${body}\n`);
  return results;
}
