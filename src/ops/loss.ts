import { arange, tensor } from "../tensor/create.js";
import { isFloating } from "../tensor/dtype.js";
import { ArgumentError, DTypeError, ShapeError } from "../tensor/errors.js";
import { formatShape, shapesEqual } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { requireFloat } from "./core.js";
import { add, div, mul, neg, square, sub } from "./elementwise.js";
import { binaryRaw } from "./raw.js";
import { sum } from "./reduce.js";
import { log_softmax } from "./softmax.js";
import { permute, reshape } from "./view.js";

/** How a per-element loss is reduced: averaged, summed, or returned as is. */
export type Reduction = "mean" | "sum" | "none";

function checkReduction(reduction: string, op: string): void {
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none") {
    throw new ArgumentError(`${op}: reduction must be "mean", "sum" or "none", got "${reduction}"`);
  }
}

/**
 * Mean squared error `(input - target)^2`, reduced (PyTorch's `F.mse_loss`). Unlike PyTorch, which only warns,
 * input and target must have the same shape: broadcasting them is almost always a bug.
 */
export function mse_loss(input: Tensor, target: Tensor, reduction: Reduction = "mean"): Tensor {
  checkReduction(reduction, "mse_loss");
  requireFloat(input, "mse_loss");
  requireFloat(target, "mse_loss");
  if (!shapesEqual(input.shape, target.shape)) {
    throw new ShapeError(
      `mse_loss: input ${formatShape(input.shape)} and target ${formatShape(target.shape)} must have the same shape`,
    );
  }
  const err = square(sub(input, target));
  if (reduction === "none") return err;
  const total = sum(err);
  return reduction === "sum" ? total : mul(total, 1 / input.size);
}

/** Options of {@link cross_entropy}. */
export interface CrossEntropyOptions {
  reduction?: Reduction;
  /** Target value whose positions contribute nothing (and are not counted by "mean"). Default -100. */
  ignoreIndex?: number;
  /** Mixes the target with the uniform distribution: (1 - eps) * one_hot + eps / C. Default 0. */
  labelSmoothing?: number;
}

/** Moves the class dim (1) of [N, C, *] last and flattens: [N * prod(*), C]. */
function classesLast(t: Tensor): Tensor {
  if (t.ndim <= 2) return t;
  const order = [0, ...Array.from({ length: t.ndim - 2 }, (_, i) => i + 2), 1];
  return reshape(permute(t, order), [-1, t.shape[1]!]);
}

/**
 * Cross entropy between `logits` and `target` (PyTorch's `F.cross_entropy`, = nll_loss(log_softmax(logits, 1))).
 * `logits` is [N, C], [N, C, d1, ...] or unbatched [C]. `target` is either int32/int64 class ids of shape
 * [N] / [N, d1, ...] / [] (values in [0, C) or `ignoreIndex`), or float class probabilities of logits' shape.
 * With class ids, "mean" divides by the number of non-ignored targets (NaN when all are ignored, as PyTorch).
 */
export function cross_entropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const reduction = opts.reduction ?? "mean";
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const eps = opts.labelSmoothing ?? 0;
  checkReduction(reduction, "cross_entropy");
  requireFloat(logits, "cross_entropy");
  if (!(eps >= 0 && eps <= 1)) {
    throw new ArgumentError(`cross_entropy: labelSmoothing must be in [0, 1], got ${eps}`);
  }
  if (logits.ndim === 0) {
    throw new ShapeError("cross_entropy: logits must be [C], [N, C] or [N, C, d1, ...], got a 0-d tensor");
  }
  const classDim = logits.ndim === 1 ? 0 : 1;
  const numClasses = logits.shape[classDim]!;
  // per-position shape of the unreduced loss: logits' shape without the class dim
  const lossShape = logits.shape.filter((_, i) => i !== classDim);
  const logp = classesLast(logits.ndim === 1 ? reshape(logits, [1, numClasses]) : logits);
  const rows = logp.shape[0]!;
  const logProbs = log_softmax(logp, 1);

  // the loss of row i is -sum_c W[i, c] * logp[i, c], for a weight matrix W built from the target
  let weights: Tensor;
  let count: number | Tensor;
  if (isFloating(target.dtype)) {
    if (!shapesEqual(target.shape, logits.shape)) {
      throw new ShapeError(
        `cross_entropy: class-probability target must have the logits' shape ${formatShape(logits.shape)}, got ${formatShape(target.shape)} (or pass int class ids of shape ${formatShape(lossShape)})`,
      );
    }
    const probs = classesLast(logits.ndim === 1 ? reshape(target, [1, numClasses]) : target);
    weights = eps === 0 ? probs : add(mul(probs, 1 - eps), eps / numClasses);
    count = rows;
  } else {
    if (target.dtype !== "int32" && target.dtype !== "int64") {
      throw new DTypeError(
        `cross_entropy: target must hold int32/int64 class ids or float class probabilities, got ${target.dtype}`,
      );
    }
    if (!shapesEqual(target.shape, lossShape)) {
      throw new ShapeError(
        `cross_entropy: for logits ${formatShape(logits.shape)} the class-id target must have shape ${formatShape(lossShape)}, got ${formatShape(target.shape)}`,
      );
    }
    if (target.device !== "cpu") {
      // class ids on the logits' device: one-hot rows by comparison, ignored rows zeroed (no range check here)
      const t = reshape(binaryRaw("add", target, 0), [rows, 1]);
      const valid = binaryRaw("ne", t, ignoreIndex);
      const hot = binaryRaw("eq", t, arange(0, numClasses, 1, { device: target.device }));
      const smoothed = eps === 0 ? hot : add(mul(hot, 1 - eps), eps / numClasses);
      weights = mul(smoothed, valid);
      count = sum(valid);
      return finishCrossEntropy(weights, logProbs, count, reduction, lossShape);
    }
    const ids = target.dataSync();
    const w = new Float32Array(rows * numClasses);
    const off = eps / numClasses;
    count = 0;
    for (let i = 0; i < rows; i++) {
      const t = Number(ids[i]!);
      if (t === ignoreIndex) continue;
      if (!(Number.isInteger(t) && t >= 0 && t < numClasses)) {
        throw new ArgumentError(
          `cross_entropy: target ${t} (element ${i}) is out of range for ${numClasses} classes (valid: 0..${numClasses - 1}, or ignoreIndex ${ignoreIndex})`,
        );
      }
      count++;
      if (off !== 0) w.fill(off, i * numClasses, (i + 1) * numClasses);
      w[i * numClasses + t]! += 1 - eps;
    }
    weights = tensor(w, [rows, numClasses], { device: logits.device });
  }
  return finishCrossEntropy(weights, logProbs, count, reduction, lossShape);
}

function finishCrossEntropy(
  weights: Tensor,
  logProbs: Tensor,
  count: number | Tensor,
  reduction: Reduction,
  lossShape: readonly number[],
): Tensor {
  const perRow = neg(sum(mul(weights, logProbs), 1));
  if (reduction === "none") return reshape(perRow, lossShape);
  const total = sum(perRow);
  if (reduction === "sum") return total;
  // 0 / 0 = NaN when every target is ignored, as in PyTorch
  if (typeof count !== "number") return div(total, count);
  return mul(total, count === 0 ? Number.NaN : 1 / count);
}
