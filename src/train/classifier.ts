// Training and running the digit classifier of `diffuse eval`: cross-entropy with AdamW under a warm-up + cosine
// learning rate, on randomly rotated, scaled and shifted digits (so that it judges shapes, not exact positions).
import {
  DigitClassifier,
  DigitClassifierConfig,
  type DigitClassifierConfig as DigitClassifierConfigType,
} from "../models/classifier/digit-classifier.js";
import { AdamW, warmupCosine } from "../nn/optim/index.js";
import { cross_entropy } from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { tensor } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import { DataLoader } from "./data/loader.js";
import type { Digits } from "./data/mnist.js";
import { accuracy, argmaxRows, perClassAccuracy } from "./metrics.js";

/** Random affine jitter of {@link augmentDigits}; each value is the largest magnitude drawn. */
export interface AugmentOptions {
  /** Rotation in degrees (default 10). */
  rotate?: number;
  /** Relative scale change (default 0.1: scale in [0.9, 1.1]). */
  scale?: number;
  /** Translation in pixels (default 2). */
  shift?: number;
  /** Channels per image (default 1); every channel of an image gets the same transform. */
  channels?: number;
  /** Value of pixels taken from outside the image (default -1: MNIST's black; 1 for white). */
  background?: number;
}

/**
 * Applies an independent random rotation, scale and translation about the centre to each of `count` square images
 * of `channels` planes in [-1, 1] (bilinear sampling; pixels from outside the image are `background`).
 */
export function augmentDigits(
  images: Float32Array,
  count: number,
  generator: Generator,
  opts: AugmentOptions = {},
): Float32Array {
  const channels = opts.channels ?? 1;
  const background = opts.background ?? -1;
  const side = Math.round(Math.sqrt(images.length / count / channels));
  if (side * side * count * channels !== images.length) {
    throw new ArgumentError(
      `augmentDigits: ${images.length} values are not ${count} square images of ${channels} channel(s)`,
    );
  }
  const maxRot = ((opts.rotate ?? 10) * Math.PI) / 180;
  const maxScale = opts.scale ?? 0.1;
  const maxShift = opts.shift ?? 2;
  const u = generator.uniform(4 * count);
  const out = new Float32Array(images.length);
  const c = (side - 1) / 2;
  const px = side * side;
  for (let n = 0; n < count * channels; n++) {
    const k = Math.floor(n / channels); // the image whose draws this plane uses
    const theta = (2 * u[4 * k]! - 1) * maxRot;
    const scale = 1 + (2 * u[4 * k + 1]! - 1) * maxScale;
    const tx = (2 * u[4 * k + 2]! - 1) * maxShift;
    const ty = (2 * u[4 * k + 3]! - 1) * maxShift;
    // output pixel p maps to source R(-theta) (p - c - t) / scale + c
    const cos = Math.cos(theta) / scale;
    const sin = Math.sin(theta) / scale;
    const src = images.subarray(n * px, (n + 1) * px);
    const at = (x: number, y: number): number =>
      x < 0 || y < 0 || x >= side || y >= side ? background : src[y * side + x]!;
    for (let y = 0; y < side; y++) {
      const dy = y - c - ty;
      for (let x = 0; x < side; x++) {
        const dx = x - c - tx;
        const sx = cos * dx + sin * dy + c;
        const sy = -sin * dx + cos * dy + c;
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const fx = sx - x0;
        const fy = sy - y0;
        const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
        const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
        out[n * px + y * side + x] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return out;
}

/** What the classifier makes of a set of images. */
export interface ClassifierOutputs {
  /** Row-major [count, feature_dim] feature vectors. */
  features: Float32Array;
  /** Row-major [count, num_classes] logits. */
  logits: Float32Array;
  /** Predicted class of each image. */
  predicted: Int32Array;
}

/** Runs the classifier (no gradients) over `count` images [count * side * side] in batches of `batchSize`. */
export function classifyDigits(
  model: DigitClassifier,
  images: Float32Array,
  count: number,
  batchSize = 250,
): ClassifierOutputs {
  const { in_channels: ch, sample_size: s, feature_dim: d, num_classes: k } = model.config;
  const px = ch * s * s;
  if (images.length !== count * px) {
    throw new ArgumentError(
      `classifyDigits: expected ${count} images of ${ch}x${s}x${s}, got ${images.length} values`,
    );
  }
  const features = new Float32Array(count * d);
  const logits = new Float32Array(count * k);
  noGrad(() => {
    for (let start = 0; start < count; start += batchSize) {
      const n = Math.min(batchSize, count - start);
      const x = tensor(images.slice(start * px, (start + n) * px), [n, ch, s, s]);
      const f = model.features(x);
      features.set(f.toFloat32Array(), start * d);
      logits.set(model.classify(f).toFloat32Array(), start * k);
    }
  });
  return { features, logits, predicted: argmaxRows(logits, k) };
}

/** Accuracy of the classifier on labelled digits, overall and per class. */
export function classifierAccuracy(
  model: DigitClassifier,
  digits: Digits,
): { accuracy: number; perClass: number[] } {
  const { predicted } = classifyDigits(model, digits.images, digits.count);
  return {
    accuracy: accuracy(predicted, digits.labels),
    perClass: perClassAccuracy(predicted, digits.labels, model.config.num_classes),
  };
}

/** Options of {@link trainDigitClassifier}. */
export interface TrainClassifierOptions {
  /** Training digits. */
  train: Digits;
  /** Digits to report the final accuracy on (optional). */
  heldOut?: Digits;
  /** Optimizer steps (default 1500). */
  steps?: number;
  /** Images per step (default 64). */
  batchSize?: number;
  /** Peak learning rate (default 2e-3), reached after 5% warm-up, then cosine to 0. */
  lr?: number;
  /** AdamW weight decay (default 1e-2). */
  weightDecay?: number;
  /** Seed of the initial weights, the batch order and the augmentation (default 0). */
  seed?: number;
  /** Classifier config overrides (see DigitClassifierConfig). */
  config?: Partial<DigitClassifierConfigType>;
  /** Augmentation ranges, or false for none. */
  augment?: AugmentOptions | false;
  /** Receives stage "train" events with loss and lr (every step) and accuracy on batches (every 50). */
  onProgress?: ProgressCallback;
  /** Stops training (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** What {@link trainDigitClassifier} returns. */
export interface TrainClassifierResult {
  model: DigitClassifier;
  /** Accuracy on `heldOut` after training, or null without it. */
  heldOutAccuracy: number | null;
  /** Per-class accuracy on `heldOut`, or null. */
  heldOutPerClass: number[] | null;
  /** Mean loss over the last 50 steps. */
  finalLoss: number;
  steps: number;
  seconds: number;
}

function positiveInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1)
    throw new ArgumentError(`trainDigitClassifier: ${name} must be a positive integer, got ${v}`);
  return v;
}

/** Trains a {@link DigitClassifier} from scratch on labelled digits. */
export async function trainDigitClassifier(opts: TrainClassifierOptions): Promise<TrainClassifierResult> {
  const steps = positiveInt(opts.steps ?? 1500, "steps");
  const batchSize = positiveInt(opts.batchSize ?? 64, "batchSize");
  const lr = opts.lr ?? 2e-3;
  if (!(lr > 0)) throw new ArgumentError(`trainDigitClassifier: lr must be > 0, got ${lr}`);
  const seed = opts.seed ?? 0;
  const config = DigitClassifierConfig.from(opts.config ?? {});
  const model = new DigitClassifier(config, { generator: new Generator(seed) }).train();
  const optimizer = new AdamW(model.parameters(), { lr, weightDecay: opts.weightDecay ?? 1e-2 });
  const loader = new DataLoader(opts.train, {
    batchSize,
    generator: new Generator(seed + 1),
    imageShape: [config.in_channels, config.sample_size, config.sample_size],
  });
  const augmentGenerator = new Generator(seed + 2);
  const warmupSteps = Math.max(1, Math.round(steps * 0.05));
  const recent: number[] = [];
  let hits = 0;
  let seen = 0;
  const t0 = performance.now();
  for (let step = 0; step < steps; step++) {
    opts.signal?.throwIfAborted();
    const batch = loader.next();
    let images = batch.images;
    if (opts.augment !== false) {
      const jittered = augmentDigits(images.toFloat32Array(), batchSize, augmentGenerator, {
        channels: config.in_channels,
        ...opts.augment,
      });
      images = tensor(jittered, images.shape);
    }
    const stepLr = warmupCosine(step, { lr, warmupSteps, totalSteps: steps });
    optimizer.setLr(stepLr);
    const logits = model.call(images);
    const loss = cross_entropy(logits, tensor(batch.labels, [batchSize]));
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    const lossValue = loss.item();
    recent.push(lossValue);
    if (recent.length > 50) recent.shift();
    const predicted = argmaxRows(logits.toFloat32Array(), config.num_classes);
    for (let i = 0; i < batchSize; i++) if (predicted[i] === batch.labels[i]) hits++;
    seen += batchSize;
    const values: Record<string, number> = { loss: lossValue, lr: stepLr };
    if ((step + 1) % 50 === 0 || step + 1 === steps) {
      values.acc = hits / seen;
      hits = 0;
      seen = 0;
    }
    opts.onProgress?.({ stage: "train", step: step + 1, total: steps, values });
    // let timers and signals run between steps
    await new Promise((resolve) => setImmediate(resolve));
  }
  model.eval();
  const held = opts.heldOut ? classifierAccuracy(model, opts.heldOut) : null;
  return {
    model,
    heldOutAccuracy: held?.accuracy ?? null,
    heldOutPerClass: held?.perClass ?? null,
    finalLoss: recent.reduce((a, b) => a + b, 0) / recent.length,
    steps,
    seconds: (performance.now() - t0) / 1000,
  };
}
