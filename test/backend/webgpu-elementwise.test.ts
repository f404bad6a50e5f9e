// WebGPU elementwise kernels against the reference backend: every unary and binary op on strided and broadcast
// views, where, copies and casts between dtypes, fills, and the optimizer / EMA updates.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BinaryOp, UnaryOp } from "../../src/backend/index.js";
import type { DType, StorageArray } from "../../src/tensor/dtype.js";
import { allocStorage, convertStorage } from "../../src/tensor/dtype.js";
import {
  adapter,
  assertClose,
  down,
  downAs,
  gpu,
  randArray,
  ref,
  skip,
  testRng,
  up,
  zeros,
} from "./webgpu-helpers.js";

const UNARY: UnaryOp[] = [
  "neg",
  "exp",
  "log",
  "sqrt",
  "rsqrt",
  "abs",
  "sign",
  "tanh",
  "sigmoid",
  "silu",
  "gelu",
  "gelu_tanh",
  "relu",
  "sin",
  "cos",
  "square",
  "reciprocal",
  "floor",
  "ceil",
  "round",
  "pow_scalar",
  "clamp",
  "affine",
  "gelu_grad",
  "gelu_tanh_grad",
  "silu_grad",
  "erf",
];
const BINARY: BinaryOp[] = [
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "maximum",
  "minimum",
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
];

describe(`webgpu elementwise (${adapter})`, { skip }, () => {
  const rng = testRng(11);
  // a [3, 5, 7] output over a transposed [7, 5, 3] input (strides 1, 3, 15) with an offset of 4
  const shape = [3, 5, 7];
  const n = 105;
  const base = randArray(n + 4, rng, -3, 3);
  base[5] = Number.NaN;
  base[9] = 0.5;
  base[10] = -2.5;
  base[11] = 2;
  const strided = { offset: 4, strides: [1, 3, 15] };

  it("unary ops on a strided view", async () => {
    const x = up(base);
    for (const op of UNARY) {
      const [p0, p1] =
        op === "pow_scalar" ? [2, 0] : op === "clamp" ? [-1, 0.5] : op === "affine" ? [1.5, -0.25] : [0, 0];
      const want = new Float32Array(n);
      ref.unary(op, { data: base, ...strided }, want, shape, p0, p1);
      const out = zeros(n);
      gpu.unary(op, { data: x, ...strided }, out, shape, p0, p1);
      assertClose(await down(out, n), want, 2e-6, op);
    }
  });

  it("sin and cos of timestep-sized arguments (WGSL's builtins promise only 2^-11)", async () => {
    const m = 4096;
    const x = Float32Array.from({ length: m }, (_, i) => (i - m / 2) * 0.4871);
    for (const op of ["sin", "cos"] as const) {
      const want = new Float32Array(m);
      ref.unary(op, { data: x, offset: 0, strides: [1] }, want, [m]);
      const out = zeros(m);
      gpu.unary(op, { data: up(x), offset: 0, strides: [1] }, out, [m]);
      assertClose(await down(out, m), want, 1e-6, op);
    }
  });

  it("binary ops with broadcasting", async () => {
    const a = randArray(n, rng, -2, 2);
    const b = randArray(7, rng, 0.25, 2);
    a[3] = Number.NaN;
    const aView = { offset: 0, strides: [35, 7, 1] };
    const bView = { offset: 0, strides: [0, 0, 1] };
    const ga = up(a);
    const gb = up(b);
    for (const op of BINARY) {
      const want = new Float32Array(n);
      ref.binary(op, { data: a, ...aView }, { data: b, ...bView }, want, shape);
      const out = zeros(n);
      gpu.binary(op, { data: ga, ...aView }, { data: gb, ...bView }, out, shape);
      assertClose(await down(out, n), want, 2e-6, op);
    }
  });

  it("where with a broadcast condition", async () => {
    const cond = Uint8Array.from({ length: 5 }, (_, i) => i % 2);
    const a = randArray(n, rng);
    const b = randArray(n, rng);
    const c = { data: cond, offset: 0, strides: [0, 1, 0] };
    const want = new Float32Array(n);
    ref.where(
      c,
      { data: a, offset: 0, strides: [35, 7, 1] },
      { data: b, offset: 0, strides: [35, 7, 1] },
      want,
      shape,
    );
    const out = zeros(n);
    gpu.where(
      { data: up(cond, "bool"), offset: 0, strides: [0, 1, 0] },
      { data: up(a), offset: 0, strides: [35, 7, 1] },
      { data: up(b), offset: 0, strides: [35, 7, 1] },
      out,
      shape,
    );
    assert.deepEqual(await down(out, n), want);
  });

  const sample = (dtype: DType, size: number): StorageArray => {
    const f = randArray(size, rng, -300, 300);
    f[0] = 65504 * 2; // overflows float16
    f[1] = 1e-6; // a float16 subnormal
    f[2] = -0;
    return convertStorage(f, "float32", dtype);
  };
  const DTYPES: DType[] = [
    "float32",
    "float16",
    "bfloat16",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
    "int64",
  ];

  it("casts between every pair of dtypes, from strided views", async () => {
    const shape2 = [3, 5];
    for (const from of DTYPES) {
      const src = sample(from, 17);
      const s = up(src, from);
      for (const to of DTYPES) {
        const want = allocStorage(to, 15);
        ref.cast({ data: src, offset: 2, strides: [1, 3] }, from, want, to, shape2);
        const out = zeros(15, to);
        gpu.cast({ data: s, offset: 2, strides: [1, 3] }, from, out, to, shape2);
        const got = await downAs(out, to, 15);
        assert.deepEqual(
          Array.from(got as ArrayLike<number | bigint>),
          Array.from(want as ArrayLike<number | bigint>),
          `${from} -> ${to}`,
        );
      }
    }
  });

  it("copies of every width into strided destinations, and fills", async () => {
    for (const dtype of DTYPES) {
      const src = sample(dtype, 15);
      const want = allocStorage(dtype, 20);
      const dst = zeros(20, dtype);
      ref.copy({ data: src, offset: 0, strides: [5, 1] }, { data: want, offset: 1, strides: [1, 4] }, [3, 5]);
      gpu.copy(
        { data: up(src, dtype), offset: 0, strides: [5, 1] },
        { data: dst, offset: 1, strides: [1, 4] },
        [3, 5],
      );
      ref.fill(want, dtype, 7, 17, 3);
      gpu.fill(dst, dtype, 7, 17, 3);
      const got = await downAs(dst, dtype, 20);
      assert.deepEqual(
        Array.from(got as ArrayLike<number | bigint>),
        Array.from(want as ArrayLike<number | bigint>),
        dtype,
      );
    }
  });

  it("unaligned writes and reads of 1- and 2-byte dtypes", async () => {
    const b = zeros(9, "float16");
    gpu.memory.write(b, "float16", 3, Uint16Array.of(1, 2, 3));
    assert.deepEqual(Array.from((await gpu.memory.read(b, "float16", 2, 5)) as Uint16Array), [0, 1, 2, 3, 0]);
    const view = gpu.memory.subview(b, "float16", 3, 3)!;
    assert.deepEqual(Array.from((await gpu.memory.read(view, "float16", 1, 2)) as Uint16Array), [2, 3]);
  });

  it("adamw (with and without AMSGrad), sgd (momentum, nesterov) and lerpTo", async () => {
    const size = 301;
    for (const amsgrad of [false, true]) {
      const arrays = [
        randArray(size, rng),
        randArray(size, rng),
        randArray(size, rng),
        randArray(size, rng, 0, 1),
        randArray(size, rng, 0, 1),
      ];
      const g = arrays.map((a) => up(a));
      const params = {
        size,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        decay: 0.999,
        stepSize: 0.01,
        bc2Sqrt: 0.03,
      };
      ref.adamw({
        param: arrays[0]!,
        grad: arrays[1]!,
        expAvg: arrays[2]!,
        expAvgSq: arrays[3]!,
        maxExpAvgSq: amsgrad ? arrays[4]! : null,
        ...params,
      });
      gpu.adamw({
        param: g[0]!,
        grad: g[1]!,
        expAvg: g[2]!,
        expAvgSq: g[3]!,
        maxExpAvgSq: amsgrad ? g[4]! : null,
        ...params,
      });
      for (const k of [0, 2, 3])
        assertClose(await down(g[k]!, size), arrays[k]!, 1e-6, `adamw ${amsgrad} ${k}`);
    }
    for (const [momentum, nesterov, first] of [
      [0, false, false],
      [0.9, false, true],
      [0.9, true, false],
    ] as const) {
      const x = randArray(size, rng);
      const grad = randArray(size, rng);
      const buf = randArray(size, rng);
      const gx = up(x);
      const gbuf = up(buf);
      const params = { size, lr: 0.1, momentum, dampening: 0.1, weightDecay: 0.01, nesterov, first };
      ref.sgd({ param: x, grad, momentumBuffer: momentum ? buf : null, ...params });
      gpu.sgd({ param: gx, grad: up(grad), momentumBuffer: momentum ? gbuf : null, ...params });
      assertClose(await down(gx, size), x, 1e-6, "sgd param");
      if (momentum) assertClose(await down(gbuf, size), buf, 1e-6, "sgd buffer");
    }
    const avg = randArray(size, rng);
    const x = randArray(size, rng);
    const ga = up(avg);
    ref.lerpTo(avg, x, 0.01, size);
    gpu.lerpTo(ga, up(x), 0.01, size);
    assertClose(await down(ga, size), avg, 1e-7, "lerpTo");
  });
});
