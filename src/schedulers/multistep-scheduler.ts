// Shared base of the multistep solvers (DPM-Solver++, UniPC): VP samples, integer timesteps N + 1 apart, sigma
// ramps over the whole training range, and a history of model outputs that setTimesteps clears.
import { keep, release } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { trainSigmas } from "./betas.js";
import { checkOneOf, type SchedulerConfigInput, type SchedulerOptions } from "./config.js";
import { SchedulerError } from "./errors.js";
import { type CommonSchedulerConfig, Scheduler } from "./scheduler.js";
import { type FinalSigma, multistepSigmaSchedule, type SigmaSpacing } from "./sigma-schedule.js";
import { vpLevel } from "./sigmas.js";
import type { TimestepSpacing } from "./timesteps.js";

/** Config keys both multistep solvers have. */
export interface MultistepConfig extends CommonSchedulerConfig {
  solver_order: number;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  final_sigmas_type: string;
  rescale_betas_zero_snr: boolean;
}

/** Base of DPMSolverMultistepScheduler and UniPCMultistepScheduler. */
export abstract class MultistepScheduler<C extends MultistepConfig = MultistepConfig> extends Scheduler<C> {
  declare sigmas: number[];
  /** Converted model outputs of the last steps (newest last, at most solver_order). */
  protected modelOutputs: Tensor[] = [];
  /** Steps taken so far, capped at solver_order (the warm-up counter). */
  protected lowerOrderNums = 0;

  constructor(defaults: C, config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(defaults, config, options);
    const cfg = this.config;
    checkOneOf(this.className, "final_sigmas_type", cfg.final_sigmas_type, ["zero", "sigma_min"]);
    if (cfg.use_karras_sigmas && cfg.use_exponential_sigmas) {
      throw new SchedulerError(
        `${this.className}: use_karras_sigmas and use_exponential_sigmas cannot both be true`,
      );
    }
    this.clampTerminalAlphaBar();
    this.sigmas = [...trainSigmas(this.alphasCumprod)];
    const n = cfg.num_train_timesteps;
    this.timesteps = Array.from({ length: n }, (_, i) => n - 1 - i);
  }

  /** The last timestep + 1 the schedule may use (num_train_timesteps unless clipped). */
  protected lastTimestep(): number {
    return this.config.num_train_timesteps;
  }

  setTimesteps(numInferenceSteps: number): void {
    this.checkNumInferenceSteps(numInferenceSteps);
    const cfg = this.config as C & Record<string, unknown>;
    const sigmaSpacing: SigmaSpacing = cfg.use_karras_sigmas
      ? "karras"
      : cfg.use_exponential_sigmas
        ? "exponential"
        : "interpolated";
    const num = (v: unknown) => (typeof v === "number" ? v : null);
    const schedule = multistepSigmaSchedule(this.alphasCumprod, {
      spacing: cfg.timestep_spacing as TimestepSpacing,
      numInferenceSteps,
      stepsOffset: cfg.steps_offset,
      sigmaSpacing,
      finalSigma: cfg.final_sigmas_type as FinalSigma,
      sigmaMin: num(cfg.sigma_min),
      sigmaMax: num(cfg.sigma_max),
      lastTimestep: this.lastTimestep(),
    });
    this.timesteps = schedule.timesteps;
    this.sigmas = schedule.sigmas;
    this.numInferenceSteps = this.timesteps.length;
    // the last run's history is freed now on a GPU, not whenever the collector runs
    for (const t of this.modelOutputs) release(t);
    this.modelOutputs = [];
    this.lowerOrderNums = 0;
    this.stepIndexValue = null;
    this.beginIndexValue = null;
  }

  /** Appends a converted model output to the history (keeping solver_order of them). */
  protected remember(output: Tensor): void {
    // the history outlives the memory scope of the step that made it
    this.modelOutputs.push(keep(output));
    if (this.modelOutputs.length > this.config.solver_order) release(this.modelOutputs.shift());
  }

  /** alpha_t x0 + sigma_t noise at the sigma of timestep t (VP). */
  protected override noiseCoefficients(t: number): [number, number] {
    const index =
      this.beginIndexValue === null
        ? this.indexForTimestep(t, true)
        : (this.stepIndexValue ?? this.beginIndexValue);
    const { alpha, sigma } = vpLevel(this.sigmas[index]!);
    return [alpha, sigma];
  }
}
