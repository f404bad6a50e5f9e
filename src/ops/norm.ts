import { isGradEnabled } from "../tensor/autograd.js";
import { ArgumentError, ShapeError } from "../tensor/errors.js";
import { formatShape, type Shape, shapesEqual, sizeOf } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { allocOutput, allocZeros, backendOf, contiguousF32, fromF32, record, requireFloat } from "./core.js";
import { silu } from "./elementwise.js";

function checkAffine(t: Tensor | null | undefined, shape: Shape, op: string, what: string): void {
  if (!t) return;
  requireFloat(t, op);
  if (!shapesEqual(t.shape, shape)) {
    throw new ShapeError(`${op}: ${what} must be ${formatShape(shape)}, got ${formatShape(t.shape)}`);
  }
}

function groupNormImpl(
  x: Tensor,
  numGroups: number,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  fuseSilu: boolean,
  op: string,
): Tensor {
  requireFloat(x, op);
  if (x.ndim < 2) throw new ShapeError(`${op}: input must be [N, C, *], got ${formatShape(x.shape)}`);
  const n = x.shape[0]!;
  const c = x.shape[1]!;
  if (!Number.isInteger(numGroups) || numGroups < 1 || c % numGroups !== 0) {
    throw new ArgumentError(`${op}: ${c} channels cannot be split into numGroups=${numGroups} equal groups`);
  }
  checkAffine(weight, [c], op, "weight");
  checkAffine(bias, [c], op, "bias");
  const spatial = sizeOf(x.shape.slice(2));
  const be = backendOf(op, x, weight, bias);
  const xd = contiguousF32(be, x);
  const wd = weight ? contiguousF32(be, weight) : null;
  const out = allocOutput(be, x.size);
  const mean = allocOutput(be, n * numGroups);
  const rstd = allocOutput(be, n * numGroups);
  be.groupNorm(
    xd,
    wd,
    bias ? contiguousF32(be, bias) : null,
    out,
    mean,
    rstd,
    n,
    c,
    spatial,
    numGroups,
    eps,
    fuseSilu,
  );
  const y = fromF32(be, out, x.shape);
  if (fuseSilu) return y;
  return record(y, "group_norm", [x, weight, bias], (g) => {
    const gx = allocZeros(be, x.size);
    const gw = weight?.requiresGrad ? allocZeros(be, c) : null;
    const gb = bias?.requiresGrad ? allocZeros(be, c) : null;
    be.groupNormBackward(contiguousF32(be, g), xd, wd, mean, rstd, gx, gw, gb, n, c, spatial, numGroups);
    return [
      x.requiresGrad ? fromF32(be, gx, x.shape) : null,
      gw && fromF32(be, gw, [c]),
      gb && fromF32(be, gb, [c]),
    ];
  });
}

/**
 * Group normalisation of x [N, C, *]: the channels are split into `numGroups` groups, each (sample, group) is
 * normalised to zero mean and unit (biased) variance, then scaled by weight [C] and shifted by bias [C].
 */
export function group_norm(
  x: Tensor,
  numGroups: number,
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  return groupNormImpl(x, numGroups, weight ?? null, bias ?? null, eps, false, "group_norm");
}

/**
 * silu(group_norm(x, ...)), the pattern of every diffusers ResNet block. Without autograd it runs as one fused
 * kernel; when a gradient is needed it is the composition of the two differentiable ops.
 */
export function group_norm_silu(
  x: Tensor,
  numGroups: number,
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  const needsGraph = isGradEnabled() && [x, weight, bias].some((t) => t?.requiresGrad);
  if (needsGraph) return silu(group_norm(x, numGroups, weight, bias, eps));
  return groupNormImpl(x, numGroups, weight ?? null, bias ?? null, eps, true, "group_norm_silu");
}

/**
 * Layer normalisation over the trailing dims `normalizedShape` of x, with optional elementwise weight and bias
 * of shape `normalizedShape`.
 */
export function layer_norm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  requireFloat(x, "layer_norm");
  const ns = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
  const tail = x.shape.slice(x.ndim - ns.length);
  if (ns.length === 0 || ns.length > x.ndim || !shapesEqual(tail, ns)) {
    throw new ShapeError(
      `layer_norm: normalizedShape ${formatShape(ns)} must match the trailing dims of the input ${formatShape(x.shape)}`,
    );
  }
  checkAffine(weight, ns, "layer_norm", "weight");
  checkAffine(bias, ns, "layer_norm", "bias");
  const cols = sizeOf(ns);
  const rows = cols === 0 ? 0 : x.size / cols;
  const be = backendOf("layer_norm", x, weight, bias);
  const xd = contiguousF32(be, x);
  const wd = weight ? contiguousF32(be, weight) : null;
  const out = allocOutput(be, x.size);
  const mean = allocOutput(be, rows);
  const rstd = allocOutput(be, rows);
  be.layerNorm(xd, wd, bias ? contiguousF32(be, bias) : null, out, mean, rstd, rows, cols, eps);
  const y = fromF32(be, out, x.shape);
  return record(y, "layer_norm", [x, weight ?? null, bias ?? null], (g) => {
    const gx = allocZeros(be, x.size);
    const gw = weight?.requiresGrad ? allocZeros(be, cols) : null;
    const gb = bias?.requiresGrad ? allocZeros(be, cols) : null;
    be.layerNormBackward(contiguousF32(be, g), xd, wd, mean, rstd, gx, gw, gb, rows, cols);
    return [
      x.requiresGrad ? fromF32(be, gx, x.shape) : null,
      gw && fromF32(be, gw, ns),
      gb && fromF32(be, gb, ns),
    ];
  });
}
