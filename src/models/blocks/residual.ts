// The residual sums of the UNet's blocks, which in inference write into the branch's fresh output instead of a new
// buffer: one allocation and one pass less per sum.
import { add, addInPlace } from "../../ops/index.js";
import { isGradEnabled } from "../../tensor/autograd.js";
import type { Tensor } from "../../tensor/tensor.js";

/**
 * branch + residual, where `branch` is the fresh output of a layer that nothing else holds (a convolution's or a
 * linear layer's result). Without gradients, and when the shapes allow, the sum goes into `branch` itself.
 */
export function addResidual(branch: Tensor, residual: Tensor): Tensor {
  const inPlace =
    !(isGradEnabled() && (branch.requiresGrad || residual.requiresGrad)) &&
    branch.dtype === "float32" &&
    branch.isContiguous() &&
    branch.ndim >= residual.ndim &&
    residual.shape.every((d, i) => d === 1 || d === branch.shape[branch.ndim - residual.ndim + i]);
  return inPlace ? addInPlace(branch, residual) : add(branch, residual);
}
