// The residual sums of the UNet's blocks, which in inference write into the branch's fresh output instead of a new
// buffer: one allocation and one pass less per sum.
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
