// Training a class-conditional pixel-space diffusion model (DDPM, Ho et al. 2020) with classifier-free guidance
// dropout (Ho & Salimans 2022): per step, t ~ U{0..T-1}, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, and the UNet
// regresses eps (or v, Salimans & Ho 2022) with an MSE loss, its class label replaced by the null class with
// probability `condDropout`. AdamW, linear warm-up + cosine decay, gradient clipping and an EMA of the weights.
// All randomness comes from two explicit generators (noise and data order), both part of the saved state.
import type { UNet2DModel } from "../models/unet/unet-2d.js";
import { AdamW, clipGradNorm, EMA, warmupCosine } from "../nn/optim/index.js";
import { detach, mse_loss, stack, toDevice } from "../ops/index.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { randn } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import { release, tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { DataLoader, type LabeledImages } from "./data/loader.js";

/** Hyperparameters of {@link DiffusionTrainer}. */
export interface DiffusionTrainOptions {
  /** Total optimisation steps (sets the cosine schedule). */
  steps: number;
  /** Images per step (default 64). */
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
  /** Probability of replacing a label by the null class (default 0.1). */
  condDropout?: number;
  /** Seed of the noise generator (timesteps, noise, dropout) and, + 1, of the data order (default 0). */
  seed?: number;
  /** Index of the null class (default num_class_embeds - 1). */
  nullClass?: number;
}

/** What one step did. */
export interface TrainStepResult {
  /** Steps done after this one. */
  step: number;
  /** The step's loss, a 0-d tensor on the model's device (read it when you log it: `await loss.itemAsync()`). */
  loss: Tensor;
  /** Learning rate used by this step. */
  lr: number;
  /** Global gradient norm before clipping (0-d, on the model's device). */
  gradNorm: Tensor;
  /** Epoch of the batch. */
  epoch: number;
}

/** The resolved hyperparameters, as saved with checkpoints. */
export type ResolvedTrainOptions = Required<DiffusionTrainOptions>;

/** Fills in the defaults of {@link DiffusionTrainOptions} and checks the values. */
export function resolveTrainOptions(opts: DiffusionTrainOptions, unet: UNet2DModel): ResolvedTrainOptions {
  const steps = opts.steps;
  const lr = opts.lr ?? 1e-3;
  const r: ResolvedTrainOptions = {
    steps,
    batchSize: opts.batchSize ?? 64,
    lr,
    warmupSteps: opts.warmupSteps ?? Math.min(200, Math.floor(steps / 10)),
    minLr: opts.minLr ?? lr / 20,
    weightDecay: opts.weightDecay ?? 0.01,
    gradClip: opts.gradClip ?? 1,
    emaDecay: opts.emaDecay ?? 0.999,
    condDropout: opts.condDropout ?? 0.1,
    seed: opts.seed ?? 0,
    nullClass: opts.nullClass ?? unet.numClassEmbeds - 1,
  };
  const bad = (what: string, v: unknown): never => {
    throw new ArgumentError(`trainer: ${what}, got ${v}`);
  };
  if (!Number.isInteger(r.steps) || r.steps < 1) bad("steps must be a positive integer", r.steps);
  if (!Number.isInteger(r.batchSize) || r.batchSize < 1)
    bad("batchSize must be a positive integer", r.batchSize);
  if (!(r.lr > 0)) bad("lr must be > 0", r.lr);
  if (!(r.minLr >= 0)) bad("minLr must be >= 0", r.minLr);
  if (!Number.isInteger(r.warmupSteps) || r.warmupSteps < 0)
    bad("warmupSteps must be an integer >= 0", r.warmupSteps);
  if (!(r.gradClip > 0)) bad("gradClip must be > 0", r.gradClip);
  if (!(r.emaDecay >= 0 && r.emaDecay <= 1)) bad("emaDecay must be in [0, 1]", r.emaDecay);
  if (!(r.condDropout >= 0 && r.condDropout <= 1)) bad("condDropout must be in [0, 1]", r.condDropout);
  if (!Number.isSafeInteger(r.seed) || r.seed < 0) bad("seed must be a non-negative integer", r.seed);
  if (r.condDropout > 0 && !(r.nullClass >= 0 && r.nullClass < unet.numClassEmbeds)) {
    bad(
      `the null class must be in [0, ${unet.numClassEmbeds}) (num_class_embeds = classes + 1)`,
      r.nullClass,
    );
  }
  return r;
}

/**
 * One training run's state: the UNet (trained in place), AdamW, the EMA, the noise generator and the data loader.
 * Call {@link trainStep} repeatedly; the state can be saved and restored with train/checkpoint.ts.
 */
export class DiffusionTrainer {
  readonly unet: UNet2DModel;
  /** The training noise schedule and target (epsilon or v_prediction from its prediction_type). */
  readonly noiseScheduler: Scheduler;
  readonly options: ResolvedTrainOptions;
  readonly optimizer: AdamW;
  readonly ema: EMA;
  readonly loader: DataLoader;
  /** Draws the timesteps, the noise and the label dropout. */
  readonly generator: Generator;
  /** Steps done. */
  step = 0;
  /**
   * Loss of every step done, in order, as far as it was read back ({@link readLosses} reads the steps since the
   * last read in one go).
   */
  losses: number[] = [];
  /** Losses of the steps not read back yet (0-d tensors on the model's device). */
  #pending: Tensor[] = [];

  constructor(
    unet: UNet2DModel,
    noiseScheduler: Scheduler,
    data: LabeledImages,
    opts: DiffusionTrainOptions,
  ) {
    const o = resolveTrainOptions(opts, unet);
    const pt = noiseScheduler.config.prediction_type;
    if (pt !== "epsilon" && pt !== "v_prediction") {
      throw new ArgumentError(`trainer: prediction_type must be "epsilon" or "v_prediction", got "${pt}"`);
    }
    for (let i = 0; i < data.count; i++) {
      const c = data.labels[i]!;
      if (!(c >= 0 && c < unet.numClassEmbeds) || (o.condDropout > 0 && c === o.nullClass)) {
        throw new ArgumentError(`trainer: label ${c} of image ${i} is not a class of this UNet`);
      }
    }
    this.unet = unet.train();
    this.noiseScheduler = noiseScheduler;
    this.options = o;
    this.optimizer = new AdamW(unet.parameters(), { lr: o.lr, weightDecay: o.weightDecay });
    this.ema = new EMA(unet, { decay: o.emaDecay });
    this.generator = new Generator(o.seed);
    this.loader = new DataLoader(data, { batchSize: o.batchSize, generator: new Generator(o.seed + 1) });
  }

  /** Learning rate of step `step` (0-based): linear warm-up, then cosine down to minLr. */
  lrAt(step: number): number {
    const o = this.options;
    return warmupCosine(step, { lr: o.lr, warmupSteps: o.warmupSteps, totalSteps: o.steps, minLr: o.minLr });
  }

  /** One optimisation step on the next batch. */
  trainStep(): TrainStepResult {
    const o = this.options;
    const g = this.generator;
    const batch = this.loader.next();
    const device = this.unet.device;
    const lr = this.lrAt(this.step);
    // the step's intermediates (activations, gradients) are freed when it ends: only the loss and norm stay
    const { loss, gradNorm } = tidy(() => {
      const images = toDevice(batch.images, device);
      const b = images.shape[0]!;
      const numTrain = this.noiseScheduler.config.num_train_timesteps;
      const t = Array.from(g.randint(0, numTrain, b));
      const noise = randn([...images.shape], { generator: g, device });
      const drop = g.uniform(b);
      const labels = Array.from(batch.labels, (c, i) => (drop[i]! < o.condDropout ? o.nullClass : c));
      const noisy = this.noiseScheduler.addNoise(images, noise, t);
      const target =
        this.noiseScheduler.config.prediction_type === "v_prediction"
          ? this.noiseScheduler.getVelocity(images, noise, t)
          : noise;
      this.optimizer.setLr(lr);
      this.optimizer.zeroGrad();
      const stepLoss = mse_loss(this.unet.call(noisy, t, labels), target);
      stepLoss.backward();
      const norm = clipGradNorm(this.unet.parameters(), o.gradClip);
      this.optimizer.step();
      this.optimizer.zeroGrad();
      this.ema.update();
      return { loss: detach(stepLoss), gradNorm: norm };
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
