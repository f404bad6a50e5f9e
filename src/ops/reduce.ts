import type { ReduceOp } from "../backend/index.js";
import { ShapeError } from "../tensor/errors.js";
import { formatShape, normalizeDims, type Shape, shapesEqual } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import {
  allocOutput,
  backendOf,
  castBuffer,
  contiguousF32,
  fromBuffer,
  fromF32,
  record,
  requireFloat,
} from "./core.js";
import { binaryRaw } from "./raw.js";
import { permute, reshape } from "./view.js";

/** Options of the reductions. */
export interface ReduceOptions {
  keepdim?: boolean;
}

function reducedShape(shape: Shape, dims: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!dims.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/** Runs a reduce kernel over `dims` (no autograd); the result has the keepdim shape. */
function reduceRaw(op: ReduceOp, t: Tensor, dims: readonly number[]): Tensor {
  const keepShape = reducedShape(t.shape, dims, true);
  const be = backendOf(op, t);
  if (dims.length === 0) return fromF32(be, castBuffer(be, t, "float32"), keepShape);
  let x = t;
  const run = dims.every((d, i) => i === 0 || d === dims[i - 1]! + 1);
  let outer: number;
  let n: number;
  let inner: number;
  if (run) {
    const first = dims[0]!;
    const last = dims[dims.length - 1]!;
    outer = t.shape.slice(0, first).reduce((a, b) => a * b, 1);
    n = t.shape.slice(first, last + 1).reduce((a, b) => a * b, 1);
    inner = t.shape.slice(last + 1).reduce((a, b) => a * b, 1);
  } else {
    const kept = t.shape.map((_, i) => i).filter((i) => !dims.includes(i));
    x = permute(t, [...kept, ...dims]);
    outer = kept.reduce((a, i) => a * t.shape[i]!, 1);
    n = dims.reduce((a, i) => a * t.shape[i]!, 1);
    inner = 1;
  }
  if (n === 0 && op !== "sum") {
    throw new ShapeError(`${op} over an empty dimension of a tensor of shape ${formatShape(t.shape)}`);
  }
  const out = allocOutput(be, outer * inner);
  be.reduce(op, contiguousF32(be, x), outer, n, inner, out);
  return fromF32(be, out, keepShape);
}

function finishShape(t: Tensor, shape: Shape): Tensor {
  return shapesEqual(t.shape, shape) ? t : reshape(t, shape);
}

/** Sum over `dims` (all when omitted). */
export function sum(t: Tensor, dims?: number | readonly number[], opts: ReduceOptions = {}): Tensor {
  requireFloat(t, "sum");
  const ds = normalizeDims(dims, t.ndim);
  const keep = reduceRaw("sum", t, ds);
  const out = finishShape(keep, reducedShape(t.shape, ds, !!opts.keepdim));
  return record(out, "sum", [t], (g) => [expand(reshape(g, keep.shape), t.shape)]);
}

/** Mean over `dims` (all when omitted). */
export function mean(t: Tensor, dims?: number | readonly number[], opts: ReduceOptions = {}): Tensor {
  requireFloat(t, "mean");
  const ds = normalizeDims(dims, t.ndim);
  const count = ds.reduce((a, d) => a * t.shape[d]!, 1);
  const keep = binaryRaw("div", reduceRaw("sum", t, ds), count);
  const out = finishShape(keep, reducedShape(t.shape, ds, !!opts.keepdim));
  return record(out, "mean", [t], (g) => [expand(reshape(binaryRaw("div", g, count), keep.shape), t.shape)]);
}

/** Variance over `dims` with Bessel's `correction` (1 = unbiased, PyTorch's default; 0 = population). */
export function variance(
  t: Tensor,
  dims?: number | readonly number[],
  opts: ReduceOptions & { correction?: number } = {},
): Tensor {
  requireFloat(t, "var");
  const ds = normalizeDims(dims, t.ndim);
  const correction = opts.correction ?? 1;
  const count = ds.reduce((a, d) => a * t.shape[d]!, 1);
  const m = binaryRaw("div", reduceRaw("sum", t, ds), count);
  const centered = binaryRaw("sub", t, m);
  const keep = reduceRaw("sum", binaryRaw("mul", centered, centered), ds);
  const denom = Math.max(count - correction, 0);
  const out = finishShape(binaryRaw("div", keep, denom), reducedShape(t.shape, ds, !!opts.keepdim));
  return record(out, "var", [t], (g) => {
    // d var / dx = 2 (x - mean) / denom
    const ge = binaryRaw("mul", centered, reshape(g, keep.shape));
    return [binaryRaw("div", ge, denom / 2)];
  });
}

function extremum(
  op: "max" | "min",
  t: Tensor,
  dims: number | readonly number[] | undefined,
  opts: ReduceOptions,
) {
  requireFloat(t, op);
  const ds = normalizeDims(dims, t.ndim);
  const keep = reduceRaw(op, t, ds);
  const out = finishShape(keep, reducedShape(t.shape, ds, !!opts.keepdim));
  return record(out, op, [t], (g) => {
    // the gradient is shared evenly among the positions that attain the extremum (as torch.amax)
    const hits = binaryRaw("eq", t, keep);
    const counts = reduceRaw("sum", hits, ds);
    return [binaryRaw("div", binaryRaw("mul", hits, reshape(g, keep.shape)), counts)];
  });
}

/** Maximum over `dims` (all when omitted). */
export function max(t: Tensor, dims?: number | readonly number[], opts: ReduceOptions = {}): Tensor {
  return extremum("max", t, dims, opts);
}

/** Minimum over `dims` (all when omitted). */
export function min(t: Tensor, dims?: number | readonly number[], opts: ReduceOptions = {}): Tensor {
  return extremum("min", t, dims, opts);
}

function argExtremum(
  op: "argmax" | "argmin",
  t: Tensor,
  dim: number | undefined,
  opts: ReduceOptions,
): Tensor {
  const flat = dim === undefined;
  const src = flat ? reshape(t, [t.size]) : t;
  const ds = normalizeDims(flat ? 0 : dim, src.ndim);
  const keep = reduceRaw(op, src, ds);
  const shape = flat ? [] : reducedShape(src.shape, ds, !!opts.keepdim);
  const be = backendOf(op, keep);
  return fromBuffer(be, castBuffer(be, keep, "int64"), shape, "int64");
}

/** Index of the maximum along `dim` (of the flattened tensor when omitted), as int64. */
export function argmax(t: Tensor, dim?: number, opts: ReduceOptions = {}): Tensor {
  return argExtremum("argmax", t, dim, opts);
}

/** Index of the minimum along `dim` (of the flattened tensor when omitted), as int64. */
export function argmin(t: Tensor, dim?: number, opts: ReduceOptions = {}): Tensor {
  return argExtremum("argmin", t, dim, opts);
}

/** Broadcasts `t` to `shape` without copying (stride 0 on broadcast dims). */
export function expand(t: Tensor, shape: Shape): Tensor {
  const nd = shape.length;
  if (nd < t.ndim)
    throw new ShapeError(`expand: cannot expand ${formatShape(t.shape)} to fewer dims ${formatShape(shape)}`);
  const target = new Array<number>(nd);
  const strides = new Array<number>(nd);
  for (let i = 0; i < nd; i++) {
    const j = i - (nd - t.ndim);
    const want = shape[i]!;
    const have = j >= 0 ? t.shape[j]! : 1;
    const size = want === -1 ? have : want;
    if (have !== size && have !== 1) {
      throw new ShapeError(`expand: cannot expand ${formatShape(t.shape)} to ${formatShape(shape)}`);
    }
    target[i] = size;
    strides[i] = j < 0 || (have === 1 && size !== 1) ? 0 : t.strides[j]!;
  }
  if (shapesEqual(target, t.shape)) return t;
  const out = new Tensor(t.storage, target, t.dtype, strides, t.offset);
  return record(out, "expand", [t], (g) => [sumToShape(g, t.shape)]);
}

/** Sums a broadcast gradient back down to `shape` (the inverse of broadcasting). */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (shapesEqual(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  }
  const s = dims.length ? sum(g, dims, { keepdim: true }) : g;
  return reshape(s, shape);
}
