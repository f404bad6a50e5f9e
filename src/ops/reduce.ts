import { getBackend, type ReduceOp } from "../backend/index.js";
import { ShapeError } from "../tensor/errors.js";
import { formatShape, normalizeDims, type Shape, shapesEqual } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { contiguousF32, fromF32, record, requireFloat } from "./core.js";
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
  if (dims.length === 0) return fromF32(contiguousF32(t).slice(), keepShape);
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
  const out = new Float32Array(outer * inner);
  getBackend().reduce(op, contiguousF32(x), outer, n, inner, out);
  return fromF32(out, keepShape);
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
  const keep = reduceRaw("sum", t, ds);
  const data = keep.storage.data as Float32Array;
  for (let i = 0; i < data.length; i++) data[i]! /= count;
  const out = finishShape(keep, reducedShape(t.shape, ds, !!opts.keepdim));
  return record(out, "mean", [t], (g) => {
    const gs = contiguousF32(g).map((v) => v / count);
    return [expand(fromF32(gs, keep.shape), t.shape)];
  });
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
  const m = mean(detachedCopy(t), ds, { keepdim: true });
  const centered = binary(t, m, (a, b) => a - b);
  const sq = centered.map((v) => v * v);
  const keep = reduceRaw("sum", fromF32(sq, t.shape), ds);
  const data = keep.storage.data as Float32Array;
  const denom = Math.max(count - correction, 0);
  for (let i = 0; i < data.length; i++) data[i]! /= denom;
  const out = finishShape(keep, reducedShape(t.shape, ds, !!opts.keepdim));
  return record(out, "var", [t], (g) => {
    const ge = contiguousF32(expand(reshape(g, keep.shape), t.shape));
    const gx = new Float32Array(t.size);
    for (let i = 0; i < gx.length; i++) gx[i] = (2 * centered[i]! * ge[i]!) / denom;
    return [fromF32(gx, t.shape)];
  });
}

function detachedCopy(t: Tensor): Tensor {
  return fromF32(contiguousF32(t), t.shape);
}

/** Elementwise a op b for `b` broadcast to a's shape (helper for var). */
function binary(a: Tensor, b: Tensor, f: (x: number, y: number) => number): Float32Array {
  const av = contiguousF32(a);
  const bv = contiguousF32(expand(b, a.shape));
  const out = new Float32Array(av.length);
  for (let i = 0; i < out.length; i++) out[i] = f(av[i]!, bv[i]!);
  return out;
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
    const x = contiguousF32(t);
    const best = contiguousF32(expand(keep, t.shape));
    const hits = new Float32Array(t.size);
    for (let i = 0; i < hits.length; i++) hits[i] = x[i] === best[i] ? 1 : 0;
    const counts = reduceRaw("sum", fromF32(hits, t.shape), ds);
    const ge = contiguousF32(expand(reshape(g, keep.shape), t.shape));
    const ce = contiguousF32(expand(counts, t.shape));
    for (let i = 0; i < hits.length; i++) hits[i] = (hits[i]! * ge[i]!) / ce[i]!;
    return [fromF32(hits, t.shape)];
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
  const ids = BigInt64Array.from(keep.storage.data as Float32Array, (v) => BigInt(v));
  return Tensor.fromStorage(ids, shape, "int64");
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
