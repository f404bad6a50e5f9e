// GEGLU as one op: the fused kernel when no gradient is needed, the chunk/gelu/mul composition otherwise.
import { getBackend } from "../backend/index.js";
import { isGradEnabled } from "../tensor/autograd.js";
import { ShapeError } from "../tensor/errors.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { allocOutput, contiguousF32, fromF32, requireFloat } from "./core.js";
import { gelu, mul } from "./elementwise.js";
import { chunk } from "./shape.js";

/**
 * Gated GELU (Shazeer 2020, "GLU Variants Improve Transformer"): splits the last dim of x into halves
 * [hidden, gate] and returns hidden * gelu(gate) (exact erf GELU), as diffusers' GEGLU after its projection.
 */
export function geglu(x: Tensor): Tensor {
  requireFloat(x, "geglu");
  const last = x.ndim === 0 ? 0 : x.shape[x.ndim - 1]!;
  if (x.ndim === 0 || last % 2 !== 0) {
    throw new ShapeError(
      `geglu: the last dim must have an even size (hidden and gate halves), got ${formatShape(x.shape)}`,
    );
  }
  if (isGradEnabled() && x.requiresGrad) {
    const [hidden, gate] = chunk(x, 2, -1) as [Tensor, Tensor];
    return mul(hidden, gelu(gate));
  }
  const half = last / 2;
  const rows = half === 0 ? 0 : x.size / last;
  const out = allocOutput(rows * half);
  getBackend().geglu(contiguousF32(x), out, rows, half);
  return fromF32(out, [...x.shape.slice(0, -1), half]);
}
