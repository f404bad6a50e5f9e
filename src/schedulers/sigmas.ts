// Noise-level (sigma) schedules and conversions between the VE view used by k-diffusion (x = x0 + sigma * eps) and
// the VP view of DDPM (x = alpha * x0 + sigma_vp * eps, alpha = 1 / sqrt(1 + sigma^2), sigma_vp = sigma * alpha).
import { f32, linspace64 } from "./numerics.js";

/**
 * Karras et al. 2022 ("Elucidating the Design Space...", eq. 5) noise levels, from sigmaMax down to sigmaMin:
 * sigma_i = (sigmaMax^(1/rho) + i / (n - 1) * (sigmaMin^(1/rho) - sigmaMax^(1/rho)))^rho. No trailing zero.
 */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number, rho = 7): number[] {
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  return linspace64(0, 1, n).map((r) => (maxInvRho + r * (minInvRho - maxInvRho)) ** rho);
}

/** Noise levels evenly spaced in log(sigma), from sigmaMax down to sigmaMin. */
export function exponentialSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  return linspace64(Math.log(sigmaMax), Math.log(sigmaMin), n).map(Math.exp);
}

/** `sigmas` followed by 0 (k-diffusion's `append_zero`). */
export function appendZero(sigmas: readonly number[]): number[] {
  return [...sigmas, 0];
}

/** log of each float32 training sigma, in float32 (numpy `np.log` on a float32 array). */
export function logSigmasF32(trainSigmas: Float32Array): Float32Array {
  return trainSigmas.map((s) => f32(Math.log(s)));
}

/**
 * The (fractional) training timestep whose sigma is `sigma`: linear interpolation of log(sigma) between the two
 * neighbouring training steps, clamped to [0, T-1]. Reproduces diffusers' `_sigma_to_t` including its float32
 * intermediate rounding (numpy 1.x casting rules).
 */
export function sigmaToT(sigma: number, logSigmas: Float32Array): number {
  const n = logSigmas.length;
  const logSigma = f32(Math.log(Math.max(sigma, 1e-10)));
  // index of the last training step whose log-sigma is <= log(sigma) (0 when there is none), at most n - 2
  let low = 0;
  for (let i = 0; i < n; i++) if (f32(logSigma - logSigmas[i]!) >= 0) low = i;
  low = Math.min(low, n - 2);
  const lo = logSigmas[low]!;
  const hi = logSigmas[low + 1]!;
  let w = f32(f32(lo - logSigma) / f32(lo - hi));
  w = Math.min(Math.max(w, 0), 1);
  return f32(1 - w) * low + w * (low + 1);
}

/** The VP signal and noise scales of a VE noise level: alpha = 1 / sqrt(sigma^2 + 1), sigmaVp = sigma * alpha. */
export function sigmaToAlphaSigma(sigma: number): { alpha: number; sigmaVp: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  return { alpha, sigmaVp: sigma * alpha };
}

/** The VE noise level of a VP alpha-bar: sigma = sqrt((1 - abar) / abar). */
export function alphaBarToSigma(alphaBar: number): number {
  return Math.sqrt((1 - alphaBar) / alphaBar);
}

/**
 * A noise level as the pair (alpha, sigma) of x = alpha * x0 + sigma * eps. VE samples use (1, sigma); VP samples
 * (diffusers' DPM-Solver and UniPC) use (1 / sqrt(sigma^2 + 1), sigma / sqrt(sigma^2 + 1)). The multistep solvers
 * are written for any such pair, so the same code serves both.
 */
export interface NoiseLevel {
  alpha: number;
  sigma: number;
}

/** Half log-SNR lambda = log(alpha) - log(sigma) (+Infinity at sigma = 0). */
export function halfLogSnr(level: NoiseLevel): number {
  return Math.log(level.alpha) - Math.log(level.sigma);
}

/** The VE noise level (1, sigma). */
export function veLevel(sigma: number): NoiseLevel {
  return { alpha: 1, sigma };
}

/** The VP noise level of VE sigma, rounded as diffusers' float32 tensors are. */
export function vpLevel(sigma: number): NoiseLevel {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  return { alpha, sigma: f32(sigma * alpha) };
}
