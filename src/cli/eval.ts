/**
 * `diffuse eval`: scores a class-conditional digit model with the digit classifier: the class accuracy of generated
 * digits, the Fréchet distance between classifier features of generated and held-out real digits, and the reference
 * distance between two halves of the real digits. `--sweep` runs samplers x steps x guidance and prints a markdown
 * table.
 */
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { DigitClassifier } from "../models/classifier/digit-classifier.js";
import { loadClassConditionalPipeline } from "../pipelines/class-conditional.js";
import { formatGuidanceInterval } from "../pipelines/guidance.js";
import { isFusedLcmFolder, isStableDiffusionModel, modelSchedulerClass } from "../pipelines/model-kind.js";
import { samplerSpec } from "../schedulers/samplers.js";
import { loadMnist } from "../train/data/mnist.js";
import {
  type EvalResult,
  type EvalSetting,
  evaluateSweep,
  realBaselineFd,
  realDigitStats,
  SWEEP_GUIDANCE,
  SWEEP_SAMPLERS,
  SWEEP_STEPS,
  sweepMarkdown,
  sweepSettings,
} from "../train/eval.js";
import type { TextToImageEvalResult } from "../train/eval-text-to-image.js";
import { resolveDevice } from "./device-option.js";
import { CliError } from "./errors.js";
import { DEFAULT_EMOJI_CLASSIFIER_DIR, runTextToImageEval } from "./eval-text-to-image.js";
import { parseLoraArg } from "./generate-sd.js";
import {
  GUIDANCE_INTERVAL_HELP,
  guidanceIntervalOption,
  resolveGuidanceInterval,
} from "./guidance-interval-option.js";
import { cliInt } from "./option-values.js";
import { progressReporter } from "./progress.js";
import { TRAIN_CLASSIFIER_COMMAND } from "./train-classifier.js";

/** The shipped model and classifier (inside the package, so the defaults work from any folder). */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL("../../models/mnist", import.meta.url));
export const DEFAULT_CLASSIFIER_DIR = fileURLToPath(
  new URL("../../models/mnist-classifier", import.meta.url),
);

/** Parsed options of the command. */
interface EvalCliOptions {
  device?: string;
  model?: string;
  classifier?: string;
  numPerClass: string;
  sampler?: string;
  steps?: string;
  guidance?: string;
  guidanceInterval?: string;
  seed: string;
  batch?: string;
  sweep?: boolean;
  names?: string;
  lora?: string[];
  json?: boolean;
}

/** A comma-separated list option; one value unless `many`. */
function listOption<T>(
  value: string | undefined,
  name: string,
  many: boolean,
  fallback: readonly T[],
  parse: (s: string) => T,
): T[] {
  if (value === undefined) return [...fallback];
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 0) throw new CliError(`--${name} is empty`);
  if (!many && items.length > 1)
    throw new CliError(`--${name} takes one value (lists need --sweep), got "${value}"`);
  return items.map(parse);
}

function checkFolder(dir: string, what: string, hint: string): void {
  if (!existsSync(dir)) throw new CliError(`${what} folder ${dir} not found; ${hint}`);
  if (!statSync(dir).isDirectory()) throw new CliError(`${what} ${dir} is not a folder; ${hint}`);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** What is scored when options are left out: one setting, and the lists of --sweep. */
export interface EvalDefaults {
  /** The sampler without --sampler (default dpmpp-2m; with --sweep the README's five). */
  sampler?: string;
  steps: number;
  guidance: number;
  /** The steps of --sweep without --steps (default the README's 5, 10, 20, 50). */
  sweepSteps?: readonly number[];
}

/** The one setting scored without --sweep: class-conditional models' and text-to-image models' (`generate`'s). */
const DEFAULT_SETTING: EvalDefaults = { steps: 20, guidance: 3 };
const TEXT_TO_IMAGE_SETTING: EvalDefaults = { steps: 30, guidance: 7.5 };
/**
 * A latent consistency model (its folder's scheduler is LCMScheduler, its UNet takes the guidance as an
 * embedding): sampled with its own scheduler, 4 steps, `generate`'s guidance; --sweep over 1, 2, 4, 8 steps.
 */
const LCM_SETTING: EvalDefaults = { sampler: "lcm", steps: 4, guidance: 7.5, sweepSteps: [1, 2, 4, 8] };
/** An LCM-LoRA fused into its teacher (no guidance embedding): as LCM_SETTING, without guidance (`generate`'s 1). */
const FUSED_LCM_SETTING: EvalDefaults = { ...LCM_SETTING, guidance: 1 };

/**
 * Settings asked for: one (`single`'s sampler, steps and guidance), or with `sweep` lists (default: the
 * README's).
 */
export function settingsFromOptions(
  opts: Pick<EvalCliOptions, "sampler" | "steps" | "guidance" | "sweep">,
  single: EvalDefaults = DEFAULT_SETTING,
): EvalSetting[] {
  const many = opts.sweep === true;
  const defaultSamplers = single.sampler ? [single.sampler] : many ? SWEEP_SAMPLERS : ["dpmpp-2m"];
  const samplers = listOption(opts.sampler, "sampler", many, defaultSamplers, (s) => {
    samplerSpec(s); // unknown names fail here, before any loading
    return s;
  });
  const defaultSteps = many ? (single.sweepSteps ?? SWEEP_STEPS) : [single.steps];
  const steps = listOption(opts.steps, "steps", many, defaultSteps, (s) => cliInt("steps", s, 1));
  const guidance = listOption(
    opts.guidance,
    "guidance",
    many,
    many ? SWEEP_GUIDANCE : [single.guidance],
    (s) => {
      const g = Number(s);
      if (!Number.isFinite(g)) throw new CliError(`--guidance must be a number, got "${s}"`);
      return g;
    },
  );
  return sweepSettings(samplers, steps, guidance);
}

function describeResult(r: EvalResult): string {
  const perClass = r.perClassAccuracy.map((a, c) => `${c} ${pct(a)}`).join(", ");
  return [
    `${r.sampler}, ${r.steps} steps, guidance ${r.guidance}: ${r.numPerClass} per class (${r.count} images), ${r.seconds.toFixed(0)} s`,
    `class accuracy: ${pct(r.accuracy)} (${perClass})`,
    `FD(generated, held-out): ${r.fd.toFixed(3)}`,
    `FD(held-out half, held-out half): ${r.referenceFd.toFixed(3)} (reference)`,
    `ratio: ${r.fdRatio.toFixed(2)}`,
  ].join("\n");
}

/** Runs the command; returns the results it printed. */
export async function runEval(opts: EvalCliOptions): Promise<EvalResult[] | TextToImageEvalResult[]> {
  const modelDir = opts.model ?? DEFAULT_MODEL_DIR;
  if (await isStableDiffusionModel(modelDir)) {
    if (opts.numPerClass !== "50" || opts.guidanceInterval !== undefined)
      throw new CliError(
        "--num-per-class and --guidance-interval apply to class-conditional models; a text-to-image model is scored with one image per name (--names N to prompt fewer)",
      );
    checkFolder(
      opts.classifier ?? DEFAULT_EMOJI_CLASSIFIER_DIR,
      "classifier",
      'train one with "diffuse train classifier --data emoji --out DIR" and pass --classifier DIR',
    );
    const device = await resolveDevice(opts.device, (text) => {
      if (!opts.json) process.stderr.write(`diffuse: warning: ${text}\n`);
    });
    return runTextToImageEval({
      modelDir,
      classifierDir: opts.classifier ?? DEFAULT_EMOJI_CLASSIFIER_DIR,
      names: opts.names,
      loras: (opts.lora ?? []).map(parseLoraArg),
      batch: opts.batch,
      seed: opts.seed,
      settings: settingsFromOptions(
        opts,
        (await isFusedLcmFolder(modelDir))
          ? FUSED_LCM_SETTING
          : (await modelSchedulerClass(modelDir)) === "LCMScheduler"
            ? LCM_SETTING
            : TEXT_TO_IMAGE_SETTING,
      ),
      sweep: opts.sweep,
      json: opts.json,
      device,
    });
  }
  if (opts.names !== undefined) throw new CliError("--names applies to text-to-image models only");
  if (opts.lora !== undefined)
    throw new CliError(`--lora applies to text-to-image models; ${modelDir} is a class-conditional model`);
  const classifierDir = opts.classifier ?? DEFAULT_CLASSIFIER_DIR;
  const numPerClass = cliInt("num-per-class", opts.numPerClass, 1);
  const seed = cliInt("seed", opts.seed, 0);
  const batchSize = cliInt("batch", opts.batch ?? "100", 1);
  const settings = settingsFromOptions(opts);
  const typedInterval = guidanceIntervalOption(opts.guidanceInterval);
  checkFolder(
    modelDir,
    "model",
    "pass --model DIR (a class-conditional pipeline folder with unet/ and scheduler/)",
  );
  checkFolder(
    classifierDir,
    "classifier",
    `train one with "${TRAIN_CLASSIFIER_COMMAND} --out ${classifierDir}" or pass --classifier DIR`,
  );
  const device = await resolveDevice(opts.device, (text) => {
    if (!opts.json) process.stderr.write(`diffuse: warning: ${text}\n`);
  });
  const {
    unet,
    scheduler,
    guidanceInterval: modelInterval,
  } = await loadClassConditionalPipeline(modelDir, {
    device,
  });
  const guidanceInterval = resolveGuidanceInterval(typedInterval, modelInterval);
  const classifier = await DigitClassifier.fromPretrained(classifierDir);
  const { train, heldOut } = loadMnist();
  const real = realDigitStats(classifier, heldOut);
  const baseline = realBaselineFd(classifier, train, numPerClass, real);
  const reporter = progressReporter({ json: opts.json });
  const controller = new AbortController();
  const onSigint = () => controller.abort(new CliError("interrupted"));
  process.once("SIGINT", onSigint);
  let results: EvalResult[];
  try {
    results = await evaluateSweep({
      unet,
      scheduler,
      classifier,
      heldOut,
      numPerClass,
      seed,
      batchSize,
      real,
      settings,
      guidanceInterval,
      onProgress: reporter.onProgress,
      onResult: opts.json
        ? (r) => process.stdout.write(`${JSON.stringify({ type: "setting", ...r })}\n`)
        : undefined,
      signal: controller.signal,
    });
  } finally {
    reporter.stop();
    process.off("SIGINT", onSigint);
  }
  const info = {
    model: modelDir,
    classifier: classifierDir,
    classifierHeldOutAccuracy: real.classifierAccuracy,
    heldOutDigits: heldOut.count,
    referenceFd: real.referenceFd,
    referenceHalf: real.halfCount,
    realBaselineFd: baseline,
    numPerClass,
    seed,
    guidanceInterval: guidanceInterval ? formatGuidanceInterval(guidanceInterval) : "all",
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ type: "result", ...info, results })}\n`);
    return results;
  }
  const header =
    `model ${modelDir}; classifier ${classifierDir} (accuracy ${pct(real.classifierAccuracy)} on ${heldOut.count} held-out digits)\n` +
    `reference FD between two halves of the held-out digits (${real.halfCount} vs ${real.halfCount}): ${real.referenceFd.toFixed(3)}\n` +
    `FD of ${numPerClass} real training digits per class vs the held-out digits (a perfect model at this size): ${baseline.toFixed(3)}`;
  const guidedSteps = guidanceInterval
    ? `guidance applied for sigma in (${formatGuidanceInterval(guidanceInterval).replace(",", ", ")}]`
    : "guidance applied at every step";
  if (opts.sweep) {
    process.stdout.write(
      `${header}\n${numPerClass} generated images per class per setting, seed ${seed}, ${guidedSteps}; cells: class accuracy / FD(generated, held-out)\n\n${sweepMarkdown(results)}\n`,
    );
  } else {
    process.stdout.write(`${header}\n${guidedSteps}\n${results.map(describeResult).join("\n\n")}\n`);
  }
  return results;
}

/** Adds the `eval` command to the program. */
export function registerEval(program: Command): void {
  program
    .command("eval")
    .description(
      "score a model with a classifier: class accuracy (digits) or prompt adherence (emoji) and Fréchet distance",
    )
    .option(
      "--model <dir>",
      "class-conditional pipeline folder (default: the shipped models/mnist), or a text-to-image model trained on the emoji",
    )
    .option(
      "--classifier <dir>",
      "classifier folder (default: models/mnist-classifier, or models/emoji-classifier for text-to-image)",
    )
    .option("--num-per-class <n>", "generated images per class and setting", "50")
    .option(
      "--sampler <name>",
      "sampler (default dpmpp-2m, lcm for an LCM folder; with --sweep a comma list, default ddim,euler,euler-a,dpmpp-2m,unipc)",
    )
    .option(
      "--steps <n>",
      "inference steps (default 20, text-to-image 30 as generate, LCM 4; with --sweep a comma list, default 5,10,20,50, LCM 1,2,4,8)",
    )
    .option(
      "--guidance <g>",
      "classifier-free guidance (default 3, text-to-image 7.5 as generate; with --sweep a comma list, default 1,3,7)",
    )
    .option("--guidance-interval <lo,hi>", `${GUIDANCE_INTERVAL_HELP} (default: the model's)`)
    .option("--seed <n>", "seed of the initial noise (the same for every setting)", "0")
    .option(
      "--batch <n>",
      "images per generation batch (default 100; text-to-image: names per batch, default 16)",
    )
    .option("--sweep", "evaluate every sampler x steps x guidance combination and print a markdown table")
    .option(
      "--names <n>",
      "text-to-image models: prompt this many emoji names (spread over all; default all)",
    )
    .option(
      "--lora <file[:scale]>",
      "text-to-image models: apply a LoRA .safetensors while scoring (repeatable; scale default 1)",
      (v: string, all: string[] = []) => [...all, v],
    )
    .option("--json", "print progress and the result as JSON lines")
    .option("--device <name>", "where to sample: cpu or webgpu (default: $DIFFUSE_DEVICE or cpu)")
    .action(async (opts: EvalCliOptions) => {
      await runEval(opts);
    });
}
