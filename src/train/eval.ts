// Evaluation of a class-conditional digit model with a separately trained classifier: the class accuracy of generated
// digits (is it the digit that was asked for?) and the Fréchet distance between classifier features of generated and
// held-out real digits, next to the distance between two disjoint halves of the real digits (the floor a perfect model
// would reach at that sample size).
import type { DigitClassifier } from "../models/classifier/digit-classifier.js";
import type { UNet2DModel } from "../models/unet/unet-2d.js";
import { generateClassImages } from "../pipelines/class-conditional.js";
import type { GuidanceInterval } from "../pipelines/guidance.js";
import { samplerFromName } from "../schedulers/samplers.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import { classifyDigits } from "./classifier.js";
import type { Digits } from "./data/mnist.js";
import { accuracy, frechetDistance, type GaussianStats, gaussianStats, perClassAccuracy } from "./metrics.js";

/** One sampling setting. */
export interface EvalSetting {
  /** Sampler name (see schedulers/samplers.ts: ddim, euler, euler-a, dpmpp-2m, unipc, ...). */
  sampler: string;
  steps: number;
  /** Classifier-free guidance scale (1: the conditional model alone). */
  guidance: number;
}

/** The samplers, step counts and guidance scales of the README table. */
export const SWEEP_SAMPLERS = ["ddim", "euler", "euler-a", "dpmpp-2m", "unipc"] as const;
export const SWEEP_STEPS = [5, 10, 20, 50] as const;
export const SWEEP_GUIDANCE = [1, 3, 7] as const;

/** Every combination of samplers x steps x guidance (sampler-major order). */
export function sweepSettings(
  samplers: readonly string[] = SWEEP_SAMPLERS,
  steps: readonly number[] = SWEEP_STEPS,
  guidance: readonly number[] = SWEEP_GUIDANCE,
): EvalSetting[] {
  return samplers.flatMap((sampler) =>
    steps.flatMap((k) => guidance.map((g) => ({ sampler, steps: k, guidance: g }))),
  );
}

/** Classifier statistics of the real held-out digits, computed once per evaluation run. */
export interface RealDigitStats {
  /** Gaussian fit of the features of all held-out digits. */
  stats: GaussianStats;
  /** Fréchet distance between two disjoint, class-balanced halves of the held-out digits. */
  referenceFd: number;
  /** Size of each half. */
  halfCount: number;
  /** The classifier's accuracy on the held-out digits. */
  classifierAccuracy: number;
}

/**
 * Features of the held-out digits, and the reference distance between two halves of them: within each class,
 * digits of even rank go to one half and odd rank to the other, so both halves are class-balanced and disjoint.
 */
export function realDigitStats(classifier: DigitClassifier, heldOut: Digits): RealDigitStats {
  const d = classifier.config.feature_dim;
  const { features, predicted } = classifyDigits(classifier, heldOut.images, heldOut.count);
  const rank = new Map<number, number>();
  const halves: number[][] = [[], []];
  for (let i = 0; i < heldOut.count; i++) {
    const c = heldOut.labels[i]!;
    const r = rank.get(c) ?? 0;
    rank.set(c, r + 1);
    halves[r % 2]!.push(i);
  }
  const pick = (rows: number[]) => {
    const out = new Float32Array(rows.length * d);
    rows.forEach((row, k) => {
      out.set(features.subarray(row * d, (row + 1) * d), k * d);
    });
    return out;
  };
  const [a, b] = halves as [number[], number[]];
  const halfCount = Math.min(a.length, b.length);
  return {
    stats: gaussianStats(features, d),
    referenceFd: frechetDistance(
      gaussianStats(pick(a.slice(0, halfCount)), d),
      gaussianStats(pick(b.slice(0, halfCount)), d),
    ),
    halfCount,
    classifierAccuracy: accuracy(predicted, heldOut.labels),
  };
}

/**
 * The Fréchet distance a perfect generator would score at this sample size: `numPerClass` real digits of each class
 * from `digits` (e.g. the training set, disjoint from the held-out set) against all held-out digits. The estimate of
 * a covariance from few samples biases the distance upwards, so compare generated sets with this floor at equal size.
 */
export function realBaselineFd(
  classifier: DigitClassifier,
  digits: Digits,
  numPerClass: number,
  real: RealDigitStats,
): number {
  const numClasses = classifier.config.num_classes;
  const picked: number[] = [];
  const seen = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < digits.count; i++) {
    const c = digits.labels[i]!;
    if (seen[c]! < numPerClass) {
      seen[c]!++;
      picked.push(i);
    }
  }
  if (picked.length < 2) throw new ArgumentError(`realBaselineFd: need 2+ digits, got ${picked.length}`);
  const px = digits.images.length / digits.count;
  const images = new Float32Array(picked.length * px);
  picked.forEach((src, k) => {
    images.set(digits.images.subarray(src * px, (src + 1) * px), k * px);
  });
  const { features } = classifyDigits(classifier, images, picked.length);
  return frechetDistance(gaussianStats(features, classifier.config.feature_dim), real.stats);
}

/** Options shared by {@link evaluateClassConditional} and {@link evaluateSweep}. */
export interface EvaluateCommonOptions {
  unet: UNet2DModel;
  /** The pipeline's scheduler; its config (training schedule) is kept and the named sampler built on it. */
  scheduler: Scheduler;
  classifier: DigitClassifier;
  /** Held-out real digits (the reference of the Fréchet distance). */
  heldOut: Digits;
  /** Generated images per class (>= 1; the Fréchet distance needs at least 2 images in all). */
  numPerClass: number;
  /** Guide only the steps in this noise interval (default: every step). */
  guidanceInterval?: GuidanceInterval;
  /** Seed of the initial noise (default 0); every setting starts from the same noise. */
  seed?: number;
  /** Images per generation batch (default 100; doubled inside the UNet when guided). */
  batchSize?: number;
  /** Precomputed {@link realDigitStats} (computed when absent). */
  real?: RealDigitStats;
  /** Receives each setting's result as soon as it is done (long sweeps). */
  onResult?: (result: EvalResult) => void;
  /** Stage "eval" events: step = image-steps done over all settings, message = the setting. */
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Options of {@link evaluateClassConditional}. */
export interface EvaluateOptions extends EvaluateCommonOptions, EvalSetting {}

/** The numbers of one setting. */
export interface EvalResult extends EvalSetting {
  numPerClass: number;
  /** Generated images in all (numPerClass x classes). */
  count: number;
  /** Fraction of generated images the classifier reads as the requested class. */
  accuracy: number;
  perClassAccuracy: number[];
  /** Fréchet distance between classifier features of the generated and of all held-out digits. */
  fd: number;
  /** Fréchet distance between two halves of the held-out digits. */
  referenceFd: number;
  /** fd / referenceFd. */
  fdRatio: number;
  /** Wall time of generation and scoring. */
  seconds: number;
}

function checkCommon(opts: EvaluateCommonOptions): { numClasses: number; batchSize: number } {
  const numClasses = opts.unet.numClassEmbeds - 1;
  if (numClasses < 1)
    throw new ArgumentError("evaluate: the UNet is not class-conditional (num_class_embeds < 2)");
  if (opts.classifier.config.num_classes !== numClasses) {
    throw new ArgumentError(
      `evaluate: the classifier has ${opts.classifier.config.num_classes} classes but the model generates ${numClasses}`,
    );
  }
  if (!Number.isInteger(opts.numPerClass) || opts.numPerClass < 1 || opts.numPerClass * numClasses < 2) {
    throw new ArgumentError(
      `evaluate: numPerClass must be a positive integer (2+ images in all), got ${opts.numPerClass}`,
    );
  }
  const batchSize = opts.batchSize ?? 100;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new ArgumentError(`evaluate: batchSize must be a positive integer, got ${batchSize}`);
  }
  if (opts.heldOut.count < 4)
    throw new ArgumentError(`evaluate: need at least 4 held-out digits, got ${opts.heldOut.count}`);
  return { numClasses, batchSize };
}

function label(s: EvalSetting): string {
  return `${s.sampler} ${s.steps} steps g${s.guidance}`;
}

/** Runs the settings one after another; progress counts image-steps over all of them. */
async function runSettings(
  opts: EvaluateCommonOptions,
  settings: readonly EvalSetting[],
): Promise<EvalResult[]> {
  const { numClasses, batchSize } = checkCommon(opts);
  for (const s of settings) {
    if (!Number.isInteger(s.steps) || s.steps < 1)
      throw new ArgumentError(`evaluate: steps must be a positive integer, got ${s.steps}`);
    if (!Number.isFinite(s.guidance))
      throw new ArgumentError(`evaluate: guidance must be finite, got ${s.guidance}`);
    samplerFromName(s.sampler, opts.scheduler.config); // unknown sampler names fail before any work
  }
  const real = opts.real ?? realDigitStats(opts.classifier, opts.heldOut);
  const count = opts.numPerClass * numClasses;
  const labels = Array.from({ length: count }, (_, i) => i % numClasses);
  const total = settings.reduce((acc, s) => acc + s.steps * count, 0);
  const d = opts.classifier.config.feature_dim;
  let done = 0;
  const results: EvalResult[] = [];
  for (const setting of settings) {
    const t0 = performance.now();
    const scheduler = samplerFromName(setting.sampler, opts.scheduler.config);
    const generator = new Generator(opts.seed ?? 0);
    const features = new Float32Array(count * d);
    const predicted = new Int32Array(count);
    for (let start = 0; start < count; start += batchSize) {
      opts.signal?.throwIfAborted();
      const batchLabels = labels.slice(start, start + batchSize);
      const base = done;
      const images = await generateClassImages(opts.unet, scheduler, {
        classLabels: batchLabels,
        guidanceScale: setting.guidance,
        guidanceInterval: opts.guidanceInterval,
        steps: setting.steps,
        generator,
        signal: opts.signal,
        onProgress: (e) => {
          done = base + e.step * batchLabels.length;
          opts.onProgress?.({ stage: "eval", step: done, total, message: label(setting) });
        },
      });
      done = base + setting.steps * batchLabels.length;
      // the classifier runs on the CPU: one readback of the batch
      const pixels = await images.toFloat32ArrayAsync();
      const out = classifyDigits(opts.classifier, pixels, batchLabels.length);
      features.set(out.features, start * d);
      predicted.set(out.predicted, start);
      // let timers and signals run between batches
      await new Promise((resolve) => setImmediate(resolve));
    }
    const fd = frechetDistance(gaussianStats(features, d), real.stats);
    const result: EvalResult = {
      ...setting,
      numPerClass: opts.numPerClass,
      count,
      accuracy: accuracy(predicted, labels),
      perClassAccuracy: perClassAccuracy(predicted, labels, numClasses),
      fd,
      referenceFd: real.referenceFd,
      fdRatio: fd / real.referenceFd,
      seconds: (performance.now() - t0) / 1000,
    };
    results.push(result);
    opts.onResult?.(result);
  }
  return results;
}

/**
 * Generates `numPerClass` images of every class with one sampler setting and scores them with the classifier:
 * class accuracy and Fréchet distance to the held-out digits (see {@link EvalResult}).
 */
export async function evaluateClassConditional(opts: EvaluateOptions): Promise<EvalResult> {
  const [result] = await runSettings(opts, [
    { sampler: opts.sampler, steps: opts.steps, guidance: opts.guidance },
  ]);
  return result!;
}

/** {@link evaluateClassConditional} for each setting (default: the whole README sweep), sharing the real statistics. */
export async function evaluateSweep(
  opts: EvaluateCommonOptions & { settings?: readonly EvalSetting[] },
): Promise<EvalResult[]> {
  return runSettings(opts, opts.settings ?? sweepSettings());
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/**
 * A sweep as a markdown table: one row per sampler and step count, one column per guidance scale headed
 * `guidance G: <cellHeader>`, each cell `cell(result)`; missing combinations are shown as "-".
 */
export function settingsTable<R extends EvalSetting>(
  results: readonly R[],
  cellHeader: string,
  cell: (r: R) => string,
): string {
  if (results.length === 0) return "";
  const guidance = [...new Set(results.map((r) => r.guidance))].sort((a, b) => a - b);
  const rows = new Map<string, Map<number, R>>();
  for (const r of results) {
    const key = `${r.sampler}\u0000${r.steps}`;
    if (!rows.has(key)) rows.set(key, new Map());
    rows.get(key)!.set(r.guidance, r);
  }
  const lines = [
    `| sampler | steps | ${guidance.map((g) => `guidance ${g}: ${cellHeader}`).join(" | ")} |`,
    `| --- | ---: | ${guidance.map(() => "---:").join(" | ")} |`,
  ];
  for (const [key, byGuidance] of rows) {
    const [sampler, steps] = key.split("\u0000");
    const cells = guidance.map((g) => {
      const r = byGuidance.get(g);
      return r ? cell(r) : "-";
    });
    lines.push(`| ${sampler} | ${steps} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** The class-conditional sweep as a markdown table (cells "accuracy / FD"; see {@link settingsTable}). */
export function sweepMarkdown(results: readonly EvalResult[]): string {
  return settingsTable(results, "accuracy / FD", (r) => `${pct(r.accuracy)} / ${r.fd.toFixed(2)}`);
}
