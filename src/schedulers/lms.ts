// Linear multistep (Adams-Bashforth-type) sampling on the probability-flow ODE: the next sample integrates the
// Lagrange polynomial through the last `order` derivatives over [sigma_i, sigma_{i+1}] (k-diffusion's `sample_lms`,
// diffusers' LMSDiscreteScheduler).
import { add, mul } from "../ops/elementwise.js";
import { keep, release } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import type { SchedulerConfigInput, SchedulerOptions } from "./config.js";
import { DiscreteSigmaScheduler } from "./discrete-sigma-scheduler.js";
import { SchedulerError } from "./errors.js";
import { type Denoiser, reportStep, type SamplerOptions, toD } from "./kdiffusion.js";
import { f32 } from "./numerics.js";
import { denoisedFromOutputVE, type PredictionType } from "./predictions.js";
import type { CommonSchedulerConfig, StepOptions, StepResult } from "./scheduler.js";

/**
 * Weight of the derivative taken at sigmas[i - j] in the order-`order` step from sigmas[i] to sigmas[i + 1]:
 * the integral over that interval of the Lagrange basis polynomial of node i - j (nodes i, i-1, ..., i-order+1),
 * integrated exactly.
 */
export function lmsCoefficient(order: number, sigmas: readonly number[], i: number, j: number): number {
  // polynomial coefficients, lowest degree first
  let poly = [1];
  for (let k = 0; k < order; k++) {
    if (k === j) continue;
    const node = sigmas[i - k]!;
    const denom = sigmas[i - j]! - node;
    const next = new Array<number>(poly.length + 1).fill(0);
    poly.forEach((c, p) => {
      next[p + 1]! += c / denom;
      next[p]! -= (c * node) / denom;
    });
    poly = next;
  }
  const antiderivative = (x: number) => poly.reduce((acc, c, p) => acc + (c * x ** (p + 1)) / (p + 1), 0);
  return antiderivative(sigmas[i + 1]!) - antiderivative(sigmas[i]!);
}

/** x + sum_j coeff_j * d_{i-j}: the LMS update from the newest-first derivative history. */
export function lmsStep(
  x: Tensor,
  derivativesNewestFirst: readonly Tensor[],
  coefficients: readonly number[],
): Tensor {
  let sum = mul(derivativesNewestFirst[0]!, f32(coefficients[0]!));
  for (let j = 1; j < coefficients.length; j++)
    sum = add(sum, mul(derivativesNewestFirst[j]!, f32(coefficients[j]!)));
  return add(x, sum);
}

/** k-diffusion's `sample_lms`. */
export function sampleLms(
  denoiser: Denoiser,
  x: Tensor,
  sigmas: readonly number[],
  opts: SamplerOptions & { order?: number } = {},
): Tensor {
  const maxOrder = opts.order ?? 4;
  const ds: Tensor[] = [];
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = denoiser(x, sigmas[i]!);
    ds.unshift(toD(x, sigmas[i]!, denoised));
    if (ds.length > maxOrder) ds.pop();
    const order = Math.min(i + 1, maxOrder);
    const coeffs = Array.from({ length: order }, (_, j) => lmsCoefficient(order, sigmas, i, j));
    x = lmsStep(x, ds, coeffs);
    reportStep(opts, i, sigmas, x, denoised);
  }
  return x;
}

/** LMSDiscreteScheduler config. */
export interface LMSDiscreteConfig extends CommonSchedulerConfig {
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
}

/** Step options of LMS: the multistep order (diffusers' `order` argument of step, default 4). */
export interface LMSStepOptions extends StepOptions {
  order?: number;
}

/** diffusers' LMSDiscreteScheduler. */
export class LMSDiscreteScheduler extends DiscreteSigmaScheduler<LMSDiscreteConfig> {
  static override readonly className = "LMSDiscreteScheduler";
  static readonly defaults: LMSDiscreteConfig = {
    num_train_timesteps: 1000,
    beta_start: 0.0001,
    beta_end: 0.02,
    beta_schedule: "linear",
    trained_betas: null,
    use_karras_sigmas: false,
    use_exponential_sigmas: false,
    use_beta_sigmas: false,
    prediction_type: "epsilon",
    timestep_spacing: "linspace",
    steps_offset: 0,
  };

  private derivatives: Tensor[] = [];

  constructor(config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(LMSDiscreteScheduler.defaults, config, options);
  }

  protected override resetState(): void {
    for (const t of this.derivatives) release(t);
    this.derivatives = [];
  }

  override step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    options: LMSStepOptions = {},
  ): StepResult {
    this.requireTimesteps();
    const maxOrder = options.order ?? 4;
    if (!Number.isInteger(maxOrder) || maxOrder < 1) {
      throw new SchedulerError(`LMSDiscreteScheduler: order must be a positive integer, got ${maxOrder}`);
    }
    const i = this.initStepIndex(timestep);
    const sigma = this.sigmas[i]!;
    const x0 = denoisedFromOutputVE(
      modelOutput,
      sample,
      sigma,
      this.config.prediction_type as PredictionType,
    );
    // the history outlives the memory scope of the step that made it
    this.derivatives.unshift(keep(toD(sample, sigma, x0)));
    if (this.derivatives.length > maxOrder) release(this.derivatives.pop());
    const order = Math.min(i + 1, maxOrder);
    const coeffs = Array.from({ length: order }, (_, j) => lmsCoefficient(order, this.sigmas, i, j));
    const prevSample = lmsStep(sample, this.derivatives, coeffs);
    this.stepIndexValue = i + 1;
    return { prevSample, predOriginalSample: x0 };
  }
}
