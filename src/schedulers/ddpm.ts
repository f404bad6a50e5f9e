// Ancestral sampling of DDPM (Ho et al. 2020): x_{t-1} ~ q(x_{t-1} | x_t, x0_hat), the Gaussian posterior of
// eq. 6-7, with x0_hat from the model. diffusers' DDPMScheduler.
import { add, exp, mul, sqrt } from "../ops/elementwise.js";
import { narrow } from "../ops/view.js";
import type { Tensor } from "../tensor/tensor.js";
import { checkOneOf, type SchedulerConfigInput, type SchedulerOptions } from "./config.js";
import { SchedulerError } from "./errors.js";
import { f32, roundHalfEven } from "./numerics.js";
import { denoisedFromOutputVP, type PredictionType } from "./predictions.js";
import { type CommonSchedulerConfig, Scheduler, type StepOptions, type StepResult } from "./scheduler.js";
import { limitPredictedX0 } from "./threshold.js";
import { spacedTimesteps, type TimestepSpacing } from "./timesteps.js";

/**
 * Mean of the posterior q(x_{t-1} | x_t, x0) (Ho et al. 2020, eq. 7) between alpha-bars `abar` (at t) and
 * `abarPrev`: (sqrt(abarPrev) beta_t x0 + sqrt(alpha_t) (1 - abarPrev) x_t) / (1 - abar), alpha_t = abar / abarPrev.
 */
export function ddpmPosteriorMean(x0: Tensor, xt: Tensor, abar: number, abarPrev: number): Tensor {
  const betaProd = f32(1 - abar);
  const currentAlpha = f32(abar / abarPrev);
  const currentBeta = f32(1 - currentAlpha);
  const x0Coeff = f32(f32(f32(Math.sqrt(abarPrev)) * currentBeta) / betaProd);
  const xtCoeff = f32(f32(f32(Math.sqrt(currentAlpha)) * f32(1 - abarPrev)) / betaProd);
  return add(mul(x0, x0Coeff), mul(xt, xtCoeff));
}

/** Variance of the posterior (eq. 7, "fixed_small"): (1 - abarPrev) / (1 - abar) * beta_t, at least 1e-20. */
export function ddpmPosteriorVariance(abar: number, abarPrev: number): number {
  const currentBeta = f32(1 - f32(abar / abarPrev));
  return Math.max(f32(f32(f32(1 - abarPrev) / f32(1 - abar)) * currentBeta), 1e-20);
}

/** DDPMScheduler config. */
export interface DDPMConfig extends CommonSchedulerConfig {
  variance_type: string;
  clip_sample: boolean;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  clip_sample_range: number;
  sample_max_value: number;
  rescale_betas_zero_snr: boolean;
}

const VARIANCE_TYPES = ["fixed_small", "fixed_small_log", "fixed_large", "learned", "learned_range"] as const;

/** diffusers' DDPMScheduler. */
export class DDPMScheduler extends Scheduler<DDPMConfig> {
  static override readonly className = "DDPMScheduler";
  static readonly defaults: DDPMConfig = {
    num_train_timesteps: 1000,
    beta_start: 0.0001,
    beta_end: 0.02,
    beta_schedule: "linear",
    trained_betas: null,
    variance_type: "fixed_small",
    clip_sample: true,
    prediction_type: "epsilon",
    thresholding: false,
    dynamic_thresholding_ratio: 0.995,
    clip_sample_range: 1.0,
    sample_max_value: 1.0,
    timestep_spacing: "leading",
    steps_offset: 0,
    rescale_betas_zero_snr: false,
  };

  constructor(config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(DDPMScheduler.defaults, config, options);
    checkOneOf(this.className, "variance_type", this.config.variance_type, VARIANCE_TYPES);
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

  /** The timestep after `t` in `timesteps` (-1 after the last), or t - 1 before setTimesteps. */
  previousTimestep(t: number): number {
    if (this.numInferenceSteps === null) return t - 1;
    const index = this.timesteps.indexOf(t);
    if (index < 0)
      throw new SchedulerError(`DDPMScheduler: timestep ${t} is not one of the scheduler's timesteps`);
    return index === this.timesteps.length - 1 ? -1 : this.timesteps[index + 1]!;
  }

  override step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    options: StepOptions = {},
  ): StepResult {
    const t = timestep;
    const varianceType = this.config.variance_type;
    let predictedVariance: Tensor | null = null;
    const channels = sample.shape[1] ?? 0;
    if (
      (varianceType === "learned" || varianceType === "learned_range") &&
      modelOutput.shape[1] === channels * 2
    ) {
      predictedVariance = narrow(modelOutput, 1, channels, channels);
      modelOutput = narrow(modelOutput, 1, 0, channels);
    }
    const prevT = this.previousTimestep(t);
    const abar = this.trainAlphaBar(t);
    const abarPrev = prevT >= 0 ? this.trainAlphaBar(prevT) : 1;
    let x0 = denoisedFromOutputVP(
      modelOutput,
      sample,
      f32(Math.sqrt(abar)),
      f32(Math.sqrt(f32(1 - abar))),
      this.config.prediction_type as PredictionType,
    );
    x0 = limitPredictedX0(x0, this.config);
    let prevSample = ddpmPosteriorMean(x0, sample, abar, abarPrev);
    if (t > 0) {
      const noise = this.drawNoise(modelOutput, options);
      prevSample = add(prevSample, mul(noise, this.noiseStd(abar, abarPrev, predictedVariance)));
    }
    return { prevSample, predOriginalSample: x0 };
  }

  /** Standard deviation of the added noise for the configured `variance_type`. */
  private noiseStd(abar: number, abarPrev: number, predicted: Tensor | null): number | Tensor {
    const variance = ddpmPosteriorVariance(abar, abarPrev);
    const currentBeta = f32(1 - f32(abar / abarPrev));
    switch (this.config.variance_type) {
      case "fixed_small":
        return f32(Math.sqrt(variance));
      case "fixed_small_log":
        return f32(Math.exp(f32(0.5 * f32(Math.log(variance)))));
      case "fixed_large":
        return f32(Math.sqrt(currentBeta));
      case "learned":
        if (!predicted)
          throw new SchedulerError("DDPMScheduler: variance_type learned needs 2x channels of output");
        return sqrt(predicted);
      default: {
        // learned_range: interpolate log-variance between the posterior variance and beta_t (Nichol & Dhariwal 2021)
        if (!predicted)
          throw new SchedulerError("DDPMScheduler: variance_type learned_range needs 2x channels");
        const frac = mul(add(predicted, 1), 0.5);
        const minLog = f32(Math.log(variance));
        const maxLog = f32(Math.log(currentBeta));
        const logVar = add(mul(frac, maxLog), mul(add(mul(frac, -1), 1), minLog));
        return exp(mul(logVar, 0.5));
      }
    }
  }
}
