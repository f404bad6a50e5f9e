// Ancestral Euler sampling: a deterministic Euler move to sigmaDown, then fresh noise of scale sigmaUp (k-diffusion's
// `sample_euler_ancestral`, diffusers' EulerAncestralDiscreteScheduler).
import { add, mul } from "../ops/elementwise.js";
import type { Tensor } from "../tensor/tensor.js";
import type { SchedulerConfigInput, SchedulerOptions } from "./config.js";
import { DiscreteSigmaScheduler } from "./discrete-sigma-scheduler.js";
import { eulerStep } from "./euler.js";
import { type Denoiser, getAncestralStep, reportStep, type SamplerOptions, stepNoise } from "./kdiffusion.js";
import { f32 } from "./numerics.js";
import { denoisedFromOutputVE, type PredictionType } from "./predictions.js";
import type { CommonSchedulerConfig, StepOptions, StepResult } from "./scheduler.js";

/**
 * One ancestral step from sigma to sigmaNext: Euler to sigmaDown, plus sigmaUp * noise (noise may be null when
 * sigmaUp is 0).
 */
export function eulerAncestralStep(
  x: Tensor,
  denoised: Tensor,
  sigma: number,
  sigmaNext: number,
  noise: Tensor | null,
  eta = 1,
): Tensor {
  const { sigmaDown, sigmaUp } = getAncestralStep(sigma, sigmaNext, eta);
  const moved = eulerStep(x, denoised, sigma, sigmaDown);
  return noise ? add(moved, mul(noise, f32(sigmaUp))) : moved;
}

/** k-diffusion's `sample_euler_ancestral` (no noise is drawn for the final step to sigma = 0). */
export function sampleEulerAncestral(
  denoiser: Denoiser,
  x: Tensor,
  sigmas: readonly number[],
  opts: SamplerOptions & { eta?: number } = {},
): Tensor {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = denoiser(x, sigmas[i]!);
    const noise = sigmas[i + 1]! > 0 ? stepNoise(opts, i, x) : null;
    x = eulerAncestralStep(x, denoised, sigmas[i]!, sigmas[i + 1]!, noise, opts.eta ?? 1);
    reportStep(opts, i, sigmas, x, denoised);
  }
  return x;
}

/** EulerAncestralDiscreteScheduler config. */
export interface EulerAncestralDiscreteConfig extends CommonSchedulerConfig {
  rescale_betas_zero_snr: boolean;
}

/** diffusers' EulerAncestralDiscreteScheduler (draws noise at every step, as diffusers does). */
export class EulerAncestralDiscreteScheduler extends DiscreteSigmaScheduler<EulerAncestralDiscreteConfig> {
  static override readonly className = "EulerAncestralDiscreteScheduler";
  static override readonly predictionTypes: readonly PredictionType[] = ["epsilon", "v_prediction"];
  static readonly defaults: EulerAncestralDiscreteConfig = {
    num_train_timesteps: 1000,
    beta_start: 0.0001,
    beta_end: 0.02,
    beta_schedule: "linear",
    trained_betas: null,
    prediction_type: "epsilon",
    timestep_spacing: "linspace",
    steps_offset: 0,
    rescale_betas_zero_snr: false,
  };

  constructor(config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(EulerAncestralDiscreteScheduler.defaults, config, options);
  }

  override step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    options: StepOptions = {},
  ): StepResult {
    this.requireTimesteps();
    const i = this.initStepIndex(timestep);
    const sigma = this.sigmas[i]!;
    const x0 = denoisedFromOutputVE(
      modelOutput,
      sample,
      sigma,
      this.config.prediction_type as PredictionType,
    );
    const noise = this.drawNoise(sample, options);
    const prevSample = eulerAncestralStep(sample, x0, sigma, this.sigmas[i + 1]!, noise);
    this.stepIndexValue = i + 1;
    return { prevSample, predOriginalSample: x0 };
  }
}
