import type { BinaryOp, UnaryOp } from "../backend/index.js";
import { isGradEnabled } from "../tensor/autograd.js";
import { isFloating } from "../tensor/dtype.js";
import { ArgumentError, ShapeError } from "../tensor/errors.js";
import { broadcastShapes, contiguousStrides, formatShape, shapesEqual } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import {
  allocOutput,
  backendOf,
  broadcastStrided,
  broadcastStrides,
  castBuffer,
  fromBuffer,
  fromF32,
  onDevice,
  ownElements,
  record,
  requireFloat,
  stridedF32,
} from "./core.js";
import { asTensor, binaryRaw, scalar, type TensorLike, unaryRaw } from "./raw.js";
import { sumToShape } from "./reduce.js";

export type { TensorLike } from "./raw.js";
export { binaryRaw, scalar, unaryRaw } from "./raw.js";

function unaryOp(
  op: UnaryOp,
  x: Tensor,
  grad: (g: Tensor, x: Tensor, out: Tensor) => Tensor,
  p0?: number,
  p1?: number,
): Tensor {
  requireFloat(x, op);
  const out = unaryRaw(op, x, p0, p1);
  return record(out, op, [x], (g) => [grad(g, x, out)]);
}

// --- binary arithmetic (broadcasting) ---------------------------------------------------------------------------

export function add(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw("add", ta, tb);
  return record(out, "add", [ta, tb], (g) => [sumToShape(g, ta.shape), sumToShape(g, tb.shape)]);
}

/**
 * y + residual for a layer `op` whose kernel did not add the residual itself: a ShapeError naming `op` unless the
 * residual broadcasts to y without changing its shape (each of its trailing dims equal to y's or 1).
 */
export function addResidualTo(op: string, y: Tensor, residual: Tensor): Tensor {
  const r = residual.shape;
  const fits = r.length <= y.ndim && r.every((d, i) => d === 1 || d === y.shape[y.ndim - r.length + i]);
  if (!fits) {
    throw new ShapeError(
      `${op}: the residual ${formatShape(r)} does not broadcast to the output ${formatShape(y.shape)}`,
    );
  }
  return add(y, residual);
}

/**
 * Why `target += other` cannot be done in place (null when it can): gradients recorded for an operand (autograd
 * cannot see in-place writes), a target that is not contiguous float32, or a shape the sum would change.
 */
export function inPlaceAddProblem(target: Tensor, other: TensorLike): string | null {
  const to = asTensor(other);
  if (isGradEnabled() && (target.requiresGrad || to.requiresGrad)) {
    return "an operand requires grad; in-place writes are invisible to autograd (use add)";
  }
  if (target.dtype !== "float32" || !target.isContiguous()) {
    return `the target must be contiguous float32, got ${target.dtype}${target.isContiguous() ? "" : " (strided)"}`;
  }
  if (!isFloating(to.dtype)) return `the operand must be floating point, got ${to.dtype}`;
  const shape = broadcastShapes(target.shape, to.shape);
  if (!shapesEqual(shape, target.shape)) {
    return `${formatShape(to.shape)} broadcast with the target ${formatShape(target.shape)} gives ${formatShape(shape)}`;
  }
  return null;
}

/**
 * target += other (other broadcast to target's shape), written into target's own storage; returns target. Meant
 * for a temporary nothing else holds (a layer's fresh output getting its residual): no new buffer, one pass less.
 * Throws where {@link inPlaceAddProblem} says it cannot.
 */
export function addInPlace(target: Tensor, other: TensorLike): Tensor {
  const problem = inPlaceAddProblem(target, other);
  if (problem) throw new ArgumentError(`addInPlace: ${problem}`);
  const to = asTensor(other);
  const be = backendOf("addInPlace", target, to);
  // elementwise: each element is read before it is written, so the output may be the target's own storage
  const own = ownElements(be, target);
  if (!own)
    throw new ArgumentError(`addInPlace: device ${be.device} cannot write this view of the target in place`);
  be.binary("add", stridedF32(be, target), broadcastStrided(be, to, target.shape), own, target.shape);
  return target;
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw("sub", ta, tb);
  return record(out, "sub", [ta, tb], (g) => [sumToShape(g, ta.shape), sumToShape(neg(g), tb.shape)]);
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw("mul", ta, tb);
  return record(out, "mul", [ta, tb], (g) => [
    ta.requiresGrad ? sumToShape(mul(g, tb), ta.shape) : null,
    tb.requiresGrad ? sumToShape(mul(g, ta), tb.shape) : null,
  ]);
}

export function div(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw("div", ta, tb);
  return record(out, "div", [ta, tb], (g) => [
    ta.requiresGrad ? sumToShape(div(g, tb), ta.shape) : null,
    tb.requiresGrad ? sumToShape(neg(div(mul(g, out), tb)), tb.shape) : null,
  ]);
}

/** a^b elementwise; a number exponent uses a scalar-power kernel. */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === "number" && a instanceof Tensor) {
    const p = b;
    return unaryOp("pow_scalar", a, (g, x) => mul(g, mul(unaryRaw("pow_scalar", x, p - 1), p)), p);
  }
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw("pow", ta, tb);
  return record(out, "pow", [ta, tb], (g) => [
    ta.requiresGrad ? sumToShape(mul(g, mul(tb, binaryRaw("pow", ta, sub(tb, 1)))), ta.shape) : null,
    tb.requiresGrad ? sumToShape(mul(g, mul(out, unaryRaw("log", ta))), tb.shape) : null,
  ]);
}

/** Elementwise maximum; the gradient goes to `a` where a >= b, else to `b`. */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw("maximum", ta, tb);
  return record(out, "maximum", [ta, tb], (g) => {
    const mask = binaryRaw("ge", ta, tb);
    return [sumToShape(mul(g, mask), ta.shape), sumToShape(mul(g, sub(1, mask)), tb.shape)];
  });
}

/** Elementwise minimum; the gradient goes to `a` where a <= b, else to `b`. */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw("minimum", ta, tb);
  return record(out, "minimum", [ta, tb], (g) => {
    const mask = binaryRaw("le", ta, tb);
    return [sumToShape(mul(g, mask), ta.shape), sumToShape(mul(g, sub(1, mask)), tb.shape)];
  });
}

// --- comparisons (no gradient; results are 0/1 bool tensors) ----------------------------------------------------

function compare(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  const f = binaryRaw(op, a, b);
  const be = backendOf(op, f);
  return fromBuffer(be, castBuffer(be, f, "bool"), f.shape, "bool");
}
export const eq = (a: TensorLike, b: TensorLike): Tensor => compare("eq", a, b);
export const ne = (a: TensorLike, b: TensorLike): Tensor => compare("ne", a, b);
export const lt = (a: TensorLike, b: TensorLike): Tensor => compare("lt", a, b);
export const le = (a: TensorLike, b: TensorLike): Tensor => compare("le", a, b);
export const gt = (a: TensorLike, b: TensorLike): Tensor => compare("gt", a, b);
export const ge = (a: TensorLike, b: TensorLike): Tensor => compare("ge", a, b);

// --- unary ------------------------------------------------------------------------------------------------------

export const neg = (x: Tensor): Tensor => unaryOp("neg", x, (g) => neg(g));
export const exp = (x: Tensor): Tensor => unaryOp("exp", x, (g, _x, out) => mul(g, out));
export const log = (x: Tensor): Tensor => unaryOp("log", x, (g, xx) => div(g, xx));
export const sqrt = (x: Tensor): Tensor => unaryOp("sqrt", x, (g, _x, out) => div(mul(g, 0.5), out));
/** 1 / sqrt(x) */
export const rsqrt = (x: Tensor): Tensor =>
  unaryOp("rsqrt", x, (g, _x, out) => mul(g, mul(unaryRaw("pow_scalar", out, 3), -0.5)));
export const abs = (x: Tensor): Tensor => unaryOp("abs", x, (g, xx) => mul(g, unaryRaw("sign", xx)));
export const sign = (x: Tensor): Tensor => unaryOp("sign", x, (g) => mul(g, 0));
export const tanh = (x: Tensor): Tensor =>
  unaryOp("tanh", x, (g, _x, out) => mul(g, unaryRaw("affine", unaryRaw("square", out), -1, 1)));
export const sigmoid = (x: Tensor): Tensor =>
  unaryOp("sigmoid", x, (g, _x, out) => mul(g, mul(out, unaryRaw("affine", out, -1, 1))));
/** x * sigmoid(x) */
export const silu = (x: Tensor): Tensor => unaryOp("silu", x, (g, xx) => mul(g, unaryRaw("silu_grad", xx)));
export const relu = (x: Tensor): Tensor => unaryOp("relu", x, (g, xx) => mul(g, binaryRaw("gt", xx, 0)));
export const sin = (x: Tensor): Tensor => unaryOp("sin", x, (g, xx) => mul(g, unaryRaw("cos", xx)));
export const cos = (x: Tensor): Tensor =>
  unaryOp("cos", x, (g, xx) => mul(g, unaryRaw("affine", unaryRaw("sin", xx), -1, 0)));
export const square = (x: Tensor): Tensor => unaryOp("square", x, (g, xx) => mul(g, mul(xx, 2)));
export const reciprocal = (x: Tensor): Tensor =>
  unaryOp("reciprocal", x, (g, _x, out) => neg(mul(g, unaryRaw("square", out))));
export const floor = (x: Tensor): Tensor => unaryOp("floor", x, (g) => mul(g, 0));
export const ceil = (x: Tensor): Tensor => unaryOp("ceil", x, (g) => mul(g, 0));
/** Round half to even (torch.round). */
export const round = (x: Tensor): Tensor => unaryOp("round", x, (g) => mul(g, 0));
export const erf = (x: Tensor): Tensor =>
  unaryOp("erf", x, (g, xx) =>
    mul(g, mul(unaryRaw("exp", unaryRaw("affine", unaryRaw("square", xx), -1, 0)), 2 / Math.sqrt(Math.PI))),
  );

/** GELU: exact erf form (`approximate: "none"`, the default) or the tanh approximation. */
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  if (approximate !== "none" && approximate !== "tanh") {
    throw new ArgumentError(`gelu: approximate must be "none" or "tanh", got ${JSON.stringify(approximate)}`);
  }
  if (approximate === "tanh")
    return unaryOp("gelu_tanh", x, (g, xx) => mul(g, unaryRaw("gelu_tanh_grad", xx)));
  return unaryOp("gelu", x, (g, xx) => mul(g, unaryRaw("gelu_grad", xx)));
}

/** Clamps to [min, max] (either bound may be omitted). The gradient passes where min <= x <= max. */
export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  const lo = min ?? Number.NEGATIVE_INFINITY;
  const hi = max ?? Number.POSITIVE_INFINITY;
  return unaryOp(
    "clamp",
    x,
    (g, xx) => mul(g, binaryRaw("mul", binaryRaw("ge", xx, lo), binaryRaw("le", xx, hi))),
    lo,
    hi,
  );
}

/** scale * x + shift in one pass. */
export function affine(x: Tensor, scale: number, shift: number): Tensor {
  return unaryOp("affine", x, (g) => mul(g, scale), scale, shift);
}

/** cond ? a : b with broadcasting; cond is a bool/uint8 (or any) tensor, non-zero meaning true. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const shape = broadcastShapes(broadcastShapes(cond.shape, ta.shape), tb.shape);
  let n = 1;
  for (const d of shape) n *= d;
  const be = backendOf("where", cond, ta, tb);
  // the kernel reads 0/1 bytes: bool conditions are used in place, others are converted
  const c = onDevice(be, cond);
  const condView =
    c.dtype === "bool"
      ? { data: c.storage.buffer, offset: c.offset, strides: c.strides }
      : { data: castBuffer(be, c, "bool"), offset: 0, strides: contiguousStrides(c.shape) };
  const out = allocOutput(be, n);
  be.where(
    {
      data: condView.data,
      offset: condView.offset,
      strides: broadcastStrides(cond.shape, condView.strides, shape),
    },
    broadcastStrided(be, ta, shape),
    broadcastStrided(be, tb, shape),
    out,
    shape,
  );
  const result = fromF32(be, out, shape);
  return record(result, "where", [null, ta, tb], (g) => {
    const zero = scalar(0);
    return [null, sumToShape(where(cond, g, zero), ta.shape), sumToShape(where(cond, zero, g), tb.shape)];
  });
}
