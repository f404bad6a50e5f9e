// How inference timesteps are picked from the training range (Lin et al. 2023, Table 2: "leading", "trailing",
// "linspace"), with numpy's arithmetic so that the integers match diffusers exactly.
import { arange64, linspace64, roundHalfEven } from "./numerics.js";

/** Values of `timestep_spacing`. */
export const TIMESTEP_SPACINGS = ["leading", "trailing", "linspace"] as const;
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];

/**
 * `n` timesteps in decreasing order, as DDPM/DDIM/PNDM and the Euler family pick them. "linspace" values are not
 * rounded (integer schedulers round them half to even; the Euler family keeps them as float32).
 */
export function spacedTimesteps(
  spacing: TimestepSpacing,
  numTrainTimesteps: number,
  n: number,
  stepsOffset: number,
): number[] {
  switch (spacing) {
    case "linspace":
      return linspace64(0, numTrainTimesteps - 1, n).reverse();
    case "leading": {
      const ratio = Math.floor(numTrainTimesteps / n);
      return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + stepsOffset);
    }
    case "trailing":
      return arange64(numTrainTimesteps, 0, -numTrainTimesteps / n).map((t) => roundHalfEven(t) - 1);
  }
}

/**
 * `n` integer timesteps in decreasing order as the multistep solvers (DPM-Solver, UniPC) pick them: n + 1 points
 * with the last dropped, so that t = 0 is never a model input. `lastTimestep` is num_train_timesteps unless
 * `lambda_min_clipped` cuts the range.
 */
export function multistepTimesteps(
  spacing: TimestepSpacing,
  numTrainTimesteps: number,
  lastTimestep: number,
  n: number,
  stepsOffset: number,
): number[] {
  switch (spacing) {
    case "linspace":
      return linspace64(0, lastTimestep - 1, n + 1)
        .map(roundHalfEven)
        .reverse()
        .slice(0, n);
    case "leading": {
      const ratio = Math.floor(lastTimestep / (n + 1));
      return Array.from({ length: n }, (_, i) => (n - i) * ratio + stepsOffset);
    }
    case "trailing":
      return arange64(lastTimestep, 0, -numTrainTimesteps / n).map((t) => roundHalfEven(t) - 1);
  }
}
