// What every trainer of the package shares: AdamW with a linear warm-up + cosine learning rate, gradient clipping,
// an EMA of the weights, a noise generator and a data loader seeded from one seed, the step counter and the loss
// history read back from the device in batches. A subclass says what a batch's loss is.
import type { Module } from "../nn/index.js";
import { AdamW, clipGradNorm, EMA, type EMAOptions, warmupCosine } from "../nn/optim/index.js";
import { detach, stack } from "../ops/index.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import { release, tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { DataLoader, type LabeledImages } from "./data/loader.js";
import type { LoopStepResult } from "./loop.js";

/** Optimisation hyperparameters every trainer takes. */
export interface OptimOptions {
  /** Total optimisation steps (sets the cosine schedule). */
  steps: number;
  /** Images per step. */
  batchSize?: number;
  /** Peak learning rate (default 1e-3), reached after `warmupSteps` (default min(200, steps / 10)). */
  lr?: number;
  warmupSteps?: number;
  /** Learning rate at the end of the cosine (default lr / 20). */
  minLr?: number;
  /** AdamW decoupled weight decay (default 0.01). */
  weightDecay?: number;
  /** Gradients are rescaled to this global norm at most (default 1). */
  gradClip?: number;
  /** Upper bound of the EMA decay (default 0.999; diffusers' (1 + t) / (10 + t) warm-up below it). */
  emaDecay?: number;
  /** Seed of the noise generator and, + 1, of the data order (default 0). */
  seed?: number;
}

/** {@link OptimOptions} with the defaults filled in. */
export type ResolvedOptimOptions = Required<OptimOptions>;

/** Fills in the defaults of {@link OptimOptions} (batch size default `batchSize`) and checks them; `who` names the trainer. */
export function resolveOptimOptions(opts: OptimOptions, who: string, batchSize = 64): ResolvedOptimOptions {
  const steps = opts.steps;
  const lr = opts.lr ?? 1e-3;
  const r: ResolvedOptimOptions = {
    steps,
    batchSize: opts.batchSize ?? batchSize,
    lr,
    warmupSteps: opts.warmupSteps ?? Math.min(200, Math.floor(steps / 10)),
    minLr: opts.minLr ?? lr / 20,
    weightDecay: opts.weightDecay ?? 0.01,
    gradClip: opts.gradClip ?? 1,
    emaDecay: opts.emaDecay ?? 0.999,
    seed: opts.seed ?? 0,
  };
  const bad = (what: string, v: unknown): never => {
    throw new ArgumentError(`${who}: ${what}, got ${v}`);
  };
  if (!Number.isInteger(r.steps) || r.steps < 1) bad("steps must be a positive integer", r.steps);
  if (!Number.isInteger(r.batchSize) || r.batchSize < 1)
    bad("batchSize must be a positive integer", r.batchSize);
  if (!(r.lr > 0)) bad("lr must be > 0", r.lr);
  if (!(r.minLr >= 0)) bad("minLr must be >= 0", r.minLr);
  if (!Number.isInteger(r.warmupSteps) || r.warmupSteps < 0)
    bad("warmupSteps must be an integer >= 0", r.warmupSteps);
  if (!(r.weightDecay >= 0)) bad("weightDecay must be >= 0", r.weightDecay);
  if (!(r.gradClip > 0)) bad("gradClip must be > 0", r.gradClip);
  if (!(r.emaDecay >= 0 && r.emaDecay <= 1)) bad("emaDecay must be in [0, 1]", r.emaDecay);
  if (!Number.isSafeInteger(r.seed) || r.seed < 0) bad("seed must be a non-negative integer", r.seed);
  return r;
}

/** What a subclass's batch loss gives back: the loss to minimise, and the loss to log (default the same). */
export interface BatchLoss {
  loss: Tensor;
  logged?: Tensor;
}

/** The shared state and step of a trainer; see the file comment. */
export abstract class TrainerBase<M extends Module, O extends ResolvedOptimOptions> {
  readonly options: O;
  readonly optimizer: AdamW;
  readonly ema: EMA;
  readonly loader: DataLoader;
  /** Draws the step's randomness (timesteps, noise, dropout, crops). */
  readonly generator: Generator;
  /** Steps done. */
  step = 0;
  /** Loss of every step done, in order, as far as read back ({@link readLosses} reads the pending ones in one go). */
  losses: number[] = [];
  /** Losses of the steps not read back yet (0-d tensors on the model's device). */
  #pending: Tensor[] = [];
  readonly #model: M;

  constructor(
    model: M,
    data: LabeledImages,
    options: O,
    loader: { imageShape?: readonly number[]; params?: Iterable<Tensor>; ema?: EMAOptions } = {},
  ) {
    this.#model = model.train();
    this.options = options;
    this.optimizer = new AdamW(loader.params ?? model.parameters(), {
      lr: options.lr,
      weightDecay: options.weightDecay,
    });
    this.ema = new EMA(model, { ...loader.ema, decay: options.emaDecay });
    this.generator = new Generator(options.seed);
    this.loader = new DataLoader(data, {
      batchSize: options.batchSize,
      generator: new Generator(options.seed + 1),
      imageShape: loader.imageShape,
    });
  }

  /** The trained module. */
  get model(): M {
    return this.#model;
  }

  /** Model configs stored with checkpoints. */
  abstract checkpointConfigs(): Record<string, Record<string, unknown>>;

  /** The loss of one batch (called inside the step's memory scope, with gradients recorded). */
  protected abstract batchLoss(batch: ReturnType<DataLoader["next"]>): BatchLoss;

  /** Learning rate of step `step` (0-based): linear warm-up, then cosine down to minLr. */
  lrAt(step: number): number {
    const o = this.options;
    return warmupCosine(step, { lr: o.lr, warmupSteps: o.warmupSteps, totalSteps: o.steps, minLr: o.minLr });
  }

  /** One optimisation step on the next batch: backward, clip, AdamW, EMA. */
  trainStep(): LoopStepResult & { loss: Tensor } {
    const batch = this.loader.next();
    const lr = this.lrAt(this.step);
    // the step's intermediates (activations, gradients) are freed when it ends: only the loss and norm stay
    const { loss, gradNorm } = tidy(() => {
      this.optimizer.setLr(lr);
      this.optimizer.zeroGrad();
      const { loss: stepLoss, logged } = this.batchLoss(batch);
      stepLoss.backward();
      const norm = clipGradNorm(
        this.optimizer.paramGroups.flatMap((g) => g.params),
        this.options.gradClip,
      );
      this.optimizer.step();
      this.optimizer.zeroGrad();
      this.ema.update();
      return { loss: detach(logged ?? stepLoss), gradNorm: norm };
    });
    this.step++;
    this.#pending.push(loss);
    return { step: this.step, loss, lr, gradNorm, epoch: batch.epoch };
  }

  /** Reads back the losses of the steps since the last read (one readback), appends them to `losses`. */
  async readLosses(): Promise<number[]> {
    if (this.#pending.length > 0) {
      const pending = this.#pending;
      this.#pending = [];
      const all = stack(pending);
      const values = await all.toFloat32ArrayAsync();
      release(all);
      this.losses.push(...values);
    }
    return this.losses;
  }
}

/** Runs `fn` with the EMA weights in the model (the training weights are put back afterwards). */
export async function withEmaWeights<T>(
  trainer: { ema: { store(): void; copyTo(): void; restore(): void } },
  fn: () => Promise<T> | T,
): Promise<T> {
  trainer.ema.store();
  trainer.ema.copyTo();
  try {
    return await fn();
  } finally {
    trainer.ema.restore();
  }
}
