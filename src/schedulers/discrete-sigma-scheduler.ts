// Shared base of diffusers' Euler family (Euler, Euler ancestral, Heun, LMS): VE samples scaled by
// 1 / sqrt(sigma^2 + 1) before the model, sigmas interpolated from the training schedule, a running step index.
import { div } from "../ops/elementwise.js";
import type { Tensor } from "../tensor/tensor.js";
import { trainSigmas } from "./betas.js";
import type { SchedulerConfigInput, SchedulerOptions } from "./config.js";
import { checkOneOf, checkUnsupported } from "./config.js";
import { SchedulerError } from "./errors.js";
import { f32 } from "./numerics.js";
import { type CommonSchedulerConfig, Scheduler } from "./scheduler.js";
import { discreteSigmaSchedule, type FinalSigma, type SigmaSpacing } from "./sigma-schedule.js";
import type { TimestepSpacing } from "./timesteps.js";

/** Base of the Euler-family schedulers. */
export abstract class DiscreteSigmaScheduler<
  C extends CommonSchedulerConfig = CommonSchedulerConfig,
> extends Scheduler<C> {
  declare sigmas: number[];

  constructor(defaults: C, config: SchedulerConfigInput = {}, options: SchedulerOptions = {}) {
    super(defaults, config, options);
    const cfg = this.config as Record<string, unknown>;
    const name = this.className;
    if ("rescale_betas_zero_snr" in defaults) this.clampTerminalAlphaBar();
    checkUnsupported(name, "use_beta_sigmas", cfg.use_beta_sigmas ?? false, false);
    checkUnsupported(name, "interpolation_type", cfg.interpolation_type ?? "linear", "linear");
    if (cfg.use_karras_sigmas === true && cfg.use_exponential_sigmas === true) {
      throw new SchedulerError(`${name}: use_karras_sigmas and use_exponential_sigmas cannot both be true`);
    }
    if ("final_sigmas_type" in defaults) {
      checkOneOf(name, "final_sigmas_type", cfg.final_sigmas_type, ["zero", "sigma_min"]);
    }
    // before setTimesteps: every training step, as diffusers initialises it
    const n = this.alphasCumprod.length;
    this.timesteps = Array.from({ length: n }, (_, i) => n - 1 - i);
    this.sigmas = [...trainSigmas(this.alphasCumprod).reverse(), 0];
  }

  /** Whether this class understands `key` (a key of its defaults). */
  protected hasConfigKey(key: string): boolean {
    return key in (this.constructor as unknown as { defaults: object }).defaults;
  }

  /** How the inference sigmas are spread, from the config. */
  protected sigmaSpacing(): SigmaSpacing {
    const cfg = this.config as Record<string, unknown>;
    if (cfg.use_karras_sigmas === true && this.hasConfigKey("use_karras_sigmas")) return "karras";
    if (cfg.use_exponential_sigmas === true && this.hasConfigKey("use_exponential_sigmas"))
      return "exponential";
    return "interpolated";
  }

  /** Computes the timesteps and sigmas for `n` steps and resets the running state. */
  setTimesteps(numInferenceSteps: number): void {
    this.checkNumInferenceSteps(numInferenceSteps);
    const cfg = this.config as Record<string, unknown>;
    const num = (v: unknown) => (typeof v === "number" ? v : null);
    const schedule = discreteSigmaSchedule(this.alphasCumprod, {
      spacing: cfg.timestep_spacing as TimestepSpacing,
      numInferenceSteps,
      stepsOffset: this.config.steps_offset,
      sigmaSpacing: this.sigmaSpacing(),
      finalSigma: (this.hasConfigKey("final_sigmas_type") ? cfg.final_sigmas_type : "zero") as FinalSigma,
      sigmaMin: num(cfg.sigma_min),
      sigmaMax: num(cfg.sigma_max),
    });
    this.timesteps = schedule.timesteps;
    this.sigmas = schedule.sigmas;
    this.numInferenceSteps = numInferenceSteps;
    this.stepIndexValue = null;
    this.beginIndexValue = null;
    this.resetState();
  }

  /** Clears per-run state (multistep histories); called by setTimesteps. */
  protected resetState(): void {}

  /** sigma_max, or sqrt(sigma_max^2 + 1) for "leading" spacing (diffusers' choice for SD-1.x compatibility). */
  override get initNoiseSigma(): number {
    const max = Math.max(...this.sigmas);
    if (this.config.timestep_spacing === "linspace" || this.config.timestep_spacing === "trailing")
      return max;
    return f32(Math.sqrt(f32(f32(max * max) + 1)));
  }

  /** Divides the sample by sqrt(sigma^2 + 1), turning the VE sample into the VP input the model was trained on. */
  override scaleModelInput(sample: Tensor, timestep: number): Tensor {
    const sigma = this.sigmas[this.initStepIndex(timestep)]!;
    return div(sample, f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  }

  /** x0 + sigma * noise, sigma of the timestep's position in `timesteps`. */
  protected override noiseCoefficients(t: number): [number, number] {
    const index =
      this.beginIndexValue === null
        ? this.indexForTimestep(t)
        : (this.stepIndexValue ?? this.beginIndexValue);
    return [1, this.sigmas[index]!];
  }
}
