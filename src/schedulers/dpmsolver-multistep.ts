// DPM-Solver++ (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
// Models", Algorithm 2 and eq. 8-9 for the multistep 2nd/3rd order) and its SDE variant (Appendix; k-diffusion's
// `sample_dpmpp_2m_sde`). Written for any noise-level pair (alpha, sigma): VE for the functional samplers, VP for
// diffusers' DPMSolverMultistepScheduler.
import { add, mul, sub } from "../ops/elementwise.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  checkInteger,
  checkOneOf,
  checkUnsupported,
  type SchedulerConfigInput,
  type SchedulerOptions,
} from "./config.js";
import { SchedulerError } from "./errors.js";
import { type Denoiser, reportStep, type SamplerOptions, stepNoise } from "./kdiffusion.js";
import { type MultistepConfig, MultistepScheduler } from "./multistep-scheduler.js";
import { f32 } from "./numerics.js";
import { denoisedFromOutputVP, type PredictionType } from "./predictions.js";
import type { StepOptions, StepResult } from "./scheduler.js";
import { halfLogSnr, type NoiseLevel, veLevel, vpLevel } from "./sigmas.js";
import { dynamicThreshold } from "./threshold.js";

/** Options of one DPM-Solver++ update. */
export interface DpmSolverUpdateOptions {
  /** 1, 2 or 3 (uses that many of the newest denoised estimates). */
  order: number;
  /** Second-order variant: "midpoint" (default) or "heun". */
  solverType?: "midpoint" | "heun";
  /** SDE-DPM-Solver++ noise (eta = 1); null/absent for the ODE solver. */
  noise?: Tensor | null;
}

/**
 * One multistep DPM-Solver++ update from `levels[last]` to `next`, given the denoised estimates at the last
 * `order` levels (both newest last). With `noise` it is the SDE-DPM-Solver++ step.
 */
export function dpmSolverPlusPlusUpdate(
  x: Tensor,
  denoised: readonly Tensor[],
  levels: readonly NoiseLevel[],
  next: NoiseLevel,
  opts: DpmSolverUpdateOptions,
): Tensor {
  const { order, solverType = "midpoint", noise = null } = opts;
  const m = (k: number) => denoised[denoised.length - 1 - k]!;
  const s = (k: number) => levels[levels.length - 1 - k]!;
  const s0 = s(0);
  const h = halfLogSnr(next) - halfLogSnr(s0);
  const sde = noise !== null;
  // e^{-h} (ODE) or e^{-2h} (SDE) decay; phi1 = 1 - decay scaled by alpha_t
  const ratio = next.sigma / s0.sigma;
  const xCoeff = sde ? ratio * Math.exp(-h) : ratio;
  const hh = sde ? 2 * h : h;
  const em1 = Math.expm1(-hh); // e^{-hh} - 1
  let out = sub(mul(x, f32(xCoeff)), mul(m(0), f32(next.alpha * em1)));
  if (order === 2) {
    const r0 = (halfLogSnr(s0) - halfLogSnr(s(1))) / h;
    const d1 = mul(sub(m(0), m(1)), f32(1 / r0));
    const c = solverType === "heun" ? next.alpha * (em1 / hh + 1) : -0.5 * next.alpha * em1;
    out = add(out, mul(d1, f32(c)));
  } else if (order === 3) {
    const r0 = (halfLogSnr(s0) - halfLogSnr(s(1))) / h;
    const r1 = (halfLogSnr(s(1)) - halfLogSnr(s(2))) / h;
    const d10 = mul(sub(m(0), m(1)), f32(1 / r0));
    const d11 = mul(sub(m(1), m(2)), f32(1 / r1));
    const diff = sub(d10, d11);
    const d1 = add(d10, mul(diff, f32(r0 / (r0 + r1))));
    const d2 = mul(diff, f32(1 / (r0 + r1)));
    out = add(out, mul(d1, f32(next.alpha * (em1 / hh + 1))));
    // diffusers' third-order SDE term is ((1 - e^{-2h} - 2h) / (2h)^2 - 0.5); the ODE one -((e^{-h} - 1 + h) / h^2 - 0.5)
    const c2 = sde
      ? next.alpha * ((-em1 - hh) / (hh * hh) - 0.5)
      : -next.alpha * ((em1 + hh) / (hh * hh) - 0.5);
    out = add(out, mul(d2, f32(c2)));
  } else if (order !== 1) {
    throw new SchedulerError(`DPM-Solver++ order must be 1, 2 or 3, got ${order}`);
  }
  if (noise) out = add(out, mul(noise, f32(next.sigma * Math.sqrt(-Math.expm1(-2 * h)))));
  return out;
}

/** When to lower the solver order (diffusers' rules for few steps and for the final step to sigma = 0). */
export interface DpmSolverOrderPolicy {
  solverOrder: number;
  lowerOrderFinal: boolean;
  eulerAtFinal?: boolean;
  finalSigmaIsZero: boolean;
}

/** The order of step `i` of `numSteps`, when `warmup` earlier estimates are available. */
export function dpmSolverStepOrder(
  i: number,
  numSteps: number,
  warmup: number,
  p: DpmSolverOrderPolicy,
): number {
  const lowerFinal =
    i === numSteps - 1 && (p.eulerAtFinal || (p.lowerOrderFinal && numSteps < 15) || p.finalSigmaIsZero);
  const lowerSecond = i === numSteps - 2 && p.lowerOrderFinal && numSteps < 15;
  if (p.solverOrder === 1 || warmup < 1 || lowerFinal) return 1;
  if (p.solverOrder === 2 || warmup < 2 || lowerSecond) return 2;
  return 3;
}

/** Options of the functional DPM-Solver++ samplers. */
export interface DpmSolverSamplerOptions extends SamplerOptions {
  order?: number;
  sde?: boolean;
  solverType?: "midpoint" | "heun";
  lowerOrderFinal?: boolean;
}

/** Multistep DPM-Solver++ over `sigmas` (VE), k-diffusion style; the order rules are diffusers'. */
export function sampleDpmSolverPlusPlus(
  denoiser: Denoiser,
  x: Tensor,
  sigmas: readonly number[],
  opts: DpmSolverSamplerOptions = {},
): Tensor {
  const n = sigmas.length - 1;
  const policy = {
    solverOrder: opts.order ?? 2,
    lowerOrderFinal: opts.lowerOrderFinal ?? true,
    finalSigmaIsZero: sigmas[n] === 0,
  };
  const history: Tensor[] = [];
  for (let i = 0; i < n; i++) {
    const denoised = denoiser(x, sigmas[i]!);
    history.push(denoised);
    if (history.length > policy.solverOrder) history.shift();
    const order = dpmSolverStepOrder(i, n, Math.min(i, policy.solverOrder), policy);
    const levels = sigmas.slice(i + 1 - order, i + 1).map(veLevel);
    const noise = opts.sde ? stepNoise(opts, i, x) : null;
    x = dpmSolverPlusPlusUpdate(x, history.slice(-order), levels, veLevel(sigmas[i + 1]!), {
      order,
      solverType: opts.solverType ?? "midpoint",
      noise,
    });
    reportStep(opts, i, sigmas, x, denoised);
  }
  return x;
}

/** DPM++ 2M (second-order multistep DPM-Solver++). */
export function sampleDpmpp2m(
  denoiser: Denoiser,
  x: Tensor,
  sigmas: readonly number[],
  opts: SamplerOptions = {},
) {
  return sampleDpmSolverPlusPlus(denoiser, x, sigmas, { ...opts, order: 2 });
}

/** DPM++ 2M SDE (second-order multistep SDE-DPM-Solver++, eta = 1). */
export function sampleDpmpp2mSde(
  denoiser: Denoiser,
  x: Tensor,
  sigmas: readonly number[],
  opts: SamplerOptions & { solverType?: "midpoint" | "heun" } = {},
) {
  return sampleDpmSolverPlusPlus(denoiser, x, sigmas, { ...opts, order: 2, sde: true });
}

/** DPM++ 3M SDE (third-order multistep SDE-DPM-Solver++ with diffusers' coefficients). */
export function sampleDpmpp3mSde(
  denoiser: Denoiser,
  x: Tensor,
  sigmas: readonly number[],
  opts: SamplerOptions = {},
) {
  return sampleDpmSolverPlusPlus(denoiser, x, sigmas, { ...opts, order: 3, sde: true });
}

/** DPMSolverMultistepScheduler config. */
export interface DPMSolverMultistepConfig extends MultistepConfig {
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  algorithm_type: string;
  solver_type: string;
  lower_order_final: boolean;
  euler_at_final: boolean;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  use_lu_lambdas: boolean;
  use_flow_sigmas: boolean;
  flow_shift: number;
  final_sigmas_type: string;
  lambda_min_clipped: number;
  variance_type: string | null;
  rescale_betas_zero_snr: boolean;
  use_dynamic_shifting: boolean;
  time_shift_type: string;
}

/** diffusers' DPMSolverMultistepScheduler (algorithm_type dpmsolver++ or sde-dpmsolver++). */
export class DPMSolverMultistepScheduler extends MultistepScheduler<DPMSolverMultistepConfig> {
  static override readonly className = "DPMSolverMultistepScheduler";
  static readonly defaults: DPMSolverMultistepConfig = {
    num_train_timesteps: 1000,
    beta_start: 0.0001,
    beta_end: 0.02,
    beta_schedule: "linear",
    trained_betas: null,
    solver_order: 2,
    prediction_type: "epsilon",
    thresholding: false,
    dynamic_thresholding_ratio: 0.995,
    sample_max_value: 1.0,
    algorithm_type: "dpmsolver++",
    solver_type: "midpoint",
    lower_order_final: true,
    euler_at_final: false,
    use_karras_sigmas: false,
    use_exponential_sigmas: false,
    use_beta_sigmas: false,
    use_lu_lambdas: false,
    use_flow_sigmas: false,
    flow_shift: 1.0,
    final_sigmas_type: "zero",
    lambda_min_clipped: Number.NEGATIVE_INFINITY,
    variance_type: null,
    timestep_spacing: "linspace",
    steps_offset: 0,
    rescale_betas_zero_snr: false,
    use_dynamic_shifting: false,
    time_shift_type: "exponential",
  };

  /** The algorithm after diffusers' aliases ("deis" runs as dpmsolver++). */
  readonly algorithmType: "dpmsolver++" | "sde-dpmsolver++";
  /** The second-order variant after diffusers' aliases (UniPC/DEIS names run as midpoint). */
  readonly solverType: "midpoint" | "heun";

  constructor(config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(DPMSolverMultistepScheduler.defaults, config, options);
    const name = this.className;
    const cfg = this.config;
    checkInteger(name, "solver_order", cfg.solver_order, 1, 3);
    const algorithm = checkOneOf(name, "algorithm_type", cfg.algorithm_type, [
      "dpmsolver++",
      "sde-dpmsolver++",
      "deis",
    ]);
    this.algorithmType = algorithm === "deis" ? "dpmsolver++" : algorithm;
    const solver = checkOneOf(name, "solver_type", cfg.solver_type, [
      "midpoint",
      "heun",
      "logrho",
      "bh1",
      "bh2",
    ]);
    this.solverType = solver === "heun" ? "heun" : "midpoint";
    for (const key of [
      "use_beta_sigmas",
      "use_lu_lambdas",
      "use_flow_sigmas",
      "use_dynamic_shifting",
    ] as const) {
      checkUnsupported(name, key, cfg[key], false);
    }
    // diffusers only acts on the learned variances (it drops the extra output channels); a DDPM config's
    // "fixed_small"/"fixed_large" is carried over by from_config and ignored, as here.
    if (cfg.variance_type === "learned" || cfg.variance_type === "learned_range") {
      checkUnsupported(name, "variance_type", cfg.variance_type, null);
    }
  }

  /** Timesteps where lambda(t) < lambda_min_clipped are cut off (for the cosine schedule). */
  protected override lastTimestep(): number {
    const clip = this.config.lambda_min_clipped;
    let below = 0;
    for (const a of this.alphasCumprod) {
      const lambda = f32(f32(Math.log(f32(Math.sqrt(a)))) - f32(Math.log(f32(Math.sqrt(f32(1 - a))))));
      if (lambda < clip) below++;
    }
    return this.config.num_train_timesteps - below;
  }

  override step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    options: StepOptions = {},
  ): StepResult {
    this.requireTimesteps();
    const cfg = this.config;
    const i = this.initStepIndex(timestep, true);
    const level = vpLevel(this.sigmas[i]!);
    let x0 = denoisedFromOutputVP(
      modelOutput,
      sample,
      level.alpha,
      level.sigma,
      cfg.prediction_type as PredictionType,
    );
    if (cfg.thresholding) x0 = dynamicThreshold(x0, cfg.dynamic_thresholding_ratio, cfg.sample_max_value);
    this.remember(x0);
    const order = dpmSolverStepOrder(i, this.timesteps.length, this.lowerOrderNums, {
      solverOrder: cfg.solver_order,
      lowerOrderFinal: cfg.lower_order_final,
      eulerAtFinal: cfg.euler_at_final,
      finalSigmaIsZero: cfg.final_sigmas_type === "zero",
    });
    const noise = this.algorithmType === "sde-dpmsolver++" ? this.drawNoise(modelOutput, options) : null;
    const levels = this.sigmas.slice(i + 1 - order, i + 1).map(vpLevel);
    const prevSample = dpmSolverPlusPlusUpdate(
      sample,
      this.modelOutputs.slice(-order),
      levels,
      vpLevel(this.sigmas[i + 1]!),
      {
        order,
        solverType: this.solverType,
        noise,
      },
    );
    if (this.lowerOrderNums < cfg.solver_order) this.lowerOrderNums += 1;
    this.stepIndexValue = i + 1;
    return { prevSample, predOriginalSample: x0 };
  }
}
