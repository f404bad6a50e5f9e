// In-place parameter updates on the parameters' device: the optimizer and weight-averaging kernels behind the
// ops layer's checks (float32, contiguous, one device, matching sizes). Autograd does not see these writes.

import type { AdamWParams, DeviceBackend, SgdParams } from "../backend/index.js";
import type { DeviceBuffer } from "../tensor/device.js";
import { ArgumentError, DTypeError, ShapeError } from "../tensor/errors.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { backendOf, contiguousF32, ownElements } from "./core.js";

/** The buffer of a tensor's own float32 elements, written in place; a clear error when it cannot be. */
function writable(be: DeviceBackend, t: Tensor, op: string, what: string): DeviceBuffer {
  if (t.dtype !== "float32") {
    throw new DTypeError(
      `${op}: ${what} must be float32 to be updated, got ${t.dtype} (convert with module.toDType("float32"))`,
    );
  }
  const own = ownElements(be, t);
  if (!own) throw new ArgumentError(`${op}: ${what} must be a contiguous tensor on ${be.device}`);
  return own;
}

function sameSize(p: Tensor, other: Tensor, op: string, what: string): void {
  if (other.size !== p.size) {
    throw new ShapeError(
      `${op}: ${what} has shape ${formatShape(other.shape)}, the parameter ${formatShape(p.shape)}`,
    );
  }
}

/** Hyper-parameters of one AdamW step (see the backend's `adamw`). */
export type AdamWStep = Pick<AdamWParams, "beta1" | "beta2" | "eps" | "decay" | "stepSize" | "bc2Sqrt">;

/** One AdamW step on `param` with `grad`, updating param and the moment tensors in place. */
export function adamwUpdate(
  param: Tensor,
  grad: Tensor,
  expAvg: Tensor,
  expAvgSq: Tensor,
  maxExpAvgSq: Tensor | null,
  step: AdamWStep,
): void {
  const be = backendOf("AdamW", param, grad, expAvg, expAvgSq, maxExpAvgSq);
  sameSize(param, grad, "AdamW", "the gradient");
  be.adamw({
    param: writable(be, param, "AdamW", "the parameter"),
    grad: contiguousF32(be, grad),
    expAvg: writable(be, expAvg, "AdamW", "exp_avg"),
    expAvgSq: writable(be, expAvgSq, "AdamW", "exp_avg_sq"),
    maxExpAvgSq: maxExpAvgSq ? writable(be, maxExpAvgSq, "AdamW", "max_exp_avg_sq") : null,
    size: param.size,
    ...step,
  });
}

/** Hyper-parameters of one SGD step (see the backend's `sgd`). */
export type SgdStep = Pick<SgdParams, "lr" | "momentum" | "dampening" | "weightDecay" | "nesterov" | "first">;

/** One SGD step on `param` with `grad` (and the momentum buffer, when momentum is used), in place. */
export function sgdUpdate(param: Tensor, grad: Tensor, momentumBuffer: Tensor | null, step: SgdStep): void {
  const be = backendOf("SGD", param, grad, momentumBuffer);
  sameSize(param, grad, "SGD", "the gradient");
  be.sgd({
    param: writable(be, param, "SGD", "the parameter"),
    grad: contiguousF32(be, grad),
    momentumBuffer: momentumBuffer ? writable(be, momentumBuffer, "SGD", "the momentum buffer") : null,
    size: param.size,
    ...step,
  });
}

/** Moves `avg` toward `x` in place: `avg -= weight * (avg - x)` (an exponential moving average of weights). */
export function lerpTo_(avg: Tensor, x: Tensor, weight: number): void {
  const be = backendOf("lerpTo_", avg, x);
  sameSize(avg, x, "lerpTo_", "the value");
  be.lerpTo(writable(be, avg, "lerpTo_", "the average"), contiguousF32(be, x), weight, avg.size);
}
