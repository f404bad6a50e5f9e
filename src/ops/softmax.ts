import { normalizeDim } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { allocOutput, backendOf, contiguousF32, fromF32, record, requireFloat } from "./core.js";
import { exp, mul, sub } from "./elementwise.js";
import { sum } from "./reduce.js";
import { contiguous, permute } from "./view.js";

/**
 * Runs the backend's last-axis softmax kernel along `dim` (no autograd). Other dims are moved last with a
 * permutation, and the result is permuted back into a contiguous tensor of `x`'s shape.
 */
function softmaxRaw(x: Tensor, d: number, log: boolean): Tensor {
  const nd = x.ndim;
  const be = backendOf("softmax", x);
  if (nd === 0) {
    // a scalar is a one-element row: softmax 1, log_softmax 0 (NaN/inf propagate through the kernel)
    const out = allocOutput(be, 1);
    be.softmax(contiguousF32(be, x), out, 1, 1, log);
    return fromF32(be, out, []);
  }
  const last = nd - 1;
  // move `d` to the end: order = [0..d-1, d+1..last, d]
  const order = Array.from({ length: nd }, (_, i) => i).filter((i) => i !== d);
  order.push(d);
  const moved = d === last ? x : permute(x, order);
  const cols = x.shape[d]!;
  const rows = cols === 0 ? 0 : x.size / cols;
  const out = allocOutput(be, x.size);
  be.softmax(contiguousF32(be, moved), out, rows, cols, log);
  const y = fromF32(be, out, moved.shape);
  if (d === last) return y;
  const inverse = new Array<number>(nd);
  order.forEach((src, i) => {
    inverse[src] = i;
  });
  return contiguous(permute(y, inverse));
}

/** `dim` against `ndim`; a 0-d tensor accepts 0 and -1, as in PyTorch. */
function resolveDim(dim: number, ndim: number): number {
  if (ndim === 0 && (dim === 0 || dim === -1)) return 0;
  return normalizeDim(dim, ndim);
}

/**
 * Softmax along `dim` (default the last): `exp(x_i) / sum_j exp(x_j)`, computed stably (max subtracted).
 * A row that is entirely -Infinity gives NaN, as in PyTorch. Result is float32.
 */
export function softmax(x: Tensor, dim = -1): Tensor {
  requireFloat(x, "softmax");
  const d = resolveDim(dim, x.ndim);
  const y = softmaxRaw(x, d, false);
  // dL/dx = y * (g - sum(g * y, dim))  (Jacobian of softmax: diag(y) - y y^T)
  return record(y, "softmax", [x], (g) => [mul(y, sub(g, sum(mul(g, y), d, { keepdim: true })))]);
}

/** Log-softmax along `dim` (default the last): `x_i - log(sum_j exp(x_j))`, computed stably. Result is float32. */
export function log_softmax(x: Tensor, dim = -1): Tensor {
  requireFloat(x, "log_softmax");
  const d = resolveDim(dim, x.ndim);
  const y = softmaxRaw(x, d, true);
  // dL/dx = g - softmax(x) * sum(g, dim), with softmax(x) = exp(y)
  return record(y, "log_softmax", [x], (g) => [sub(g, mul(exp(y), sum(g, d, { keepdim: true })))]);
}
