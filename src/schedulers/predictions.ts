// Model parameterisations: how a network output (epsilon, v or x0) becomes the denoised estimate x0, in the VE view
// (x = x0 + sigma * eps, k-diffusion) and the VP view (x = alpha * x0 + sigmaVp * eps, DDPM). Each scheduler calls
// these instead of repeating the formulas; Salimans & Ho 2022 (v-prediction, section 4).
import { add, div, mul, sub } from "../ops/elementwise.js";
import type { Tensor } from "../tensor/tensor.js";
import { SchedulerError } from "./errors.js";

/** Values of `prediction_type`. */
export const PREDICTION_TYPES = ["epsilon", "v_prediction", "sample"] as const;
export type PredictionType = (typeof PREDICTION_TYPES)[number];

/**
 * x0 from a model output at VE noise level `sigma` (the Euler family's `pred_original_sample`):
 * epsilon: x - sigma * eps; v: x / (sigma^2 + 1) - v * sigma / sqrt(sigma^2 + 1); sample: the output itself.
 */
export function denoisedFromOutputVE(
  output: Tensor,
  x: Tensor,
  sigma: number,
  predictionType: PredictionType,
): Tensor {
  switch (predictionType) {
    case "epsilon":
      return sub(x, mul(output, sigma));
    case "v_prediction": {
      const s2 = Math.fround(Math.fround(sigma * sigma) + 1);
      return add(mul(output, Math.fround(-sigma / Math.fround(Math.sqrt(s2)))), div(x, s2));
    }
    case "sample":
      return output;
    default:
      throw new SchedulerError(`unknown prediction_type ${JSON.stringify(predictionType)}`);
  }
}

/**
 * x0 from a model output in the VP view, x = alpha * x0 + sigmaVp * eps:
 * epsilon: (x - sigmaVp * eps) / alpha; v: alpha * x - sigmaVp * v; sample: the output itself. alpha and sigmaVp are
 * one number for the batch or per-sample tensors that broadcast ([B, 1, 1, 1]).
 */
export function denoisedFromOutputVP(
  output: Tensor,
  x: Tensor,
  alpha: number | Tensor,
  sigmaVp: number | Tensor,
  predictionType: PredictionType,
): Tensor {
  switch (predictionType) {
    case "epsilon":
      return div(sub(x, mul(output, sigmaVp)), alpha);
    case "v_prediction":
      return sub(mul(x, alpha), mul(output, sigmaVp));
    case "sample":
      return output;
    default:
      throw new SchedulerError(`unknown prediction_type ${JSON.stringify(predictionType)}`);
  }
}

/**
 * epsilon from a model output in the VP view: epsilon: the output; v: alpha * v + sigmaVp * x;
 * sample: (x - alpha * x0) / sigmaVp.
 */
export function epsilonFromOutputVP(
  output: Tensor,
  x: Tensor,
  alpha: number | Tensor,
  sigmaVp: number | Tensor,
  predictionType: PredictionType,
): Tensor {
  switch (predictionType) {
    case "epsilon":
      return output;
    case "v_prediction":
      return add(mul(output, alpha), mul(x, sigmaVp));
    case "sample":
      return div(sub(x, mul(output, alpha)), sigmaVp);
    default:
      throw new SchedulerError(`unknown prediction_type ${JSON.stringify(predictionType)}`);
  }
}
