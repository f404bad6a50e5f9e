// Heun's second-order method on the probability-flow ODE (Karras et al. 2022, Algorithm 1): an Euler predictor,
// then the average of the derivatives at both ends (k-diffusion's `sample_heun`, diffusers' HeunDiscreteScheduler,
// which spreads the two model calls over two `step()` calls).
import { add, div } from "../ops/elementwise.js";
import { clone } from "../ops/view.js";
import { keep, release } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import type { SchedulerConfigInput, SchedulerOptions } from "./config.js";
import { DiscreteSigmaScheduler } from "./discrete-sigma-scheduler.js";
import { type Denoiser, eulerMove, reportStep, type SamplerOptions, toD } from "./kdiffusion.js";
import { f32 } from "./numerics.js";
import { denoisedFromOutputVE, type PredictionType } from "./predictions.js";
import type { CommonSchedulerConfig, StepOptions, StepResult } from "./scheduler.js";
import { clipSample } from "./threshold.js";

/** Heun's correction: the mean of the derivative at the start and at the Euler-predicted end. */
export function heunDerivative(d: Tensor, dNext: Tensor): Tensor {
  return div(add(d, dNext), 2);
}

/** k-diffusion's `sample_heun` (the last step, to sigma = 0, is a plain Euler step). */
export function sampleHeun(
  denoiser: Denoiser,
  x: Tensor,
  sigmas: readonly number[],
  opts: SamplerOptions = {},
): Tensor {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const sigma = sigmas[i]!;
    const sigmaNext = sigmas[i + 1]!;
    const denoised = denoiser(x, sigma);
    const d = toD(x, sigma, denoised);
    const dt = f32(sigmaNext - sigma);
    if (sigmaNext === 0) {
      x = eulerMove(x, d, dt);
    } else {
      const x2 = eulerMove(x, d, dt);
      const d2 = toD(x2, sigmaNext, denoiser(x2, sigmaNext));
      x = eulerMove(x, heunDerivative(d, d2), dt);
    }
    reportStep(opts, i, sigmas, x, denoised);
  }
  return x;
}

/** HeunDiscreteScheduler config. */
export interface HeunDiscreteConfig extends CommonSchedulerConfig {
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  clip_sample: boolean;
  clip_sample_range: number;
}

/**
 * diffusers' HeunDiscreteScheduler. Every inner timestep appears twice in `timesteps`: the first `step()` at it is
 * the Euler predictor, the second the Heun corrector.
 */
export class HeunDiscreteScheduler extends DiscreteSigmaScheduler<HeunDiscreteConfig> {
  static override readonly className = "HeunDiscreteScheduler";
  static readonly defaults: HeunDiscreteConfig = {
    num_train_timesteps: 1000,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: "linear",
    trained_betas: null,
    prediction_type: "epsilon",
    use_karras_sigmas: false,
    use_exponential_sigmas: false,
    use_beta_sigmas: false,
    clip_sample: false,
    clip_sample_range: 1.0,
    timestep_spacing: "linspace",
    steps_offset: 0,
  };
  override readonly order = 2;

  private prevDerivative: Tensor | null = null;
  private dt: number | null = null;
  private savedSample: Tensor | null = null;

  constructor(config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(HeunDiscreteScheduler.defaults, config, options);
  }

  /** Sigmas s0, s1, s1, s2, s2, ..., 0 and timesteps t0, t1, t1, ...: each inner level is visited twice. */
  override setTimesteps(numInferenceSteps: number): void {
    super.setTimesteps(numInferenceSteps);
    const s = this.sigmas;
    const t = this.timesteps;
    this.sigmas = [s[0]!, ...s.slice(1, -1).flatMap((v) => [v, v]), s[s.length - 1]!];
    this.timesteps = [t[0]!, ...t.slice(1).flatMap((v) => [v, v])];
  }

  protected override resetState(): void {
    release(this.prevDerivative);
    release(this.savedSample);
    this.prevDerivative = null;
    this.dt = null;
    this.savedSample = null;
  }

  /** True when the next `step()` is an Euler predictor (false: the corrector of the previous one). */
  get stateInFirstOrder(): boolean {
    return this.dt === null;
  }

  override step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    _options: StepOptions = {},
  ): StepResult {
    this.requireTimesteps();
    const i = this.initStepIndex(timestep);
    const first = this.stateInFirstOrder;
    const sigma = first ? this.sigmas[i]! : this.sigmas[i - 1]!;
    const sigmaNext = first ? this.sigmas[i + 1]! : this.sigmas[i]!;
    const predictionType = this.config.prediction_type as PredictionType;
    let x0 = denoisedFromOutputVE(modelOutput, sample, first ? sigma : sigmaNext, predictionType);
    if (this.config.clip_sample) x0 = clipSample(x0, this.config.clip_sample_range);
    let prevSample: Tensor;
    if (first) {
      const d = toD(sample, sigma, x0);
      this.dt = f32(sigmaNext - sigma);
      // state kept for the second half of the step outlives this call's memory scope
      this.prevDerivative = keep(d);
      // a copy: the caller may free its sample once this step is done
      this.savedSample = keep(clone(sample));
      prevSample = eulerMove(sample, d, this.dt);
    } else {
      const d = heunDerivative(this.prevDerivative!, toD(sample, sigmaNext, x0));
      prevSample = eulerMove(this.savedSample!, d, this.dt!);
      this.resetState();
    }
    this.stepIndexValue = i + 1;
    return { prevSample, predOriginalSample: x0 };
  }
}
