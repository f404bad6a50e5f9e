import { ShapeError } from "./errors.js";

export type Shape = readonly number[];

/** Number of elements of a shape (1 for a scalar). */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a contiguous tensor of this shape. */
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Checks a shape is a list of non-negative integers. */
export function checkShape(shape: Shape, what = "shape"): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${what} must hold non-negative integers, got ${formatShape(shape)}`);
    }
  }
}

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast together`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Resolves a possibly negative dim against `ndim`. */
export function normalizeDim(dim: number, ndim: number, what = "dim"): number {
  const d = dim < 0 ? dim + ndim : dim;
  if (!Number.isInteger(d) || d < 0 || d >= Math.max(ndim, 1)) {
    throw new ShapeError(`${what} ${dim} is out of range for a tensor with ${ndim} dimension(s)`);
  }
  return d;
}

/** Resolves a dims argument (undefined = all dims) into a sorted list of distinct dims. */
export function normalizeDims(dims: number | readonly number[] | undefined, ndim: number): number[] {
  if (dims === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof dims === "number" ? [dims] : dims;
  const out = [...new Set(list.map((d) => normalizeDim(d, ndim)))].sort((x, y) => x - y);
  if (out.length !== list.length) throw new ShapeError(`repeated dim in ${JSON.stringify(dims)}`);
  return out;
}

/** Resolves one -1 entry of a reshape target against the element count. */
export function inferShape(shape: Shape, size: number): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    if (out.indexOf(-1, neg + 1) >= 0) throw new ShapeError(`only one -1 allowed in ${formatShape(shape)}`);
    const rest = sizeOf(out.filter((_, i) => i !== neg));
    if (rest === 0 || size % rest !== 0) {
      throw new ShapeError(`cannot reshape ${size} elements into ${formatShape(shape)}`);
    }
    out[neg] = size / rest;
  }
  checkShape(out);
  if (sizeOf(out) !== size)
    throw new ShapeError(`cannot reshape ${size} elements into ${formatShape(shape)}`);
  return out;
}
