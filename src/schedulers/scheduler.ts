// The protocol every scheduler follows (diffusers' SchedulerMixin, candle's 20-line trait): a training noise
// schedule, `setTimesteps`, `scaleModelInput`, `step` and `addNoise`. Subclasses hold only their own update rule.
import { add, mul, sub } from "../ops/elementwise.js";
import { randn, tensor } from "../tensor/create.js";
import type { Generator } from "../tensor/generator.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { type BetaScheduleConfig, noiseSchedule } from "./betas.js";
import {
  checkInteger,
  checkOneOf,
  resolveConfig,
  type SchedulerConfigInput,
  type SchedulerOptions,
} from "./config.js";
import { SchedulerError } from "./errors.js";
import { f32 } from "./numerics.js";
import { PREDICTION_TYPES, type PredictionType } from "./predictions.js";
import { TIMESTEP_SPACINGS } from "./timesteps.js";

/** Config keys every scheduler here has (diffusers' names). */
export interface CommonSchedulerConfig extends BetaScheduleConfig {
  trained_betas: number[] | null;
  prediction_type: string;
  timestep_spacing: string;
  steps_offset: number;
}

/** Per-call options of `step()`. */
export interface StepOptions {
  /** Generator for the random draws of stochastic schedulers (DDPM, ancestral, SDE, LCM, DDIM with eta > 0). */
  generator?: Generator;
  /** The random tensor step() would draw (shape of the sample), used instead of drawing one. */
  noise?: Tensor;
}

/** What `step()` returns. */
export interface StepResult {
  /** The sample at the next (less noisy) timestep. */
  prevSample: Tensor;
  /** The model's estimate of the clean sample x0 at this step (absent where the update never forms it). */
  predOriginalSample?: Tensor;
  /** LCM: the consistency-model output (the image to show after the last step). */
  denoised?: Tensor;
}

/** A scheduler class: `new X(config)` / `X.fromConfig(config)`. */
export interface SchedulerClass<S extends Scheduler = Scheduler> {
  new (config?: SchedulerConfigInput, options?: SchedulerOptions): S;
  readonly className: string;
  readonly defaults: object;
}

/** Base class of the schedulers: the training schedule, timestep bookkeeping and the forward process. */
export abstract class Scheduler<C extends CommonSchedulerConfig = CommonSchedulerConfig> {
  /** diffusers' class name (the `_class_name` of scheduler_config.json). */
  static readonly className: string = "Scheduler";
  /** Prediction types the update rule supports. */
  static readonly predictionTypes: readonly PredictionType[] = PREDICTION_TYPES;

  /** The full config: the class defaults overlaid with what was given (unknown keys kept). */
  readonly config: Readonly<C & Record<string, unknown>>;
  /** beta_t of the training schedule (float32). */
  readonly betas: Float32Array;
  /** alpha_t = 1 - beta_t (float32). */
  readonly alphas: Float32Array;
  /** alpha-bar_t = prod_{s<=t} alpha_s (float32; the Euler family and the multistep solvers clamp the last to 2^-24
   * under zero terminal SNR, as diffusers does). */
  readonly alphasCumprod: Float32Array;
  /** The inference timesteps after `setTimesteps` (integers, or float32 values for the Euler family). */
  timesteps: number[] = [];
  /** VE noise levels per step and a final one (length timesteps + 1), for schedulers that have them; else null. */
  sigmas: number[] | null = null;
  /** Number of inference steps set by `setTimesteps`, or null before. */
  numInferenceSteps: number | null = null;
  /** Model evaluations per inference step (diffusers' `order`; 2 for Heun). */
  readonly order: number = 1;

  protected stepIndexValue: number | null = null;
  protected beginIndexValue: number | null = null;

  constructor(defaults: C, config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    const cls = new.target as unknown as { className: string; predictionTypes: readonly PredictionType[] };
    const name = cls.className;
    const cfg = resolveConfig(name, defaults, config, options);
    checkInteger(name, "num_train_timesteps", cfg.num_train_timesteps, 1);
    checkInteger(name, "steps_offset", cfg.steps_offset, 0);
    checkOneOf(name, "prediction_type", cfg.prediction_type, cls.predictionTypes);
    checkOneOf(name, "timestep_spacing", cfg.timestep_spacing, TIMESTEP_SPACINGS);
    if (cfg.trained_betas == null) {
      const schedules = ["linear", "scaled_linear", "squaredcos_cap_v2"];
      if (name === "DDPMScheduler") schedules.push("sigmoid");
      checkOneOf(name, "beta_schedule", cfg.beta_schedule, schedules);
    }
    const zeroSnr = "rescale_betas_zero_snr" in defaults && cfg.rescale_betas_zero_snr === true;
    const schedule = noiseSchedule({ ...cfg, rescale_betas_zero_snr: zeroSnr });
    this.config = Object.freeze(cfg);
    this.betas = schedule.betas;
    this.alphas = schedule.alphas;
    this.alphasCumprod = schedule.alphasCumprod;
  }

  /**
   * Under zero terminal SNR the last alpha-bar is 0 (infinite sigma); the sigma-based schedulers replace it by
   * 2^-24 (the smallest positive float16 subnormal) so that the first sigma stays finite (4096), as diffusers does.
   */
  protected clampTerminalAlphaBar(): void {
    if ((this.config as Record<string, unknown>).rescale_betas_zero_snr === true) {
      this.alphasCumprod[this.alphasCumprod.length - 1] = 2 ** -24;
    }
  }

  /** diffusers' class name of this scheduler. */
  get className(): string {
    return (this.constructor as unknown as { className: string }).className;
  }

  /** Builds the scheduler from a (diffusers) config; keys of other schedulers are kept, so switching keeps them. */
  static fromConfig<T>(
    this: new (
      config?: SchedulerConfigInput,
      options?: SchedulerOptions,
    ) => T,
    config: SchedulerConfigInput,
    options?: SchedulerOptions,
  ): T {
    return new this(config, options);
  }

  /** Standard deviation of the initial noise (the first sample is `randn * initNoiseSigma`). */
  get initNoiseSigma(): number {
    return 1;
  }

  /** Index into `timesteps` of the next `step()` call, or null before the first call. */
  get stepIndex(): number | null {
    return this.stepIndexValue;
  }

  /** The index the first `step()` starts from, when set (image-to-image); else found from the timestep. */
  get beginIndex(): number | null {
    return this.beginIndexValue;
  }

  /** Starts the next run at `timesteps[index]` (pipelines that skip the first steps, e.g. image-to-image). */
  setBeginIndex(index = 0): void {
    this.beginIndexValue = index;
  }

  /** Picks `n` inference timesteps from the training range (resets the scheduler's running state). */
  abstract setTimesteps(numInferenceSteps: number): void;

  /** Scales the sample before it goes into the model (identity unless the scheduler works on VE samples). */
  scaleModelInput(sample: Tensor, _timestep: number): Tensor {
    return sample;
  }

  /** One reverse-diffusion step: from `sample` at `timestep` and the model output there, the next sample. */
  abstract step(modelOutput: Tensor, timestep: number, sample: Tensor, options?: StepOptions): StepResult;

  /**
   * The forward process q(x_t | x_0): `signal * x0 + noise_scale * noise` at timestep `t` (one per batch element,
   * or one for all). DDPM-style schedulers index the training schedule; the Euler family and the multistep solvers
   * take `t` from `timesteps` (call `setTimesteps` first).
   */
  addNoise(originalSamples: Tensor, noise: Tensor, timesteps: number | readonly number[]): Tensor {
    if (originalSamples.shape.join() !== noise.shape.join()) {
      throw new SchedulerError(
        `addNoise: noise shape ${formatShape(noise.shape)} differs from sample shape ${formatShape(originalSamples.shape)}`,
      );
    }
    const coeffs = this.perBatch(originalSamples, timesteps, (t) => this.noiseCoefficients(t));
    return add(mul(coeffs[0], originalSamples), mul(coeffs[1], noise));
  }

  /**
   * The v-prediction target at training timestep `t` (Salimans & Ho 2022): sqrt(abar_t) * noise - sqrt(1 - abar_t)
   * * sample.
   */
  getVelocity(sample: Tensor, noise: Tensor, timesteps: number | readonly number[]): Tensor {
    const coeffs = this.perBatch(sample, timesteps, (t) => {
      const abar = this.trainAlphaBar(t);
      return [f32(Math.sqrt(abar)), f32(Math.sqrt(f32(1 - abar)))];
    });
    return sub(mul(coeffs[0], noise), mul(coeffs[1], sample));
  }

  /** [signal, noise] scale of the forward process at timestep t; by default sqrt(abar_t), sqrt(1 - abar_t). */
  protected noiseCoefficients(t: number): [number, number] {
    const abar = this.trainAlphaBar(t);
    return [f32(Math.sqrt(abar)), f32(Math.sqrt(f32(1 - abar)))];
  }

  /** alpha-bar at an integer training timestep (checked). */
  protected trainAlphaBar(t: number): number {
    const n = this.alphasCumprod.length;
    if (!Number.isInteger(t) || t < 0 || t >= n) {
      throw new SchedulerError(`${this.className}: timestep must be an integer in [0, ${n - 1}], got ${t}`);
    }
    return this.alphasCumprod[t]!;
  }

  private perBatch(
    like: Tensor,
    timesteps: number | readonly number[],
    coeff: (t: number) => [number, number],
  ): [Tensor, Tensor] {
    const ts = typeof timesteps === "number" ? [timesteps] : [...timesteps];
    const batch = like.shape[0] ?? 1;
    if (ts.length !== 1 && ts.length !== batch) {
      throw new SchedulerError(
        `${ts.length} timesteps given for a batch of ${batch}; give one or one per sample`,
      );
    }
    const a = new Float32Array(ts.length);
    const b = new Float32Array(ts.length);
    ts.forEach((t, i) => {
      [a[i], b[i]] = coeff(t);
    });
    const shape = [ts.length, ...like.shape.slice(1).map(() => 1)];
    return [tensor(a, shape, { device: like.device }), tensor(b, shape, { device: like.device })];
  }

  /** Throws unless `n` is a usable number of inference steps. */
  protected checkNumInferenceSteps(n: number): void {
    const max = this.config.num_train_timesteps;
    if (!Number.isInteger(n) || n < 1) {
      throw new SchedulerError(`${this.className}: num_inference_steps must be a positive integer, got ${n}`);
    }
    if (n > max) {
      throw new SchedulerError(
        `${this.className}: num_inference_steps (${n}) cannot be larger than num_train_timesteps (${max})`,
      );
    }
  }

  /** Throws unless `setTimesteps` was called. */
  protected requireTimesteps(): void {
    if (this.numInferenceSteps === null) {
      throw new SchedulerError(`${this.className}: call setTimesteps(numInferenceSteps) before step()`);
    }
  }

  /**
   * Position of `t` in `timesteps`; the second match when it occurs twice (so a run started mid-schedule does not
   * skip a sigma). When absent: the last index if `fallbackToLast`, else an error.
   */
  protected indexForTimestep(t: number, fallbackToLast = false): number {
    const matches: number[] = [];
    this.timesteps.forEach((v, i) => {
      if (v === t) matches.push(i);
    });
    if (matches.length === 0) {
      if (fallbackToLast) return this.timesteps.length - 1;
      throw new SchedulerError(`${this.className}: timestep ${t} is not one of the scheduler's timesteps`);
    }
    return matches.length > 1 ? matches[1]! : matches[0]!;
  }

  /** Sets the step index on the first call of a run (from `beginIndex`, or by finding `t`). */
  protected initStepIndex(t: number, fallbackToLast = false): number {
    if (this.stepIndexValue === null) {
      this.stepIndexValue = this.beginIndexValue ?? this.indexForTimestep(t, fallbackToLast);
    }
    if (this.stepIndexValue >= this.timesteps.length) {
      throw new SchedulerError(
        `${this.className}: all ${this.timesteps.length} timesteps are done; call setTimesteps() to start a new run`,
      );
    }
    return this.stepIndexValue;
  }

  /** The random tensor of a stochastic step: `options.noise` when given (shape checked), else a fresh draw. */
  protected drawNoise(like: Tensor, options: StepOptions): Tensor {
    if (options.noise) {
      if (options.noise.shape.join() !== like.shape.join()) {
        throw new SchedulerError(
          `${this.className}: step noise has shape ${formatShape(options.noise.shape)}, expected ${formatShape(like.shape)}`,
        );
      }
      return options.noise;
    }
    return randn(like.shape, { generator: options.generator, device: like.device });
  }
}
