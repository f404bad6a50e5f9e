// Elementwise kernels from one generator: unary and binary math and where over strided, broadcast views (addressed
// from the parameter block, see wgsl.ts), into contiguous outputs; with the conversions (convert.ts) and the
// training updates (update.ts) they make the backend's elementwise set.
import type { Backend, BinaryOp, BufferTypes, StridedF32, UnaryOp } from "../backend.js";
import { convertKernels } from "./convert.js";
import { MATH } from "./math.js";
import { gpuBuffer } from "./memory.js";
import { entry1d, type GpuRuntime, Params } from "./runtime.js";
import { updateKernels } from "./update.js";
import { declare, loadBits, SLOT_EXTRA, STRIDED, writeStrided } from "./wgsl.js";

/** WGSL bodies of the unary ops (x is the input, p0/p1 the op's numbers). */
const UNARY: Record<UnaryOp, string> = {
  neg: "-x",
  exp: "exp(x)",
  // outside their domain WGSL's builtins are indeterminate (SwiftShader's log(-x) is log|x|): NaN, as IEEE
  log: "select(log(x), nan(), x < 0.0)",
  sqrt: "select(sqrt(x), nan(), x < 0.0)",
  rsqrt: "select(1.0 / sqrt(x), nan(), x < 0.0)",
  abs: "abs(x)",
  sign: "select(select(x, -1.0, x < 0.0), 1.0, x > 0.0)",
  tanh: "safeTanh(x)",
  sigmoid: "1.0 / (1.0 + exp(-x))",
  silu: "x / (1.0 + exp(-x))",
  silu_grad: "siluGrad(x)",
  gelu: "0.5 * x * (1.0 + erf(x * 0.7071067811865476))",
  gelu_grad: "0.5 * (1.0 + erf(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x)",
  gelu_tanh: "0.5 * x * (1.0 + safeTanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))",
  gelu_tanh_grad: "geluTanhGrad(x)",
  erf: "erf(x)",
  relu: "max(x, 0.0)",
  sin: "sinCos(x).x",
  cos: "sinCos(x).y",
  square: "x * x",
  reciprocal: "1.0 / x",
  floor: "floor(x)",
  ceil: "ceil(x)",
  round: "round(x)",
  pow_scalar: "select(powf(x, p0), 1.0, p0 == 0.0)",
  clamp: "select(min(x, p1), p0, x < p0)",
  affine: "p0 * x + p1",
};

/** Binary ops whose result is NaN when an operand is (pow keeps JavaScript's NaN^0 = 1 in powf). */
const ARITHMETIC = new Set<BinaryOp>(["add", "sub", "mul", "div"]);

const BINARY: Record<BinaryOp, string> = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  pow: "powf(a, b)",
  maximum: "select(max(a, b), nan(), isNan(a) || isNan(b))",
  minimum: "select(min(a, b), nan(), isNan(a) || isNan(b))",
  // comparisons with a NaN are false (ne: true), whatever the compiler assumes about NaNs
  eq: "select(select(0.0, 1.0, a == b), 0.0, isNan(a) || isNan(b))",
  ne: "select(select(0.0, 1.0, a != b), 1.0, isNan(a) || isNan(b))",
  lt: "select(select(0.0, 1.0, a < b), 0.0, isNan(a) || isNan(b))",
  le: "select(select(0.0, 1.0, a <= b), 0.0, isNan(a) || isNan(b))",
  gt: "select(select(0.0, 1.0, a > b), 0.0, isNan(a) || isNan(b))",
  ge: "select(select(0.0, 1.0, a >= b), 0.0, isNan(a) || isNan(b))",
};

type Bufs = BufferTypes & { f32: unknown; any: unknown };
const f32Offset = (data: unknown, offset: number): number => gpuBuffer(data).first(4) + offset;

/** Elementwise math (unary, binary, where), copies / casts / fills and the update kernels on `rt`. */
export function elementwiseKernels(
  rt: GpuRuntime,
): Pick<Backend<Bufs>, "unary" | "binary" | "where" | "copy" | "cast" | "fill" | "adamw" | "sgd" | "lerpTo"> {
  const unaryPipe = (op: UnaryOp) =>
    rt.pipeline(`unary:${op}`, () =>
      [
        declare(1, "x", "array<f32>", false),
        declare(2, "out", "array<f32>", true),
        STRIDED,
        MATH,
        entry1d(`  if (gid >= pu(0u)) { return; }
  let x = x[stridedOffset(0u, gid)];
  let p0 = pf(${SLOT_EXTRA + 1}u);
  let p1 = pf(${SLOT_EXTRA + 2}u);
  // a NaN input gives NaN (x^0 gives 1, as in JavaScript and PyTorch)
  out[pu(${SLOT_EXTRA}u) + gid] = ${op === "pow_scalar" ? UNARY[op] : `select(${UNARY[op]}, x, isNan(x))`};`),
      ].join("\n"),
    );
  const binaryPipe = (op: BinaryOp) =>
    rt.pipeline(`binary:${op}`, () =>
      [
        declare(1, "a", "array<f32>", false),
        declare(2, "b", "array<f32>", false),
        declare(3, "out", "array<f32>", true),
        STRIDED,
        MATH,
        entry1d(`  if (gid >= pu(0u)) { return; }
  let a = a[stridedOffset(0u, gid)];
  let b = b[stridedOffset(1u, gid)];
  out[pu(${SLOT_EXTRA}u) + gid] = ${ARITHMETIC.has(op) ? `select(${BINARY[op]}, nan(), isNan(a) || isNan(b))` : BINARY[op]};`),
      ].join("\n"),
    );

  return {
    unary(op: UnaryOp, x: StridedF32<Bufs>, out: unknown, shape: readonly number[], p0 = 0, p1 = 0): void {
      const p = new Params();
      const n = writeStrided(p, shape, [{ offset: f32Offset(x.data, x.offset), strides: x.strides }]);
      if (n === 0) return;
      p.at(SLOT_EXTRA).u(f32Offset(out, 0)).f(p0).f(p1);
      const o = gpuBuffer(out);
      rt.dispatch(unaryPipe(op), p, [{ buffer: gpuBuffer(x.data).gpu }, { buffer: o.gpu, write: true }], {
        threads: n,
      });
    },

    binary(
      op: BinaryOp,
      a: StridedF32<Bufs>,
      b: StridedF32<Bufs>,
      out: unknown,
      shape: readonly number[],
    ): void {
      const p = new Params();
      const n = writeStrided(p, shape, [
        { offset: f32Offset(a.data, a.offset), strides: a.strides },
        { offset: f32Offset(b.data, b.offset), strides: b.strides },
      ]);
      if (n === 0) return;
      p.at(SLOT_EXTRA).u(f32Offset(out, 0));
      rt.dispatch(
        binaryPipe(op),
        p,
        [
          { buffer: gpuBuffer(a.data).gpu },
          { buffer: gpuBuffer(b.data).gpu },
          { buffer: gpuBuffer(out).gpu, write: true },
        ],
        { threads: n },
      );
    },

    where(cond, a, b, out, shape): void {
      const p = new Params();
      const n = writeStrided(p, shape, [
        { offset: gpuBuffer(cond.data).first(1) + cond.offset, strides: cond.strides },
        { offset: f32Offset(a.data, a.offset), strides: a.strides },
        { offset: f32Offset(b.data, b.offset), strides: b.strides },
      ]);
      if (n === 0) return;
      p.at(SLOT_EXTRA).u(f32Offset(out, 0));
      const pipe = rt.pipeline("where", () =>
        [
          declare(1, "cond", "array<u32>", false),
          declare(2, "a", "array<f32>", false),
          declare(3, "b", "array<f32>", false),
          declare(4, "out", "array<f32>", true),
          STRIDED,
          loadBits("cond", 1),
          entry1d(`  if (gid >= pu(0u)) { return; }
  let c = load_cond(u32(stridedOffset(0u, gid)));
  out[pu(${SLOT_EXTRA}u) + gid] = select(b[stridedOffset(2u, gid)], a[stridedOffset(1u, gid)], c != 0u);`),
        ].join("\n"),
      );
      rt.dispatch(
        pipe,
        p,
        [
          { buffer: gpuBuffer(cond.data).gpu },
          { buffer: gpuBuffer(a.data).gpu },
          { buffer: gpuBuffer(b.data).gpu },
          { buffer: gpuBuffer(out).gpu, write: true },
        ],
        { threads: n },
      );
    },
    ...convertKernels(rt),
    ...updateKernels(rt),
  };
}
