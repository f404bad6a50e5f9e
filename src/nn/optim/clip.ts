import { tensor } from "../../tensor/create.js";
import { ArgumentError } from "../../tensor/errors.js";
import type { Tensor } from "../../tensor/tensor.js";

/**
 * Rescales gradients so their global norm (all gradients as one vector) is at most `maxNorm`, as
 * `torch.nn.utils.clip_grad_norm_`: every gradient is multiplied by min(1, maxNorm / (norm + 1e-6)).
 * Returns the norm before clipping. `normType` may be any p >= 1 or Infinity. Gradients are replaced by scaled
 * copies (a gradient tensor may be shared between parameters), never modified in place.
 */
export function clipGradNorm(
  params: Iterable<Tensor>,
  maxNorm: number,
  opts: { normType?: number; errorIfNonfinite?: boolean } = {},
): number {
  const normType = opts.normType ?? 2;
  if (!(normType >= 1))
    throw new ArgumentError(`clipGradNorm: normType must be >= 1 or Infinity, got ${normType}`);
  const withGrad = [...params].filter((p) => p.grad);
  const grads = withGrad.map((p) => p.grad!.toFloat32Array());
  let acc = 0;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) {
      const a = Math.abs(g[i]!);
      if (normType === Number.POSITIVE_INFINITY) acc = a > acc || Number.isNaN(a) ? a : acc;
      else acc += normType === 2 ? a * a : a ** normType;
    }
  }
  const total =
    normType === Number.POSITIVE_INFINITY ? acc : normType === 2 ? Math.sqrt(acc) : acc ** (1 / normType);
  if (opts.errorIfNonfinite && !Number.isFinite(total)) {
    throw new ArgumentError(`clipGradNorm: the total gradient norm is ${total} (non-finite)`);
  }
  const coef = Math.min(1, maxNorm / (total + 1e-6));
  if (coef < 1 || Number.isNaN(coef)) {
    withGrad.forEach((p, k) => {
      const g = grads[k]!;
      const scaled = new Float32Array(g.length);
      for (let i = 0; i < g.length; i++) scaled[i] = g[i]! * coef;
      p.grad = tensor(scaled, [...p.grad!.shape]);
    });
  }
  return total;
}
