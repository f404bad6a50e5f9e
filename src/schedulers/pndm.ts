// Pseudo numerical methods (PNDM, Liu et al. 2022): a linear multistep method on eps with the DDIM-style transfer
// of eq. 9; optionally warmed up with Runge-Kutta (PRK) steps, or (skip_prk_steps, Stable Diffusion's PLMS) with a
// second-order start. diffusers' PNDMScheduler.
import { add, div, mul, sub } from "../ops/elementwise.js";
import { clone } from "../ops/view.js";
import { keep, release } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import type { SchedulerConfigInput, SchedulerOptions } from "./config.js";
import { SchedulerError } from "./errors.js";
import { f32, roundHalfEven } from "./numerics.js";
import { epsilonFromOutputVP, type PredictionType } from "./predictions.js";
import { type CommonSchedulerConfig, Scheduler, type StepOptions, type StepResult } from "./scheduler.js";
import { spacedTimesteps, type TimestepSpacing } from "./timesteps.js";

/**
 * The transfer phi(x_t, eps, t -> t_prev) of PNDM (eq. 9), the DDIM update written with alpha-bars:
 * sqrt(abarPrev / abar) x - (abarPrev - abar) eps / (abar sqrt(1 - abarPrev) + sqrt(abar (1 - abar) abarPrev)).
 */
export function pndmTransfer(x: Tensor, eps: Tensor, abar: number, abarPrev: number): Tensor {
  const sampleCoeff = f32(Math.sqrt(f32(abarPrev / abar)));
  const denom = f32(
    f32(abar * f32(Math.sqrt(f32(1 - abarPrev)))) + f32(Math.sqrt(f32(f32(abar * f32(1 - abar)) * abarPrev))),
  );
  return sub(mul(x, sampleCoeff), div(mul(eps, f32(abarPrev - abar)), denom));
}

/**
 * Adams-Bashforth combination of the eps history (newest last) used by PLMS: 1, 2, 3 or 4 terms
 * (weights (3, -1)/2, (23, -16, 5)/12, (55, -59, 37, -9)/24).
 */
export function plmsCombine(ets: readonly Tensor[]): Tensor {
  const e = (k: number) => ets[ets.length - k]!;
  switch (ets.length) {
    case 1:
      return e(1);
    case 2:
      return div(sub(mul(e(1), 3), e(2)), 2);
    case 3:
      return div(add(sub(mul(e(1), 23), mul(e(2), 16)), mul(e(3), 5)), 12);
    default:
      return mul(sub(add(sub(mul(e(1), 55), mul(e(2), 59)), mul(e(3), 37)), mul(e(4), 9)), f32(1 / 24));
  }
}

/** PNDMScheduler config. */
export interface PNDMConfig extends CommonSchedulerConfig {
  skip_prk_steps: boolean;
  set_alpha_to_one: boolean;
}

/** diffusers' PNDMScheduler (epsilon or v prediction). */
export class PNDMScheduler extends Scheduler<PNDMConfig> {
  static override readonly className = "PNDMScheduler";
  static override readonly predictionTypes: readonly PredictionType[] = ["epsilon", "v_prediction"];
  static readonly defaults: PNDMConfig = {
    num_train_timesteps: 1000,
    beta_start: 0.0001,
    beta_end: 0.02,
    beta_schedule: "linear",
    trained_betas: null,
    skip_prk_steps: false,
    set_alpha_to_one: false,
    prediction_type: "epsilon",
    timestep_spacing: "leading",
    steps_offset: 0,
  };
  /** Number of Runge-Kutta warm-up steps (each takes 4 model calls). */
  static readonly pndmOrder = 4;

  /** alpha-bar after the last step: 1 with `set_alpha_to_one`, else alpha-bar_0. */
  readonly finalAlphaCumprod: number;
  /** The Runge-Kutta part of `timesteps` (empty with skip_prk_steps). */
  prkTimesteps: number[] = [];
  /** The linear-multistep part of `timesteps`. */
  plmsTimesteps: number[] = [];

  private ets: Tensor[] = [];
  private counter = 0;
  private curModelOutput: Tensor | null = null;
  private curSample: Tensor | null = null;

  constructor(config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(PNDMScheduler.defaults, config, options);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;
  }

  setTimesteps(numInferenceSteps: number): void {
    this.checkNumInferenceSteps(numInferenceSteps);
    const { timestep_spacing, num_train_timesteps, steps_offset, skip_prk_steps } = this.config;
    const ascending = spacedTimesteps(
      timestep_spacing as TimestepSpacing,
      num_train_timesteps,
      numInferenceSteps,
      steps_offset,
    )
      .map(roundHalfEven)
      .reverse();
    const n = ascending.length;
    if (skip_prk_steps) {
      // PLMS: the second-to-last training-order timestep is repeated (a second-order start)
      this.prkTimesteps = [];
      this.plmsTimesteps = [...ascending.slice(0, -1), ascending[n - 2]!, ascending[n - 1]!]
        .filter((t) => t !== undefined)
        .reverse();
    } else {
      const order = PNDMScheduler.pndmOrder;
      if (n < order) {
        throw new SchedulerError(
          `PNDMScheduler: with skip_prk_steps=false num_inference_steps must be >= ${order} (the Runge-Kutta ` +
            `warm-up uses ${order} steps), got ${numInferenceSteps}`,
        );
      }
      const half = Math.floor(Math.floor(num_train_timesteps / numInferenceSteps) / 2);
      const prk = ascending.slice(-order).flatMap((t) => [t, t + half]);
      const repeated = prk.slice(0, -1).flatMap((t) => [t, t]);
      this.prkTimesteps = repeated.slice(1, -1).reverse();
      this.plmsTimesteps = ascending.slice(0, -3).reverse();
    }
    this.timesteps = [...this.prkTimesteps, ...this.plmsTimesteps];
    this.numInferenceSteps = numInferenceSteps;
    for (const t of this.ets) release(t);
    release(this.curModelOutput);
    release(this.curSample);
    this.ets = [];
    this.counter = 0;
    this.curModelOutput = null;
    this.curSample = null;
  }

  override step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    _options: StepOptions = {},
  ): StepResult {
    this.requireTimesteps();
    if (this.counter < this.prkTimesteps.length && !this.config.skip_prk_steps) {
      return this.stepPrk(modelOutput, timestep, sample);
    }
    return this.stepPlms(modelOutput, timestep, sample);
  }

  /** The eps the transfer uses at training timestep `t` (v-prediction converted). */
  private epsilon(modelOutput: Tensor, sample: Tensor, t: number): Tensor {
    const abar = this.trainAlphaBar(t);
    const predictionType = this.config.prediction_type as PredictionType;
    return epsilonFromOutputVP(
      modelOutput,
      sample,
      f32(Math.sqrt(abar)),
      f32(Math.sqrt(f32(1 - abar))),
      predictionType,
    );
  }

  private prevSample(sample: Tensor, t: number, prevT: number, modelOutput: Tensor): Tensor {
    const abar = this.trainAlphaBar(t);
    const abarPrev = prevT >= 0 ? this.trainAlphaBar(prevT) : this.finalAlphaCumprod;
    return pndmTransfer(sample, this.epsilon(modelOutput, sample, t), abar, abarPrev);
  }

  /** Fourth-order Runge-Kutta warm-up (4 calls per step; weights 1/6, 1/3, 1/3, 1/6). */
  private stepPrk(modelOutput: Tensor, timestep: number, sample: Tensor): StepResult {
    const half = Math.floor(Math.floor(this.config.num_train_timesteps / this.numInferenceSteps!) / 2);
    const prevT = timestep - (this.counter % 2 ? 0 : half);
    const t = this.prkTimesteps[Math.floor(this.counter / 4) * 4]!;
    const phase = this.counter % 4;
    const acc = (w: number) => {
      const term = mul(modelOutput, w);
      const previous = this.curModelOutput;
      this.curModelOutput = keep(previous ? add(previous, term) : term);
      release(previous);
    };
    if (phase === 0) {
      acc(f32(1 / 6));
      // state kept across calls outlives each call's memory scope
      this.ets.push(keep(modelOutput));
      // a copy: the caller may free its sample once this step is done
      release(this.curSample);
      this.curSample = keep(clone(sample));
    } else if (phase === 1 || phase === 2) {
      acc(f32(1 / 3));
    } else {
      const sum = this.curModelOutput!;
      modelOutput = add(sum, mul(modelOutput, f32(1 / 6)));
      this.curModelOutput = null;
      release(sum);
    }
    const prevSample = this.prevSample(this.curSample ?? sample, t, prevT, modelOutput);
    this.counter += 1;
    return { prevSample };
  }

  /** Linear multistep step (PLMS). */
  private stepPlms(modelOutput: Tensor, timestep: number, sample: Tensor): StepResult {
    if (!this.config.skip_prk_steps && this.ets.length < 3) {
      throw new SchedulerError(
        "PNDMScheduler: PLMS steps need 3 Runge-Kutta steps first (run every step in order)",
      );
    }
    const ratio = Math.floor(this.config.num_train_timesteps / this.numInferenceSteps!);
    let prevT = timestep - ratio;
    if (this.counter !== 1) {
      for (const dropped of this.ets.slice(0, -3)) release(dropped);
      this.ets = this.ets.slice(-3);
      this.ets.push(keep(modelOutput));
    } else {
      prevT = timestep;
      timestep = timestep + ratio;
    }
    let eps: Tensor;
    if (this.ets.length === 1 && this.counter === 0) {
      eps = modelOutput;
      this.curSample = keep(clone(sample));
    } else if (this.ets.length === 1 && this.counter === 1) {
      eps = div(add(modelOutput, this.ets[0]!), 2);
      sample = this.curSample!;
      this.curSample = null;
    } else {
      eps = plmsCombine(this.ets);
    }
    const prevSample = this.prevSample(sample, timestep, prevT, eps);
    this.counter += 1;
    return { prevSample };
  }
}
