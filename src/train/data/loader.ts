// An endless, reshuffled stream of mini-batches over a labelled image set. The order comes from an explicit
// Generator only, and the loader's whole position (epoch, place in the epoch, permutation, generator state) can be
// saved and restored, so a resumed training run sees exactly the batches an uninterrupted one would.
import { tensor } from "../../tensor/create.js";
import { ArgumentError } from "../../tensor/errors.js";
import { Generator } from "../../tensor/generator.js";
import type { Tensor } from "../../tensor/tensor.js";

/** What {@link DataLoader} reads: `count` images of `images.length / count` pixels each, with labels. */
export interface LabeledImages {
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly count: number;
}

/** Options of {@link DataLoader}. */
export interface DataLoaderOptions {
  /** Images per batch (may exceed the set: a batch then spans epochs). */
  batchSize: number;
  /** Source of the shuffles; the loader owns it from here on (default: new Generator(0)). */
  generator?: Generator;
  /** Shape of one image (default [1, side, side] for square single-channel images). */
  imageShape?: readonly number[];
  /** Shuffle every epoch (default true); false reads the set in order. */
  shuffle?: boolean;
}

/** One mini-batch. */
export interface LabeledBatch {
  /** [B, ...imageShape] float32. */
  images: Tensor;
  /** [B] class labels. */
  labels: Int32Array;
  /** Epoch of the batch's first image (0-based). */
  epoch: number;
}

/** The loader's position, JSON-serialisable (for checkpoints). */
export interface DataLoaderState {
  epoch: number;
  /** Index into `order` of the next image. */
  position: number;
  /** The current epoch's permutation. */
  order: number[];
  /** The generator state (base64 of Generator.getState()). */
  generator: string;
}

/**
 * Batches of a labelled image set, reshuffled at every epoch boundary with a Fisher-Yates shuffle driven by the
 * loader's Generator; batches run across epoch boundaries, so every image is seen once per epoch.
 */
export class DataLoader {
  readonly data: LabeledImages;
  readonly batchSize: number;
  readonly imageShape: readonly number[];
  readonly shuffle: boolean;
  readonly #generator: Generator;
  readonly #pixels: number;
  #order: Int32Array;
  #position = 0;
  #epoch = 0;

  constructor(data: LabeledImages, opts: DataLoaderOptions) {
    if (!Number.isInteger(data.count) || data.count < 1 || data.labels.length !== data.count) {
      throw new ArgumentError(
        `DataLoader: expected a non-empty set with one label per image, got ${data.count}`,
      );
    }
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new ArgumentError(`DataLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    }
    const pixels = data.images.length / data.count;
    const side = Math.round(Math.sqrt(pixels));
    const shape = opts.imageShape ?? [1, side, side];
    if (!Number.isInteger(pixels) || shape.reduce((a, b) => a * b, 1) !== pixels) {
      throw new ArgumentError(
        `DataLoader: ${data.images.length} pixel values do not make ${data.count} images of shape [${shape.join(", ")}]`,
      );
    }
    this.data = data;
    this.batchSize = opts.batchSize;
    this.imageShape = [...shape];
    this.shuffle = opts.shuffle ?? true;
    this.#generator = opts.generator ?? new Generator(0);
    this.#pixels = pixels;
    this.#order = this.#newOrder();
  }

  /** The current epoch (0-based; it advances when an image is drawn after the previous epoch ended). */
  get epoch(): number {
    return this.#epoch;
  }

  /** Index of the next image within the current epoch's order. */
  get position(): number {
    return this.#position;
  }

  /** Batches per epoch (rounded up). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.data.count / this.batchSize);
  }

  #newOrder(): Int32Array {
    const n = this.data.count;
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    if (!this.shuffle) return order;
    // Fisher-Yates: swap i with a uniform j in [0, i] (Knuth, TAOCP vol. 2, Algorithm P)
    const draws = this.#generator.randint(0, 2 ** 31, n);
    for (let i = n - 1; i > 0; i--) {
      const j = draws[i]! % (i + 1);
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    return order;
  }

  /** The next batch (a new permutation is drawn whenever an epoch ends). */
  next(): LabeledBatch {
    const b = this.batchSize;
    const px = this.#pixels;
    const images = new Float32Array(b * px);
    const labels = new Int32Array(b);
    const epoch = this.#epoch;
    for (let k = 0; k < b; k++) {
      if (this.#position === this.data.count) {
        this.#epoch++;
        this.#position = 0;
        this.#order = this.#newOrder();
      }
      const i = this.#order[this.#position++]!;
      images.set(this.data.images.subarray(i * px, (i + 1) * px), k * px);
      labels[k] = this.data.labels[i]!;
    }
    return { images: tensor(images, [b, ...this.imageShape]), labels, epoch };
  }

  /** The loader's position (see {@link DataLoaderState}). */
  stateDict(): DataLoaderState {
    return {
      epoch: this.#epoch,
      position: this.#position,
      order: Array.from(this.#order),
      generator: Buffer.from(this.#generator.getState()).toString("base64"),
    };
  }

  /** Restores a position saved by {@link stateDict} on the same data set. */
  loadStateDict(state: DataLoaderState): void {
    const n = this.data.count;
    const ok =
      Number.isInteger(state.epoch) &&
      state.epoch >= 0 &&
      Number.isInteger(state.position) &&
      state.position >= 0 &&
      state.position <= n &&
      Array.isArray(state.order) &&
      state.order.length === n &&
      typeof state.generator === "string";
    if (!ok) {
      throw new ArgumentError(
        `DataLoader.loadStateDict: the state does not describe a loader over ${n} images`,
      );
    }
    this.#epoch = state.epoch;
    this.#position = state.position;
    this.#order = Int32Array.from(state.order);
    this.#generator.setState(new Uint8Array(Buffer.from(state.generator, "base64")));
  }
}
