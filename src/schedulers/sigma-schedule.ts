// Inference noise levels from a training schedule, for the two families diffusers has:
// - the Euler family (Euler, Euler ancestral, Heun, LMS): N timesteps as float32, sigma interpolated at each, or a
//   Karras/exponential ramp between the end sigmas with timesteps mapped back through log-sigma interpolation;
// - the multistep solvers (DPM-Solver++, UniPC): N integer timesteps, Karras/exponential ramps over the full
//   training range.
import { trainSigmas } from "./betas.js";
import { SchedulerError } from "./errors.js";
import { f32, interpIndex, roundHalfEven } from "./numerics.js";
import { exponentialSigmas, karrasSigmas, logSigmasF32, sigmaToT } from "./sigmas.js";
import { multistepTimesteps, spacedTimesteps, type TimestepSpacing } from "./timesteps.js";

/** How the inference sigmas are spread. */
export type SigmaSpacing = "interpolated" | "karras" | "exponential";

/** What follows the last inference sigma: 0, or the smallest training sigma. */
export type FinalSigma = "zero" | "sigma_min";

/** Options shared by both families. */
export interface SigmaScheduleOptions {
  spacing: TimestepSpacing;
  numInferenceSteps: number;
  stepsOffset: number;
  sigmaSpacing: SigmaSpacing;
  finalSigma: FinalSigma;
  /** Overrides of the ends of a Karras/exponential ramp (config `sigma_min` / `sigma_max`). */
  sigmaMin?: number | null;
  sigmaMax?: number | null;
}

/** Inference timesteps and sigmas (sigmas has one more entry: the final noise level). */
export interface SigmaSchedule {
  timesteps: number[];
  sigmas: number[];
}

function ramp(kind: SigmaSpacing, min: number, max: number, n: number): number[] {
  return kind === "karras" ? karrasSigmas(min, max, n) : exponentialSigmas(min, max, n);
}

function finalSigmaValue(final: FinalSigma, train: Float32Array): number {
  if (final === "zero") return 0;
  if (final === "sigma_min") return train[0]!;
  throw new SchedulerError(`final_sigmas_type must be "zero" or "sigma_min", got ${JSON.stringify(final)}`);
}

/** Euler-family schedule: float32 timesteps, sigma interpolated at each (or a ramp between the end sigmas). */
export function discreteSigmaSchedule(
  alphasCumprod: Float32Array,
  opts: SigmaScheduleOptions,
): SigmaSchedule {
  const numTrain = alphasCumprod.length;
  const train = trainSigmas(alphasCumprod);
  let timesteps = spacedTimesteps(opts.spacing, numTrain, opts.numInferenceSteps, opts.stepsOffset).map(f32);
  let sigmas = timesteps.map((t) => interpIndex(t, train));
  if (opts.sigmaSpacing !== "interpolated") {
    const min = opts.sigmaMin ?? sigmas[sigmas.length - 1]!;
    const max = opts.sigmaMax ?? sigmas[0]!;
    sigmas = ramp(opts.sigmaSpacing, min, max, opts.numInferenceSteps);
    const logSigmas = logSigmasF32(train);
    timesteps = sigmas.map((s) => f32(sigmaToT(s, logSigmas)));
  }
  sigmas.push(finalSigmaValue(opts.finalSigma, train));
  return { timesteps, sigmas: sigmas.map(f32) };
}

/**
 * Multistep-solver schedule: integer timesteps N + 1 apart with the last dropped; ramps span the whole training
 * range and their timesteps are rounded. `lastTimestep` cuts the range (DPM-Solver's `lambda_min_clipped`).
 */
export function multistepSigmaSchedule(
  alphasCumprod: Float32Array,
  opts: SigmaScheduleOptions & { lastTimestep?: number },
): SigmaSchedule {
  const numTrain = alphasCumprod.length;
  const train = trainSigmas(alphasCumprod);
  let timesteps = multistepTimesteps(
    opts.spacing,
    numTrain,
    opts.lastTimestep ?? numTrain,
    opts.numInferenceSteps,
    opts.stepsOffset,
  );
  let sigmas: number[];
  if (opts.sigmaSpacing === "interpolated") {
    sigmas = timesteps.map((t) => interpIndex(t, train));
  } else {
    const min = opts.sigmaMin ?? train[0]!;
    const max = opts.sigmaMax ?? train[numTrain - 1]!;
    sigmas = ramp(opts.sigmaSpacing, min, max, opts.numInferenceSteps);
    const logSigmas = logSigmasF32(train);
    // diffusers rounds Karras timesteps; other ramps are truncated by the int64 cast
    const toInt = opts.sigmaSpacing === "karras" ? roundHalfEven : Math.trunc;
    timesteps = sigmas.map((s) => toInt(sigmaToT(s, logSigmas)));
  }
  sigmas.push(finalSigmaValue(opts.finalSigma, train));
  return { timesteps, sigmas: sigmas.map(f32) };
}
