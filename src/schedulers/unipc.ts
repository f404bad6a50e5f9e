// UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion
// Models", Algorithms 1-3, B(h) variants bh1/bh2): a multistep predictor UniP and a corrector UniC that reuses the
// model evaluation of the next step. Written for any noise-level pair (alpha, sigma) like DPM-Solver.
import { add, mul, sub } from "../ops/elementwise.js";
import { clone } from "../ops/view.js";
import { keep, release } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  checkInteger,
  checkOneOf,
  checkUnsupported,
  type SchedulerConfigInput,
  type SchedulerOptions,
} from "./config.js";
import { SchedulerError } from "./errors.js";
import { type Denoiser, reportStep, type SamplerOptions } from "./kdiffusion.js";
import { type MultistepConfig, MultistepScheduler } from "./multistep-scheduler.js";
import { f32 } from "./numerics.js";
import { denoisedFromOutputVP, epsilonFromOutputVP, type PredictionType } from "./predictions.js";
import type { StepOptions, StepResult } from "./scheduler.js";
import { halfLogSnr, type NoiseLevel, veLevel, vpLevel } from "./sigmas.js";
import { dynamicThreshold } from "./threshold.js";

/** Solves the small dense system A x = b (Gaussian elimination with partial pivoting). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row.slice(0, n), b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= m[r]![k]! * x[k]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}

/** Options of one UniPC update. */
export interface UniPcUpdateOptions {
  /** Order p of this step (history length used). */
  order: number;
  /** B(h) = h ("bh1") or e^h - 1 ("bh2", default). */
  variant?: "bh1" | "bh2";
  /** Whether the history holds x0 estimates (default) or eps estimates. */
  predictX0?: boolean;
  /** Corrector (UniC): the model output at `next` for the sample being corrected. Absent: predictor (UniP). */
  modelAtNext?: Tensor;
}

/**
 * One UniPC update from `levels[last]` to `next` using the model outputs (x0 or eps) at `levels` (newest last).
 * Without `modelAtNext` it is the predictor UniP-p; with it, the corrector UniC-p of the sample predicted at
 * `next`, which returns the corrected sample at `next`.
 */
export function uniPcUpdate(
  x: Tensor,
  outputs: readonly Tensor[],
  levels: readonly NoiseLevel[],
  next: NoiseLevel,
  opts: UniPcUpdateOptions,
): Tensor {
  const { order, variant = "bh2", predictX0 = true, modelAtNext } = opts;
  const m0 = outputs[outputs.length - 1]!;
  const s0 = levels[levels.length - 1]!;
  const lambdaS0 = halfLogSnr(s0);
  const h = halfLogSnr(next) - lambdaS0;
  const rks: number[] = [];
  const d1s: Tensor[] = [];
  for (let k = 1; k < order; k++) {
    const rk = (halfLogSnr(levels[levels.length - 1 - k]!) - lambdaS0) / h;
    rks.push(rk);
    d1s.push(mul(sub(outputs[outputs.length - 1 - k]!, m0), f32(1 / rk)));
  }
  rks.push(1);
  const hh = predictX0 ? -h : h;
  const hPhi1 = Math.expm1(hh);
  let hPhiK = hPhi1 / hh - 1;
  const bh = variant === "bh1" ? hh : Math.expm1(hh);
  const rows: number[][] = [];
  const b: number[] = [];
  let factorial = 1;
  for (let k = 1; k <= order; k++) {
    rows.push(rks.map((r) => r ** (k - 1)));
    b.push((hPhiK * factorial) / bh);
    factorial *= k + 1;
    hPhiK = hPhiK / hh - 1 / factorial;
  }
  const scale = predictX0 ? next.alpha : next.sigma;
  const xCoeff = predictX0 ? next.sigma / s0.sigma : next.alpha / s0.alpha;
  let out = sub(mul(x, f32(xCoeff)), mul(m0, f32(scale * hPhi1)));
  let rhos: number[];
  if (modelAtNext) {
    rhos = order === 1 ? [0.5] : solve(rows, b);
  } else {
    rhos = d1s.length === 0 ? [] : order === 2 ? [0.5] : solve(rows.slice(0, -1), b.slice(0, -1));
  }
  let res: Tensor | null = null;
  d1s.forEach((d, k) => {
    const term = mul(d, f32(rhos[k]!));
    res = res ? add(res, term) : term;
  });
  if (modelAtNext) {
    const term = mul(sub(modelAtNext, m0), f32(rhos[rhos.length - 1]!));
    res = res ? add(res, term) : term;
  }
  if (res) out = sub(out, mul(res, f32(scale * bh)));
  return out;
}

/** The order of step `i` of `numSteps` (lower near the end with lowerOrderFinal; warm-up from 1). */
export function uniPcStepOrder(
  i: number,
  numSteps: number,
  warmup: number,
  solverOrder: number,
  lowerOrderFinal: boolean,
): number {
  const order = lowerOrderFinal ? Math.min(solverOrder, numSteps - i) : solverOrder;
  return Math.min(order, warmup + 1);
}

/** UniPC over `sigmas` (VE), k-diffusion style, with diffusers' order rules and corrector on every step but the first. */
export function sampleUniPc(
  denoiser: Denoiser,
  x: Tensor,
  sigmas: readonly number[],
  opts: SamplerOptions & { order?: number; variant?: "bh1" | "bh2"; lowerOrderFinal?: boolean } = {},
): Tensor {
  const n = sigmas.length - 1;
  const solverOrder = opts.order ?? 2;
  const outputs: Tensor[] = [];
  let lastSample: Tensor | null = null;
  let lastOrder = 1;
  for (let i = 0; i < n; i++) {
    const denoised = denoiser(x, sigmas[i]!);
    if (lastSample) {
      x = uniPcUpdate(
        lastSample,
        outputs.slice(-lastOrder),
        sigmas.slice(i - lastOrder, i).map(veLevel),
        veLevel(sigmas[i]!),
        {
          order: lastOrder,
          variant: opts.variant,
          modelAtNext: denoised,
        },
      );
    }
    outputs.push(denoised);
    if (outputs.length > solverOrder) outputs.shift();
    lastOrder = uniPcStepOrder(i, n, Math.min(i, solverOrder), solverOrder, opts.lowerOrderFinal ?? true);
    lastSample = x;
    x = uniPcUpdate(
      x,
      outputs.slice(-lastOrder),
      sigmas.slice(i + 1 - lastOrder, i + 1).map(veLevel),
      veLevel(sigmas[i + 1]!),
      {
        order: lastOrder,
        variant: opts.variant,
      },
    );
    reportStep(opts, i, sigmas, x, denoised);
  }
  return x;
}

/** UniPCMultistepScheduler config. */
export interface UniPCMultistepConfig extends MultistepConfig {
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  predict_x0: boolean;
  solver_type: string;
  lower_order_final: boolean;
  disable_corrector: number[];
  solver_p: unknown;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  use_flow_sigmas: boolean;
  flow_shift: number;
  final_sigmas_type: string;
  rescale_betas_zero_snr: boolean;
  use_dynamic_shifting: boolean;
  time_shift_type: string;
  sigma_min: number | null;
  sigma_max: number | null;
  shift_terminal: number | null;
}

/** diffusers' UniPCMultistepScheduler. */
export class UniPCMultistepScheduler extends MultistepScheduler<UniPCMultistepConfig> {
  static override readonly className = "UniPCMultistepScheduler";
  static readonly defaults: UniPCMultistepConfig = {
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
    predict_x0: true,
    solver_type: "bh2",
    lower_order_final: true,
    disable_corrector: [],
    solver_p: null,
    use_karras_sigmas: false,
    use_exponential_sigmas: false,
    use_beta_sigmas: false,
    use_flow_sigmas: false,
    flow_shift: 1.0,
    timestep_spacing: "linspace",
    steps_offset: 0,
    final_sigmas_type: "zero",
    rescale_betas_zero_snr: false,
    use_dynamic_shifting: false,
    time_shift_type: "exponential",
    sigma_min: null,
    sigma_max: null,
    shift_terminal: null,
  };

  /** "bh1" or "bh2" after diffusers' aliases (DPM-Solver names run as bh2). */
  readonly solverType: "bh1" | "bh2";
  private lastSample: Tensor | null = null;
  private thisOrder = 1;

  constructor(config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(UniPCMultistepScheduler.defaults, config, options);
    const name = this.className;
    const cfg = this.config;
    checkInteger(name, "solver_order", cfg.solver_order, 1);
    const solver = checkOneOf(name, "solver_type", cfg.solver_type, [
      "bh1",
      "bh2",
      "midpoint",
      "heun",
      "logrho",
    ]);
    this.solverType = solver === "bh1" ? "bh1" : "bh2";
    if (this.solverType === "bh1" && cfg.final_sigmas_type === "zero") {
      throw new SchedulerError(
        `${name}: solver_type "bh1" with final_sigmas_type "zero" makes the last step NaN in diffusers; ` +
          `use final_sigmas_type "sigma_min" (or solver_type "bh2")`,
      );
    }
    for (const key of ["use_beta_sigmas", "use_flow_sigmas", "use_dynamic_shifting"] as const) {
      checkUnsupported(name, key, cfg[key], false);
    }
    checkUnsupported(name, "solver_p", cfg.solver_p, null);
    checkUnsupported(name, "shift_terminal", cfg.shift_terminal, null);
    if (!Array.isArray(cfg.disable_corrector) || cfg.disable_corrector.some((v) => !Number.isInteger(v))) {
      throw new SchedulerError(`${name}: disable_corrector must be a list of step indices`);
    }
  }

  override setTimesteps(numInferenceSteps: number): void {
    super.setTimesteps(numInferenceSteps);
    const cfg = this.config;
    if ((cfg.use_karras_sigmas || cfg.use_exponential_sigmas) && cfg.final_sigmas_type === "sigma_min") {
      // UniPC ends a Karras/exponential ramp at the ramp's own last sigma
      this.sigmas[this.sigmas.length - 1] = this.sigmas[this.sigmas.length - 2]!;
    }
    release(this.lastSample);
    this.lastSample = null;
  }

  /** The model output as the solver needs it: x0 (predict_x0, thresholded if asked) or eps. */
  private convert(modelOutput: Tensor, sample: Tensor, level: NoiseLevel): Tensor {
    const cfg = this.config;
    const pt = cfg.prediction_type as PredictionType;
    if (!cfg.predict_x0) return epsilonFromOutputVP(modelOutput, sample, level.alpha, level.sigma, pt);
    const x0 = denoisedFromOutputVP(modelOutput, sample, level.alpha, level.sigma, pt);
    return cfg.thresholding ? dynamicThreshold(x0, cfg.dynamic_thresholding_ratio, cfg.sample_max_value) : x0;
  }

  override step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    _options: StepOptions = {},
  ): StepResult {
    this.requireTimesteps();
    const cfg = this.config;
    const i = this.initStepIndex(timestep, true);
    const level = vpLevel(this.sigmas[i]!);
    const converted = this.convert(modelOutput, sample, level);
    const useCorrector = i > 0 && !cfg.disable_corrector.includes(i - 1) && this.lastSample !== null;
    if (useCorrector) {
      const p = this.thisOrder;
      sample = uniPcUpdate(
        this.lastSample!,
        this.modelOutputs.slice(-p),
        this.sigmas.slice(i - p, i).map(vpLevel),
        level,
        { order: p, variant: this.solverType, predictX0: cfg.predict_x0, modelAtNext: converted },
      );
    }
    this.remember(converted);
    this.thisOrder = uniPcStepOrder(
      i,
      this.timesteps.length,
      this.lowerOrderNums,
      cfg.solver_order,
      cfg.lower_order_final,
    );
    // a copy: the caller may free its sample once this step is done
    release(this.lastSample);
    this.lastSample = keep(clone(sample));
    const p = this.thisOrder;
    const prevSample = uniPcUpdate(
      sample,
      this.modelOutputs.slice(-p),
      this.sigmas.slice(i + 1 - p, i + 1).map(vpLevel),
      vpLevel(this.sigmas[i + 1]!),
      { order: p, variant: this.solverType, predictX0: cfg.predict_x0 },
    );
    if (this.lowerOrderNums < cfg.solver_order) this.lowerOrderNums += 1;
    this.stepIndexValue = i + 1;
    return cfg.predict_x0 ? { prevSample, predOriginalSample: converted } : { prevSample };
  }
}
