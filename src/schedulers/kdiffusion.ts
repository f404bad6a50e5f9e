// The functional layer in the style of k-diffusion (Crowson, `k_diffusion/sampling.py`): samples are VE
// (x = x0 + sigma * eps), a model is a denoiser D(x, sigma) ~ E[x0 | x], and samplers are plain loops over a list
// of sigmas ending in 0. The per-step update rules live in the sampler files and are shared with the
// diffusers-shaped classes.
import { add, div, mul, sub } from "../ops/elementwise.js";
import { randn } from "../tensor/create.js";
import type { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import type { Tensor } from "../tensor/tensor.js";
import { trainSigmas } from "./betas.js";
import { denoisedFromOutputVE, type PredictionType } from "./predictions.js";
import { logSigmasF32, sigmaToT } from "./sigmas.js";

/** D(x, sigma): the denoised estimate of a VE sample `x` at noise level `sigma`. */
export type Denoiser = (x: Tensor, sigma: number) => Tensor;

/** Options shared by the functional samplers. */
export interface SamplerOptions {
  /**
   * Called after every step i (0-based) with stage "sample", step i + 1 of sigmas.length - 1, values `sigma` (this
   * step's noise level) and `sigmaNext` (where it ended), the sample after the step and the denoiser's estimate.
   */
  onProgress?: ProgressCallback;
  /** Source of the random draws of stochastic samplers. */
  generator?: Generator;
  /** Supplies the random tensor of step i instead of drawing one (same shape as x). */
  noise?: (i: number, like: Tensor) => Tensor;
}

/** Reports step `i` of a functional sampler over `sigmas` to `opts.onProgress` (see {@link SamplerOptions}). */
export function reportStep(
  opts: SamplerOptions,
  i: number,
  sigmas: readonly number[] | Float64Array,
  x: Tensor,
  denoised: Tensor,
): void {
  opts.onProgress?.({
    stage: "sample",
    step: i + 1,
    total: sigmas.length - 1,
    values: { sigma: sigmas[i]!, sigmaNext: sigmas[i + 1]! },
    sample: x,
    denoised,
  });
}

/** The ODE derivative dx/dsigma = (x - D(x, sigma)) / sigma (Karras et al. 2022, eq. 3 with sigma(t) = t). */
export function toD(x: Tensor, sigma: number, denoised: Tensor): Tensor {
  return div(sub(x, denoised), sigma);
}

/**
 * Splits a step from sigmaFrom to sigmaTo into a deterministic move to sigmaDown and fresh noise of scale sigmaUp,
 * with sigmaDown^2 + sigmaUp^2 = sigmaTo^2 (ancestral sampling; eta = 1 is DDPM-like, eta = 0 deterministic).
 */
export function getAncestralStep(
  sigmaFrom: number,
  sigmaTo: number,
  eta = 1,
): { sigmaDown: number; sigmaUp: number } {
  if (!eta) return { sigmaDown: sigmaTo, sigmaUp: 0 };
  const sigmaUp = Math.min(
    sigmaTo,
    eta * Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2),
  );
  return { sigmaDown: Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2), sigmaUp };
}

/** The random tensor of step `i`: from `opts.noise` when given, else drawn with `opts.generator`. */
export function stepNoise(opts: SamplerOptions, i: number, like: Tensor): Tensor {
  if (opts.noise) return opts.noise(i, like);
  return randn(like.shape, { generator: opts.generator, device: like.device });
}

/** x + d * dt: one explicit Euler move along a derivative. */
export function eulerMove(x: Tensor, d: Tensor, dt: number): Tensor {
  return add(x, mul(d, dt));
}

/**
 * Wraps a discrete-time model (epsilon, v or x0 prediction, called with the VP input x / sqrt(sigma^2 + 1) and the
 * fractional training timestep of sigma) as a denoiser: k-diffusion's CompVisDenoiser / CompVisVDenoiser.
 */
export function discreteDenoiser(
  model: (x: Tensor, t: number) => Tensor,
  alphasCumprod: Float32Array,
  predictionType: PredictionType = "epsilon",
): Denoiser {
  const logSigmas = logSigmasF32(trainSigmas(alphasCumprod));
  return (x, sigma) => {
    const cIn = 1 / Math.sqrt(sigma * sigma + 1);
    const output = model(mul(x, cIn), sigmaToT(sigma, logSigmas));
    return denoisedFromOutputVE(output, x, sigma, predictionType);
  };
}
