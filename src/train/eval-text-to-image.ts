// Prompt adherence of a text-to-image model trained on the emoji, measured by a separately trained emoji classifier:
// one image per emoji name (the prompt is the name), top-1 / top-5 of the classifier over all names, and the
// Fréchet distance between the classifier features of the generated images and of half of the real images, next to
// the distance between the two halves of the real images (what a generator as varied as the data would score).
import { imageToTensor } from "../io/image-tensor.js";
import type { DigitClassifier } from "../models/classifier/digit-classifier.js";
import type { StableDiffusionPipeline } from "../pipelines/stable-diffusion.js";
import { ArgumentError } from "../tensor/errors.js";
import type { ProgressCallback } from "../tensor/progress.js";
import { classifyDigits } from "./classifier.js";
import type { EmojiSet } from "./data/emoji.js";
import type { EvalSetting } from "./eval.js";
import { frechetDistance, type GaussianStats, gaussianStats } from "./metrics.js";

/** Statistics of the real images, computed once per evaluation run. */
export interface RealEmojiStats {
  /** Gaussian fit of the features of the real images of odd index (the comparison half). */
  half: GaussianStats;
  /** Fréchet distance between the even- and odd-index halves of the real images. */
  referenceFd: number;
  /** The classifier's top-1 accuracy on the real images. */
  classifierAccuracy: number;
}

/** Classifier statistics of the real images (see {@link RealEmojiStats}). */
export function realEmojiStats(classifier: DigitClassifier, set: EmojiSet): RealEmojiStats {
  const d = classifier.config.feature_dim;
  const { features, predicted } = classifyDigits(classifier, set.images, set.count);
  const halves: [number[], number[]] = [[], []];
  for (let i = 0; i < set.count; i++) halves[i % 2]!.push(i);
  const pick = (rows: number[]) => {
    const out = new Float32Array(rows.length * d);
    rows.forEach((row, k) => {
      out.set(features.subarray(row * d, (row + 1) * d), k * d);
    });
    return gaussianStats(out, d);
  };
  let hits = 0;
  for (let i = 0; i < set.count; i++) if (predicted[i] === set.labels[i]) hits++;
  const half = pick(halves[1]);
  return { half, referenceFd: frechetDistance(pick(halves[0]), half), classifierAccuracy: hits / set.count };
}

/** Options of {@link evaluateTextToImage}. */
export interface TextToImageEvalOptions extends EvalSetting {
  pipeline: StableDiffusionPipeline;
  classifier: DigitClassifier;
  set: EmojiSet;
  /** The classes (emoji names) to prompt, one image each (default: every class). */
  classes?: readonly number[];
  /** Batch b of the names is drawn with seed + b (default 0). */
  seed?: number;
  /** Names prompted in one batch (default 16). */
  batchSize?: number;
  /** Precomputed {@link realEmojiStats} (shared by the settings of a sweep). */
  real?: RealEmojiStats;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** What {@link evaluateTextToImage} measured. */
export interface TextToImageEvalResult extends EvalSetting {
  /** Images generated (one per prompted name). */
  count: number;
  /** Share of images whose name the classifier ranks first of all names. */
  top1: number;
  /** ... among its first five. */
  top5: number;
  /** Fréchet distance of the generated images' features to the real comparison half. */
  fd: number;
  referenceFd: number;
  fdRatio: number;
  seconds: number;
}

/** Generates one image per name with `setting` and scores it; see the file comment. */
export async function evaluateTextToImage(opts: TextToImageEvalOptions): Promise<TextToImageEvalResult> {
  const { classifier, set } = opts;
  const numClasses = set.classNames.length;
  if (classifier.config.num_classes !== numClasses)
    throw new ArgumentError(
      `evaluate: the classifier has ${classifier.config.num_classes} classes, the image set ${numClasses} names`,
    );
  const classes = opts.classes ?? Array.from({ length: numClasses }, (_, i) => i);
  if (classes.length < 2) throw new ArgumentError(`evaluate: need 2+ names to prompt, got ${classes.length}`);
  for (const c of classes) {
    if (!(Number.isInteger(c) && c >= 0 && c < numClasses))
      throw new ArgumentError(`evaluate: class ${c} is not one of the ${numClasses} names`);
  }
  const t0 = performance.now();
  const real = opts.real ?? realEmojiStats(classifier, set);
  const size = classifier.config.sample_size;
  const per = 3 * size * size;
  const pixels = new Float32Array(classes.length * per);
  const batch = opts.batchSize ?? 16;
  if (!(Number.isInteger(batch) && batch >= 1))
    throw new ArgumentError(`evaluate: batchSize must be a positive integer, got ${batch}`);
  for (let start = 0; start < classes.length; start += batch) {
    opts.signal?.throwIfAborted();
    const names = classes.slice(start, start + batch).map((c) => set.classNames[c]!);
    const r = await opts.pipeline.generate({
      prompt: names,
      sampler: opts.sampler,
      steps: opts.steps,
      guidanceScale: opts.guidance,
      seed: (opts.seed ?? 0) + start / batch,
      width: size,
      height: size,
      signal: opts.signal,
    });
    r.images.forEach((image, i) => {
      pixels.set(imageToTensor(image, [-1, 1], 3).toFloat32Array(), (start + i) * per);
    });
    opts.onProgress?.({ stage: "eval", step: start + names.length, total: classes.length });
  }
  const { features, logits } = classifyDigits(classifier, pixels, classes.length);
  let top1 = 0;
  let top5 = 0;
  for (let k = 0; k < classes.length; k++) {
    const row = logits.subarray(k * numClasses, (k + 1) * numClasses);
    const own = row[classes[k]!]!;
    let better = 0;
    for (let j = 0; j < numClasses; j++) if (row[j]! > own) better++;
    if (better === 0) top1++;
    if (better < 5) top5++;
  }
  const fd = frechetDistance(gaussianStats(features, classifier.config.feature_dim), real.half);
  return {
    sampler: opts.sampler,
    steps: opts.steps,
    guidance: opts.guidance,
    count: classes.length,
    top1: top1 / classes.length,
    top5: top5 / classes.length,
    fd,
    referenceFd: real.referenceFd,
    fdRatio: fd / real.referenceFd,
    seconds: (performance.now() - t0) / 1000,
  };
}
