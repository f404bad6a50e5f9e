// DDIM (Song et al. 2021, eq. 12): x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - s^2) eps + s z, with
// s = eta * sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)); eta = 0 is deterministic, eta = 1 matches
// DDPM's variance. diffusers' DDIMScheduler.
import { add, div, mul, sub } from "../ops/elementwise.js";
import type { Tensor } from "../tensor/tensor.js";
import type { SchedulerConfigInput, SchedulerOptions } from "./config.js";
import { SchedulerError } from "./errors.js";
import { f32, roundHalfEven } from "./numerics.js";
import { denoisedFromOutputVP, epsilonFromOutputVP, type PredictionType } from "./predictions.js";
import { type CommonSchedulerConfig, Scheduler, type StepOptions, type StepResult } from "./scheduler.js";
import { limitPredictedX0 } from "./threshold.js";
import { spacedTimesteps, type TimestepSpacing } from "./timesteps.js";

/** sigma_t^2 / eta^2 of DDIM: (1 - abarPrev) / (1 - abar) * (1 - abar / abarPrev). */
export function ddimVariance(abar: number, abarPrev: number): number {
  return f32(f32(f32(1 - abarPrev) / f32(1 - abar)) * f32(1 - f32(abar / abarPrev)));
}

/**
 * The DDIM update (Song et al. 2021, eq. 12) from the predicted x0 and eps to alpha-bar `abarPrev`, with noise of
 * standard deviation `std` (noise may be null when std is 0).
 */
export function ddimStep(
  x0: Tensor,
  eps: Tensor,
  abarPrev: number,
  std: number,
  noise: Tensor | null,
): Tensor {
  const direction = mul(eps, f32(Math.sqrt(f32(f32(1 - abarPrev) - f32(std * std)))));
  const out = add(mul(x0, f32(Math.sqrt(abarPrev))), direction);
  return noise ? add(out, mul(noise, std)) : out;
}

/** DDIMScheduler config. */
export interface DDIMConfig extends CommonSchedulerConfig {
  clip_sample: boolean;
  set_alpha_to_one: boolean;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  clip_sample_range: number;
  sample_max_value: number;
  rescale_betas_zero_snr: boolean;
}

/** Step options of DDIM. */
export interface DDIMStepOptions extends StepOptions {
  /** Weight of the fresh noise: 0 = deterministic DDIM (default), 1 = DDPM-like. */
  eta?: number;
  /** Recompute eps from the clipped/thresholded x0 (diffusers' `use_clipped_model_output`). */
  useClippedModelOutput?: boolean;
}

/** diffusers' DDIMScheduler. */
export class DDIMScheduler extends Scheduler<DDIMConfig> {
  static override readonly className = "DDIMScheduler";
  static readonly defaults: DDIMConfig = {
    num_train_timesteps: 1000,
    beta_start: 0.0001,
    beta_end: 0.02,
    beta_schedule: "linear",
    trained_betas: null,
    clip_sample: true,
    set_alpha_to_one: true,
    steps_offset: 0,
    prediction_type: "epsilon",
    thresholding: false,
    dynamic_thresholding_ratio: 0.995,
    clip_sample_range: 1.0,
    sample_max_value: 1.0,
    timestep_spacing: "leading",
    rescale_betas_zero_snr: false,
  };

  /** alpha-bar after the last step: 1 with `set_alpha_to_one`, else alpha-bar_0. */
  readonly finalAlphaCumprod: number;

  constructor(config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(DDIMScheduler.defaults, config, options);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;
    const n = this.config.num_train_timesteps;
    this.timesteps = Array.from({ length: n }, (_, i) => n - 1 - i);
  }

  setTimesteps(numInferenceSteps: number): void {
    this.checkNumInferenceSteps(numInferenceSteps);
    const { timestep_spacing, num_train_timesteps, steps_offset } = this.config;
    this.timesteps = spacedTimesteps(
      timestep_spacing as TimestepSpacing,
      num_train_timesteps,
      numInferenceSteps,
      steps_offset,
    ).map(roundHalfEven);
    this.numInferenceSteps = numInferenceSteps;
  }

  /** alpha-bar the step from `t` lands on: at t - num_train_timesteps // N, whatever the spacing (as diffusers). */
  private alphaBarPrev(t: number): number {
    const prevT = t - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps!);
    return prevT >= 0 ? this.trainAlphaBar(prevT) : this.finalAlphaCumprod;
  }

  override step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    options: DDIMStepOptions = {},
  ): StepResult {
    this.requireTimesteps();
    const eta = options.eta ?? 0;
    if (!(eta >= 0)) throw new SchedulerError(`DDIMScheduler: eta must be >= 0, got ${eta}`);
    const abar = this.trainAlphaBar(timestep);
    const abarPrev = this.alphaBarPrev(timestep);
    const sqrtAbar = f32(Math.sqrt(abar));
    const sqrtBeta = f32(Math.sqrt(f32(1 - abar)));
    const predictionType = this.config.prediction_type as PredictionType;
    let x0 = denoisedFromOutputVP(modelOutput, sample, sqrtAbar, sqrtBeta, predictionType);
    let eps = epsilonFromOutputVP(modelOutput, sample, sqrtAbar, sqrtBeta, predictionType);
    x0 = limitPredictedX0(x0, this.config);
    const std = f32(eta * f32(Math.sqrt(ddimVariance(abar, abarPrev))));
    if (options.useClippedModelOutput) eps = div(sub(sample, mul(x0, sqrtAbar)), sqrtBeta);
    const noise = eta > 0 ? this.drawNoise(modelOutput, options) : null;
    return { prevSample: ddimStep(x0, eps, abarPrev, std, noise), predOriginalSample: x0 };
  }
}
