import type { StorageArray } from "../../tensor/dtype.js";
import type { Backend, BinaryOp, StridedAny, StridedF32, UnaryOp } from "../backend.js";

type Strided<T> = { readonly data: T; readonly offset: number; readonly strides: readonly number[] };

/**
 * Calls `visit(o, i0, i1, ...)` for every output element `o` (row-major) with the element offsets of each
 * strided input. Up to three inputs; the innermost dim is a tight loop.
 */
function forEachStrided(
  shape: readonly number[],
  views: readonly Strided<unknown>[],
  visit: (o: number, p0: number, p1: number, p2: number) => void,
): void {
  const nd = shape.length;
  let n = 1;
  for (const d of shape) n *= d;
  if (n === 0) return;
  const s0 = views[0]?.strides ?? [];
  const s1 = views[1]?.strides ?? [];
  const s2 = views[2]?.strides ?? [];
  let p0 = views[0]?.offset ?? 0;
  let p1 = views[1]?.offset ?? 0;
  let p2 = views[2]?.offset ?? 0;
  if (nd === 0) {
    visit(0, p0, p1, p2);
    return;
  }
  const last = nd - 1;
  const inner = shape[last]!;
  const i0 = s0[last] ?? 0;
  const i1 = s1[last] ?? 0;
  const i2 = s2[last] ?? 0;
  const idx = new Array<number>(nd).fill(0);
  let o = 0;
  for (;;) {
    for (let j = 0, q0 = p0, q1 = p1, q2 = p2; j < inner; j++, q0 += i0, q1 += i1, q2 += i2)
      visit(o++, q0, q1, q2);
    let d = last - 1;
    for (; d >= 0; d--) {
      idx[d]!++;
      p0 += s0[d] ?? 0;
      p1 += s1[d] ?? 0;
      p2 += s2[d] ?? 0;
      if (idx[d]! < shape[d]!) break;
      p0 -= (s0[d] ?? 0) * shape[d]!;
      p1 -= (s1[d] ?? 0) * shape[d]!;
      p2 -= (s2[d] ?? 0) * shape[d]!;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

function isDense(shape: readonly number[], v: Strided<unknown>): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && v.strides[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

// Abramowitz-Stegun 7.1.26 is too coarse for GELU parity; use a series/continued-fraction erf accurate to ~1e-15.
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax === Number.POSITIVE_INFINITY) return x < 0 ? -1 : 1;
  if (ax < 2.5) {
    // Maclaurin series: erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 80; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  // erfc continued fraction (Lentz) for large |x|
  const z = ax;
  let f = z;
  let c = z;
  let d = 0;
  for (let k = 1; k < 200; k++) {
    const a = k / 2;
    d = z + a * d;
    d = 1 / d;
    c = z + a / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-z * z) / (f * Math.sqrt(Math.PI));
  const r = 1 - erfc;
  return x < 0 ? -r : r;
}

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

function unaryFn(op: UnaryOp, p0: number, p1: number): (x: number) => number {
  switch (op) {
    case "neg":
      return (x) => -x;
    case "exp":
      return Math.exp;
    case "log":
      return Math.log;
    case "sqrt":
      return Math.sqrt;
    case "rsqrt":
      return (x) => 1 / Math.sqrt(x);
    case "abs":
      return Math.abs;
    case "sign":
      return (x) => (x > 0 ? 1 : x < 0 ? -1 : x);
    case "tanh":
      return Math.tanh;
    case "sigmoid":
      return (x) => 1 / (1 + Math.exp(-x));
    case "silu":
      return (x) => x / (1 + Math.exp(-x));
    case "silu_grad":
      return (x) => {
        const s = 1 / (1 + Math.exp(-x));
        return s * (1 + x * (1 - s));
      };
    case "gelu":
      return (x) => 0.5 * x * (1 + erf(x * SQRT1_2));
    case "gelu_grad":
      return (x) => 0.5 * (1 + erf(x * SQRT1_2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    case "gelu_tanh":
      return (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case "gelu_tanh_grad":
      return (x) => {
        const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
        const t = Math.tanh(u);
        const du = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du;
      };
    case "erf":
      return erf;
    case "relu":
      return (x) => Math.max(x, 0);
    case "sin":
      return Math.sin;
    case "cos":
      return Math.cos;
    case "square":
      return (x) => x * x;
    case "reciprocal":
      return (x) => 1 / x;
    case "floor":
      return Math.floor;
    case "ceil":
      return Math.ceil;
    case "round":
      // round half to even, as torch.round
      return (x) => {
        const r = Math.round(x);
        return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
      };
    case "pow_scalar":
      return (x) => x ** p0;
    case "clamp":
      return (x) => (x < p0 ? p0 : Math.min(x, p1));
    case "affine":
      return (x) => p0 * x + p1;
  }
}

function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case "add":
      return (a, b) => a + b;
    case "sub":
      return (a, b) => a - b;
    case "mul":
      return (a, b) => a * b;
    case "div":
      return (a, b) => a / b;
    case "pow":
      return (a, b) => a ** b;
    case "maximum":
      return (a, b) => (a > b || Number.isNaN(a) ? a : b);
    case "minimum":
      return (a, b) => (a < b || Number.isNaN(a) ? a : b);
    case "eq":
      return (a, b) => (a === b ? 1 : 0);
    case "ne":
      return (a, b) => (a !== b ? 1 : 0);
    case "lt":
      return (a, b) => (a < b ? 1 : 0);
    case "le":
      return (a, b) => (a <= b ? 1 : 0);
    case "gt":
      return (a, b) => (a > b ? 1 : 0);
    case "ge":
      return (a, b) => (a >= b ? 1 : 0);
  }
}

export const elementwiseKernels: Pick<Backend, "copy" | "unary" | "binary" | "where" | "geglu"> = {
  geglu(x, out, rows, half) {
    for (let r = 0; r < rows; r++) {
      const a = r * 2 * half;
      for (let j = 0; j < half; j++) {
        const g = x[a + half + j]!;
        out[r * half + j] = x[a + j]! * (0.5 * g * (1 + erf(g * SQRT1_2)));
      }
    }
  },

  copy(src: StridedAny, dst: StridedAny, shape: readonly number[]): void {
    const s = src.data as StorageArray & { [i: number]: number | bigint };
    const d = dst.data as StorageArray & { [i: number]: number | bigint };
    if (isDense(shape, src) && isDense(shape, dst)) {
      let n = 1;
      for (const x of shape) n *= x;
      (d as Float32Array).set((s as Float32Array).subarray(src.offset, src.offset + n), dst.offset);
      return;
    }
    forEachStrided(shape, [src, dst], (_o, ps, pd) => {
      d[pd] = s[ps]!;
    });
  },

  unary(op, x: StridedF32, out, shape, p0 = 0, p1 = 0): void {
    const f = unaryFn(op, p0, p1);
    const xd = x.data;
    if (isDense(shape, x)) {
      const n = out.length;
      for (let i = 0, p = x.offset; i < n; i++, p++) out[i] = f(xd[p]!);
      return;
    }
    forEachStrided(shape, [x], (o, p) => {
      out[o] = f(xd[p]!);
    });
  },

  binary(op, a: StridedF32, b: StridedF32, out, shape): void {
    const f = binaryFn(op);
    const ad = a.data;
    const bd = b.data;
    if (isDense(shape, a) && isDense(shape, b)) {
      const n = out.length;
      for (let i = 0, pa = a.offset, pb = b.offset; i < n; i++) out[i] = f(ad[pa++]!, bd[pb++]!);
      return;
    }
    forEachStrided(shape, [a, b], (o, pa, pb) => {
      out[o] = f(ad[pa]!, bd[pb]!);
    });
  },

  where(cond, a, b, out, shape): void {
    const cd = cond.data;
    const ad = a.data;
    const bd = b.data;
    forEachStrided(shape, [cond, a, b], (o, pc, pa, pb) => {
      out[o] = cd[pc] ? ad[pa]! : bd[pb]!;
    });
  },
};
