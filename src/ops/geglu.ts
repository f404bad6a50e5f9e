// GEGLU as one op: the fused kernel when no gradient is needed, the chunk/gelu/mul composition otherwise; and the
// projection with the GEGLU in one pass where the backend has it.
import { isGradEnabled } from "../tensor/autograd.js";
import { ShapeError } from "../tensor/errors.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { allocOutput, backendOf, contiguousF32, fromF32, requireFloat } from "./core.js";
import { gelu, mul } from "./elementwise.js";
import { linear } from "./matmul.js";
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
  const be = backendOf("geglu", x);
  const out = allocOutput(be, rows * half);
  be.geglu(contiguousF32(be, x), out, rows, half);
  return fromF32(be, out, [...x.shape.slice(0, -1), half]);
}

/**
 * geglu(linear(x, weight, bias)): diffusers' GEGLU module (proj, then the gate). Without gradients, on a backend
 * with {@link Backend.linearGeglu}, the projection [.., 2 * half] never exists as a whole: each block of rows is
 * projected in cache and gated at once.
 */
export function linearGeglu(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const backend = backendOf("linearGeglu", x, weight, bias);
  const fused =
    backend.linearGeglu &&
    !(isGradEnabled() && (x.requiresGrad || weight.requiresGrad || (bias?.requiresGrad ?? false))) &&
    x.ndim >= 1 &&
    x.dtype === "float32" &&
    weight.ndim === 2 &&
    (weight.dtype === "float32" || (weight.dtype === "float16" && backend.halfWeights !== undefined)) &&
    weight.isContiguous() &&
    weight.shape[0]! % 2 === 0 &&
    weight.shape[1] === x.shape[x.ndim - 1] &&
    (!bias || (bias.ndim === 1 && bias.shape[0] === weight.shape[0]));
  if (!fused) return geglu(linear(x, weight, bias));
  const [outF, inF] = weight.shape as [number, number];
  const half = outF / 2;
  const rows = x.size / inF;
  const out = allocOutput(backend, rows * half);
  backend.linearGeglu!({
    x: contiguousF32(backend, x),
    rows,
    inFeatures: inF,
    weight: weight.storage.buffer,
    weightOffset: weight.offset,
    bias: bias ? contiguousF32(backend, bias) : null,
    half,
    out,
  });
  return fromF32(backend, out, [...x.shape.slice(0, -1), half]);
}
