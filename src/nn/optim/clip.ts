import { abs, add, clamp, div, max, mul, pow, stack, sum } from "../../ops/index.js";
import { tensor } from "../../tensor/create.js";
import { ArgumentError } from "../../tensor/errors.js";
import { keep, release } from "../../tensor/scope.js";
import type { Tensor } from "../../tensor/tensor.js";

/**
 * Rescales gradients so their global norm (all gradients as one vector) is at most `maxNorm`, as
 * `torch.nn.utils.clip_grad_norm_`: every gradient is multiplied by min(1, maxNorm / (norm + 1e-6)), computed on
 * the gradients' device (nothing is read back). Returns the norm before clipping as a 0-d tensor (read it with
 * `item()` / `await itemAsync()` when you log it). `normType` may be any p >= 1 or Infinity. Gradients are
 * replaced by scaled copies (a gradient tensor may be shared between parameters), never modified in place.
 * `errorIfNonfinite` reads the norm back to check it, so it needs a synchronously readable device (the CPU).
 */
export function clipGradNorm(
  params: Iterable<Tensor>,
  maxNorm: number,
  opts: { normType?: number; errorIfNonfinite?: boolean } = {},
): Tensor {
  const normType = opts.normType ?? 2;
  if (!(normType >= 1))
    throw new ArgumentError(`clipGradNorm: normType must be >= 1 or Infinity, got ${normType}`);
  const withGrad = [...params].filter((p) => p.grad);
  if (withGrad.length === 0) return tensor(0);
  const grads = withGrad.map((p) => p.grad!);
  let total: Tensor;
  if (normType === Number.POSITIVE_INFINITY) {
    total = max(stack(grads.map((g) => max(abs(g)))));
  } else if (normType === 2) {
    total = pow(sum(stack(grads.map((g) => sum(mul(g, g))))), 0.5);
  } else {
    total = pow(sum(stack(grads.map((g) => sum(pow(abs(g), normType))))), 1 / normType);
  }
  if (opts.errorIfNonfinite && !Number.isFinite(total.item())) {
    throw new ArgumentError(`clipGradNorm: the total gradient norm is ${total.item()} (non-finite)`);
  }
  // min(1, maxNorm / (total + 1e-6)); NaN stays NaN (a NaN norm poisons every gradient, as in PyTorch)
  const coef = clamp(div(maxNorm, add(total, 1e-6)), null, 1);
  const replaced = new Set<Tensor>(grads);
  for (const p of withGrad) p.grad = keep(mul(p.grad!, coef));
  for (const g of replaced) release(g);
  return total;
}
