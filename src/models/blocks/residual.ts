// The residual sums of the UNet's blocks, which in inference write into the branch's fresh output instead of a new
// buffer (one allocation and one pass less per sum), or, after a linear or convolution layer, happen inside its
// kernel.
import { Conv2d, Linear, type Module } from "../../nn/index.js";
import { add, addInPlace, inPlaceAddProblem } from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";

/**
 * branch + residual, where `branch` is the fresh output of a layer that nothing else holds (a convolution's or a
 * linear layer's result). Where it can (see inPlaceAddProblem: no gradients recorded, a contiguous float32 branch the
 * residual broadcasts to), the sum goes into `branch` itself.
 */
export function addResidual(branch: Tensor, residual: Tensor): Tensor {
  return inPlaceAddProblem(branch, residual) === null ? addInPlace(branch, residual) : add(branch, residual);
}

/**
 * layer(x) + residual (layer(x) alone without one). A Linear or Conv2d whose forward nothing hooks (such as an
 * on-the-fly LoRA adapter) takes the residual into its kernel (their `forward(x, residual)`); any other layer's
 * output gets it through {@link addResidual}.
 */
export function withResidual(layer: Module<[Tensor], Tensor>, x: Tensor, residual?: Tensor | null): Tensor {
  if (!residual) return layer.call(x);
  if (!layer.forwardIsHooked && (layer instanceof Linear || layer instanceof Conv2d))
    return layer.call(x, residual);
  return addResidual(layer.call(x), residual);
}
