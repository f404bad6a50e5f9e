// Training a class-conditional pixel-space diffusion model (DDPM, Ho et al. 2020) with classifier-free guidance
// dropout (Ho & Salimans 2022): per step, t ~ U{0..T-1}, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, and the UNet
// regresses eps (or v, Salimans & Ho 2022) with an MSE loss, its class label replaced by the null class with
// probability `condDropout`. AdamW, linear warm-up + cosine decay, gradient clipping and an EMA of the weights.
// All randomness comes from two explicit generators (noise and data order), both part of the saved state.
import type { UNet2DModel } from "../models/unet/unet-2d.js";
import { mse_loss, toDevice } from "../ops/index.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { randn } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";
import type { LabeledBatch, LabeledImages } from "./data/loader.js";
import {
  type BatchLoss,
  type OptimOptions,
  type ResolvedOptimOptions,
  resolveOptimOptions,
  TrainerBase,
} from "./trainer-base.js";

/** Hyperparameters of {@link DiffusionTrainer} (batch size default 64). */
export interface DiffusionTrainOptions extends OptimOptions {
  /** Probability of replacing a label by the null class (default 0.1). */
  condDropout?: number;
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
export type ResolvedTrainOptions = ResolvedOptimOptions &
  Required<Pick<DiffusionTrainOptions, "condDropout" | "nullClass">>;

/** Fills in the defaults of {@link DiffusionTrainOptions} and checks the values. */
export function resolveTrainOptions(opts: DiffusionTrainOptions, unet: UNet2DModel): ResolvedTrainOptions {
  const r: ResolvedTrainOptions = {
    ...resolveOptimOptions(opts, "trainer"),
    condDropout: opts.condDropout ?? 0.1,
    nullClass: opts.nullClass ?? unet.numClassEmbeds - 1,
  };
  const bad = (what: string, v: unknown): never => {
    throw new ArgumentError(`trainer: ${what}, got ${v}`);
  };
  if (!(r.condDropout >= 0 && r.condDropout <= 1)) bad("condDropout must be in [0, 1]", r.condDropout);
  if (r.condDropout > 0 && !(r.nullClass >= 0 && r.nullClass < unet.numClassEmbeds)) {
    bad(
      `the null class must be in [0, ${unet.numClassEmbeds}) (num_class_embeds = classes + 1)`,
      r.nullClass,
    );
  }
  return r;
}

/**
 * One training run's state: the UNet (trained in place), AdamW, the EMA, the noise generator and the data loader
 * (see TrainerBase). Call {@link trainStep} repeatedly; the state can be saved and restored with train/checkpoint.ts.
 */
export class DiffusionTrainer extends TrainerBase<UNet2DModel, ResolvedTrainOptions> {
  /** The training noise schedule and target (epsilon or v_prediction from its prediction_type). */
  readonly noiseScheduler: Scheduler;

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
    super(unet, data, o);
    this.noiseScheduler = noiseScheduler;
  }

  /** The UNet being trained. */
  get unet(): UNet2DModel {
    return this.model;
  }

  /** The UNet and scheduler configs stored with checkpoints. */
  checkpointConfigs(): Record<string, Record<string, unknown>> {
    return { unetConfig: { ...this.unet.config }, schedulerConfig: { ...this.noiseScheduler.config } };
  }

  protected batchLoss(batch: LabeledBatch): BatchLoss {
    const o = this.options;
    const g = this.generator;
    const images = toDevice(batch.images, this.unet.device);
    const b = images.shape[0]!;
    const numTrain = this.noiseScheduler.config.num_train_timesteps;
    const t = Array.from(g.randint(0, numTrain, b));
    const noise = randn([...images.shape], { generator: g, device: images.device });
    const drop = g.uniform(b);
    const labels = Array.from(batch.labels, (c, i) => (drop[i]! < o.condDropout ? o.nullClass : c));
    const noisy = this.noiseScheduler.addNoise(images, noise, t);
    const target =
      this.noiseScheduler.config.prediction_type === "v_prediction"
        ? this.noiseScheduler.getVelocity(images, noise, t)
        : noise;
    return { loss: mse_loss(this.unet.call(noisy, t, labels), target) };
  }

  /** One optimisation step on the next batch. */
  override trainStep(): TrainStepResult {
    return super.trainStep();
  }
}
