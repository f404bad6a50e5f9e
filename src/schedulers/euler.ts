// Euler's method on the probability-flow ODE (Karras et al. 2022, Algorithm 2 with optional churn), as
// k-diffusion's `sample_euler` and diffusers' EulerDiscreteScheduler.
import { add, mul } from "../ops/elementwise.js";
import type { Tensor } from "../tensor/tensor.js";
import { checkOneOf, type SchedulerConfigInput, type SchedulerOptions } from "./config.js";
import { DiscreteSigmaScheduler } from "./discrete-sigma-scheduler.js";
import { type Denoiser, eulerMove, reportStep, type SamplerOptions, stepNoise, toD } from "./kdiffusion.js";
import { f32 } from "./numerics.js";
import { denoisedFromOutputVE, type PredictionType } from "./predictions.js";
import type { CommonSchedulerConfig, StepOptions, StepResult } from "./scheduler.js";

/** "Churn" of Karras et al. 2022 (Algorithm 2): temporarily raise the noise level before a step. */
export interface ChurnOptions {
  /** Amount of churn (0 = none). */
  sChurn?: number;
  /** Churn only for sigma in [sTmin, sTmax]. */
  sTmin?: number;
  sTmax?: number;
  /** Scale of the added noise. */
  sNoise?: number;
}

/** The raised noise level sigma_hat = sigma * (1 + gamma) of a churned step (gamma = 0 without churn). */
export function churnGamma(sigma: number, numSteps: number, opts: ChurnOptions): number {
  const { sChurn = 0, sTmin = 0, sTmax = Number.POSITIVE_INFINITY } = opts;
  return sTmin <= sigma && sigma <= sTmax ? Math.min(sChurn / numSteps, 2 ** 0.5 - 1) : 0;
}

/** Adds noise of std sqrt(sigmaHat^2 - sigma^2) so that x sits at noise level sigmaHat. */
export function churn(x: Tensor, sigma: number, sigmaHat: number, noise: Tensor, sNoise = 1): Tensor {
  return add(x, mul(mul(noise, sNoise), f32(Math.sqrt(sigmaHat ** 2 - sigma ** 2))));
}

/** One Euler step from sigma to sigmaNext: x + (x - denoised) / sigma * (sigmaNext - sigma). */
export function eulerStep(x: Tensor, denoised: Tensor, sigma: number, sigmaNext: number): Tensor {
  return eulerMove(x, toD(x, sigma, denoised), f32(sigmaNext - sigma));
}

/** k-diffusion's `sample_euler`: Euler steps over `sigmas` (ending in 0), with optional churn. */
export function sampleEuler(
  denoiser: Denoiser,
  x: Tensor,
  sigmas: readonly number[],
  opts: SamplerOptions & ChurnOptions = {},
): Tensor {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const sigma = sigmas[i]!;
    const gamma = churnGamma(sigma, sigmas.length - 1, opts);
    const sigmaHat = sigma * (gamma + 1);
    if (gamma > 0) x = churn(x, sigma, sigmaHat, stepNoise(opts, i, x), opts.sNoise);
    const denoised = denoiser(x, sigmaHat);
    x = eulerStep(x, denoised, sigmaHat, sigmas[i + 1]!);
    reportStep(opts, i, sigmas, x, denoised);
  }
  return x;
}

/** EulerDiscreteScheduler config (diffusers' keys and defaults). */
export interface EulerDiscreteConfig extends CommonSchedulerConfig {
  interpolation_type: string;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  sigma_min: number | null;
  sigma_max: number | null;
  timestep_type: string;
  rescale_betas_zero_snr: boolean;
  final_sigmas_type: string;
}

/** diffusers' EulerDiscreteScheduler: Euler steps on the VE sample, model input scaled by 1/sqrt(sigma^2+1). */
export class EulerDiscreteScheduler extends DiscreteSigmaScheduler<EulerDiscreteConfig> {
  static override readonly className = "EulerDiscreteScheduler";
  static readonly defaults: EulerDiscreteConfig = {
    num_train_timesteps: 1000,
    beta_start: 0.0001,
    beta_end: 0.02,
    beta_schedule: "linear",
    trained_betas: null,
    prediction_type: "epsilon",
    interpolation_type: "linear",
    use_karras_sigmas: false,
    use_exponential_sigmas: false,
    use_beta_sigmas: false,
    sigma_min: null,
    sigma_max: null,
    timestep_spacing: "linspace",
    timestep_type: "discrete",
    steps_offset: 0,
    rescale_betas_zero_snr: false,
    final_sigmas_type: "zero",
  };

  constructor(config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(EulerDiscreteScheduler.defaults, config, options);
    checkOneOf(this.className, "timestep_type", this.config.timestep_type, ["discrete", "continuous"]);
  }

  /** With timestep_type "continuous" and v-prediction the model gets t = 0.25 * ln(sigma) (EDM's c_noise). */
  override setTimesteps(numInferenceSteps: number): void {
    super.setTimesteps(numInferenceSteps);
    if (this.config.timestep_type === "continuous" && this.config.prediction_type === "v_prediction") {
      this.timesteps = this.sigmas.slice(0, -1).map((s) => f32(0.25 * f32(Math.log(s))));
    }
  }

  /** One Euler step (`noise`/`generator` are used only with churn, `sChurn` > 0). */
  override step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    options: StepOptions & ChurnOptions = {},
  ): StepResult {
    this.requireTimesteps();
    const i = this.initStepIndex(timestep);
    const sigma = this.sigmas[i]!;
    const gamma = churnGamma(sigma, this.sigmas.length - 1, options);
    const sigmaHat = f32(sigma * (gamma + 1));
    let x = sample;
    if (gamma > 0) x = churn(x, sigma, sigmaHat, this.drawNoise(sample, options), options.sNoise);
    const predictionType = this.config.prediction_type as PredictionType;
    // diffusers uses sigma_hat for epsilon but sigma for v (identical without churn)
    const x0 = denoisedFromOutputVE(
      modelOutput,
      x,
      predictionType === "epsilon" ? sigmaHat : sigma,
      predictionType,
    );
    const prevSample = eulerStep(x, x0, sigmaHat, this.sigmas[i + 1]!);
    this.stepIndexValue = i + 1;
    return { prevSample, predOriginalSample: x0 };
  }
}
