// Latent consistency models (Luo et al. 2023, Algorithm 1): each step maps x_t to a clean estimate with the
// consistency parameterisation c_skip * x + c_out * x0_hat, then re-noises it to the next timestep.
// diffusers' LCMScheduler.
import { add, mul } from "../ops/elementwise.js";
import type { Tensor } from "../tensor/tensor.js";
import { checkInteger, type SchedulerConfigInput, type SchedulerOptions } from "./config.js";
import { SchedulerError } from "./errors.js";
import { f32 } from "./numerics.js";
import { denoisedFromOutputVP, type PredictionType } from "./predictions.js";
import { type CommonSchedulerConfig, Scheduler, type StepOptions, type StepResult } from "./scheduler.js";
import { limitPredictedX0 } from "./threshold.js";

/** Boundary-condition scalings of consistency models (sigma_data = 0.5) at timestep t * timestepScaling. */
export function lcmBoundaryScalings(t: number, timestepScaling: number): { cSkip: number; cOut: number } {
  const sigmaData = 0.5;
  const scaled = t * timestepScaling;
  const cSkip = f32(sigmaData ** 2 / (scaled ** 2 + sigmaData ** 2));
  const cOut = f32(scaled / f32(Math.sqrt(f32(scaled ** 2 + sigmaData ** 2))));
  return { cSkip, cOut };
}

/** Re-noises a clean estimate to alpha-bar `abarPrev`: sqrt(abarPrev) x0 + sqrt(1 - abarPrev) noise. */
export function renoise(x0: Tensor, abarPrev: number, noise: Tensor): Tensor {
  return add(mul(x0, f32(Math.sqrt(abarPrev))), mul(noise, f32(Math.sqrt(f32(1 - abarPrev)))));
}

/** LCMScheduler config. */
export interface LCMConfig extends CommonSchedulerConfig {
  original_inference_steps: number;
  clip_sample: boolean;
  clip_sample_range: number;
  set_alpha_to_one: boolean;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  timestep_scaling: number;
  rescale_betas_zero_snr: boolean;
}

/** diffusers' LCMScheduler (timestep_spacing is ignored: timesteps come from the distillation schedule). */
export class LCMScheduler extends Scheduler<LCMConfig> {
  static override readonly className = "LCMScheduler";
  static readonly defaults: LCMConfig = {
    num_train_timesteps: 1000,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: "scaled_linear",
    trained_betas: null,
    original_inference_steps: 50,
    clip_sample: false,
    clip_sample_range: 1.0,
    set_alpha_to_one: true,
    steps_offset: 0,
    prediction_type: "epsilon",
    thresholding: false,
    dynamic_thresholding_ratio: 0.995,
    sample_max_value: 1.0,
    timestep_spacing: "leading",
    timestep_scaling: 10.0,
    rescale_betas_zero_snr: false,
  };

  /** alpha-bar after the last step: 1 with `set_alpha_to_one`, else alpha-bar_0. */
  readonly finalAlphaCumprod: number;

  constructor(config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(LCMScheduler.defaults, config, options);
    checkInteger(this.className, "original_inference_steps", this.config.original_inference_steps, 1);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;
    const n = this.config.num_train_timesteps;
    this.timesteps = Array.from({ length: n }, (_, i) => n - 1 - i);
  }

  /**
   * `n` timesteps picked evenly from the distillation schedule k - 1, 2k - 1, ..., with
   * k = num_train_timesteps // original_inference_steps (the original steps scaled by `strength`).
   */
  setTimesteps(
    numInferenceSteps: number,
    options: { originalInferenceSteps?: number; strength?: number } = {},
  ): void {
    this.checkNumInferenceSteps(numInferenceSteps);
    const T = this.config.num_train_timesteps;
    const original = options.originalInferenceSteps ?? this.config.original_inference_steps;
    const strength = options.strength ?? 1;
    if (original > T) {
      throw new SchedulerError(
        `LCMScheduler: original_inference_steps (${original}) cannot exceed num_train_timesteps (${T})`,
      );
    }
    const k = Math.floor(T / original);
    const count = Math.floor(original * strength);
    const origin = Array.from({ length: count }, (_, i) => (i + 1) * k - 1).reverse();
    if (Math.floor(origin.length / numInferenceSteps) < 1) {
      throw new SchedulerError(
        `LCMScheduler: original_inference_steps x strength (${original} x ${strength}) is smaller than ` +
          `num_inference_steps (${numInferenceSteps})`,
      );
    }
    if (numInferenceSteps > original) {
      throw new SchedulerError(
        `LCMScheduler: num_inference_steps (${numInferenceSteps}) cannot exceed original_inference_steps (${original})`,
      );
    }
    this.timesteps = Array.from(
      { length: numInferenceSteps },
      (_, i) => origin[Math.floor(i * (origin.length / numInferenceSteps))]!,
    );
    this.numInferenceSteps = numInferenceSteps;
    this.stepIndexValue = null;
    this.beginIndexValue = null;
  }

  /** One LCM step: `denoised` is the consistency output; `prevSample` re-noises it (except at the last step). */
  override step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    options: StepOptions = {},
  ): StepResult {
    this.requireTimesteps();
    const i = this.initStepIndex(timestep);
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1]! : timestep;
    const abar = this.trainAlphaBar(timestep);
    const abarPrev = prevT >= 0 ? this.trainAlphaBar(prevT) : this.finalAlphaCumprod;
    const { cSkip, cOut } = lcmBoundaryScalings(timestep, this.config.timestep_scaling);
    let x0 = denoisedFromOutputVP(
      modelOutput,
      sample,
      f32(Math.sqrt(abar)),
      f32(Math.sqrt(f32(1 - abar))),
      this.config.prediction_type as PredictionType,
    );
    x0 = limitPredictedX0(x0, this.config);
    const denoised = add(mul(x0, cOut), mul(sample, cSkip));
    const prevSample =
      i !== this.numInferenceSteps! - 1
        ? renoise(denoised, abarPrev, this.drawNoise(modelOutput, options))
        : denoised;
    this.stepIndexValue = i + 1;
    return { prevSample, predOriginalSample: x0, denoised };
  }
}
