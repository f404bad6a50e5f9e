// Property tests of the native elementwise, reduction, normalisation and attention kernels against the reference
// backend (the oracle): strided and broadcast views, NaN and -Infinity, tile boundaries, masks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Backend, BinaryOp, StridedF32, UnaryOp } from "../../src/backend/index.js";
import { nativeAddon } from "../../src/backend/native/index.js";
import { testRng } from "../helpers.js";
import { close, kernels, nat, randArray, ref, restoreKernelAndThreadsAfter, skip } from "./native-helpers.js";

describe("native backend: elementwise, reductions, norms, attention", { skip }, () => {
  const addon = nativeAddon!;
  restoreKernelAndThreadsAfter();

  /** An `it` per SIMD level (vector math and GEMM forced to it; skipped where the CPU lacks it), best level after. */
  const atEveryLevel = (name: string, body: () => void) => {
    for (const kernel of kernels)
      it(`${name} (${kernel})`, (t) => {
        if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} code in this build or on this CPU`);
        try {
          body();
        } finally {
          addon.setKernel("");
        }
      });
  };

  describe("elementwise", () => {
    const rng = testRng(3);
    const shape = [3, 5, 7];
    const n = 105;
    const contiguous = (data: Float32Array, offset = 0): StridedF32 => ({
      data,
      offset,
      strides: [35, 7, 1],
    });
    // a transposed view: element (i, j, l) at offset + l*15 + j*3 + i
    const transposed = (data: Float32Array, offset = 0): StridedF32 => ({
      data,
      offset,
      strides: [1, 3, 15],
    });
    const unaryOps: [UnaryOp, number, number, number, number][] = [
      // op, lo, hi, p0, p1
      ["neg", -3, 3, 0, 0],
      ["exp", -5, 5, 0, 0],
      ["log", 0.01, 5, 0, 0],
      ["sqrt", 0, 5, 0, 0],
      ["rsqrt", 0.01, 5, 0, 0],
      ["abs", -3, 3, 0, 0],
      ["sign", -3, 3, 0, 0],
      ["tanh", -4, 4, 0, 0],
      ["sigmoid", -8, 8, 0, 0],
      ["silu", -8, 8, 0, 0],
      ["gelu", -5, 5, 0, 0],
      ["gelu_tanh", -5, 5, 0, 0],
      ["relu", -3, 3, 0, 0],
      ["sin", -7, 7, 0, 0],
      ["cos", -7, 7, 0, 0],
      ["square", -3, 3, 0, 0],
      ["reciprocal", 0.1, 3, 0, 0],
      ["floor", -3, 3, 0, 0],
      ["ceil", -3, 3, 0, 0],
      ["round", -3, 3, 0, 0],
      ["pow_scalar", 0.1, 3, 2.5, 0],
      ["clamp", -3, 3, -0.5, 0.75],
      ["affine", -3, 3, 1.5, -0.25],
      ["gelu_grad", -5, 5, 0, 0],
      ["gelu_tanh_grad", -5, 5, 0, 0],
      ["silu_grad", -8, 8, 0, 0],
      ["erf", -3, 3, 0, 0],
    ];

    atEveryLevel("unary ops match on contiguous and transposed inputs", checkUnary);

    function checkUnary(): void {
      for (const [op, lo, hi, p0, p1] of unaryOps) {
        const data = randArray(n + 4, rng, lo, hi);
        if (op === "round") data.set([0.5, 1.5, 2.5, -0.5, -2.5], 0);
        for (const view of [contiguous(data, 4), transposed(data, 2)]) {
          const want = new Float32Array(n);
          const got = new Float32Array(n);
          ref.unary(op, view, want, shape, p0, p1);
          nat.unary(op, view, got, shape, p0, p1);
          close(got, want, `${op} strides ${view.strides}`);
        }
      }
    }

    it("NaN handling matches: relu, maximum/minimum, comparisons", () => {
      const a = new Float32Array([Number.NaN, 1, -1, Number.NaN, 2]);
      const b = new Float32Array([0, Number.NaN, -2, Number.NaN, 2]);
      const va = { data: a, offset: 0, strides: [1] };
      const vb = { data: b, offset: 0, strides: [1] };
      for (const op of ["maximum", "minimum", "eq", "ne", "lt", "ge"] as const) {
        const want = new Float32Array(5);
        const got = new Float32Array(5);
        ref.binary(op, va, vb, want, [5]);
        nat.binary(op, va, vb, got, [5]);
        assert.deepEqual([...got], [...want], op);
      }
      const got = new Float32Array(5);
      nat.unary("relu", va, got, [5]);
      assert.deepEqual([...got], [Number.NaN, 1, 0, Number.NaN, 2]);
    });

    it("binary ops match with broadcasting (0 strides) and transposed operands", () => {
      const ops: BinaryOp[] = [
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
      for (const op of ops) {
        const lo = op === "pow" ? 0.1 : -2;
        const a = randArray(n + 4, rng, lo, 2);
        const row = randArray(7, rng, op === "div" ? 0.5 : -2, 2);
        row[3] = a[4 + 3]!; // an exact tie for the comparisons
        const cases: [StridedF32, StridedF32][] = [
          [contiguous(a, 4), contiguous(randArray(n, rng, 0.5, 2))],
          [contiguous(a, 4), { data: row, offset: 0, strides: [0, 0, 1] }],
          [{ data: row, offset: 0, strides: [0, 0, 1] }, transposed(a, 1)],
          [transposed(a, 0), { data: new Float32Array([1.25]), offset: 0, strides: [0, 0, 0] }],
        ];
        for (const [va, vb] of cases) {
          const want = new Float32Array(n);
          const got = new Float32Array(n);
          ref.binary(op, va, vb, want, shape);
          nat.binary(op, va, vb, got, shape);
          close(got, want, `${op} strides ${va.strides} / ${vb.strides}`);
        }
      }
    });

    it("where and copy match on strided views of several storage types", () => {
      const cond = new Uint8Array(n).map(() => (rng() < 0.5 ? 1 : 0));
      const a = randArray(n, rng);
      const b = new Float32Array([3]);
      const want = new Float32Array(n);
      const got = new Float32Array(n);
      const vc = { data: cond, offset: 0, strides: [1, 3, 15] };
      const vb = { data: b, offset: 0, strides: [0, 0, 0] };
      ref.where(vc, contiguous(a), vb, want, shape);
      nat.where(vc, contiguous(a), vb, got, shape);
      assert.deepEqual(got, want);
      const sources = [
        randArray(n + 1, rng),
        new Int32Array(n + 1).map((_, i) => i * 7 - 50),
        new Uint8Array(n + 1).map((_, i) => i),
        new Uint16Array(n + 1).map((_, i) => i * 300),
        new BigInt64Array(n + 1).map((_, i) => BigInt(i) * 1000000007n),
      ];
      for (const src of sources) {
        const Ctor = src.constructor as new (n: number) => typeof src;
        const dstWant = new Ctor(n + 2);
        const dstGot = new Ctor(n + 2);
        const from = { data: src, offset: 1, strides: [1, 3, 15] };
        ref.copy(from, { data: dstWant, offset: 2, strides: [35, 7, 1] }, shape);
        nat.copy(from, { data: dstGot, offset: 2, strides: [35, 7, 1] }, shape);
        assert.deepEqual(dstGot, dstWant, src.constructor.name);
      }
    });

    it("large inputs take the multi-threaded path with the same results", () => {
      const big = randArray(300000, rng, -4, 4);
      const view = { data: big, offset: 0, strides: [1000, 1] };
      const want = new Float32Array(300000);
      const got = new Float32Array(300000);
      ref.unary("silu", view, want, [300, 1000]);
      nat.unary("silu", view, got, [300, 1000]);
      close(got, want, "silu");
      const col = { data: randArray(300, rng), offset: 0, strides: [1, 0] };
      ref.binary("mul", view, col, want, [300, 1000]);
      nat.binary("mul", view, col, got, [300, 1000]);
      close(got, want, "mul");
    });
  });

  describe("reductions and normalisation", () => {
    const rng = testRng(4);

    it("reduce (sum, max, min, argmax, argmin) matches, inner = 1 and > 1, with NaN", () => {
      for (const [outer, len, inner] of [
        [3, 17, 1],
        [2, 9, 13],
        [1, 1000, 1],
        [4, 1, 5],
        [2, 0, 3],
      ] as const) {
        const x = randArray(outer * len * inner, rng);
        if (x.length > 10) x[7] = Number.NaN;
        for (const op of ["sum", "max", "min", "argmax", "argmin"] as const) {
          const want = new Float32Array(outer * inner);
          const got = new Float32Array(outer * inner);
          ref.reduce(op, x, outer, len, inner, want);
          nat.reduce(op, x, outer, len, inner, got);
          close(got, want, `${op} [${outer}, ${len}, ${inner}]`);
        }
      }
    });

    it("softmax and log-softmax match, including masked (-Infinity) entries", () => {
      for (const [rows, cols] of [
        [5, 7],
        [3, 300],
        [1, 1],
      ] as const) {
        const x = randArray(rows * cols, rng, -10, 10);
        if (cols > 2) x[1] = Number.NEGATIVE_INFINITY;
        for (const log of [false, true]) {
          const want = new Float32Array(rows * cols);
          const got = new Float32Array(rows * cols);
          ref.softmax(x, want, rows, cols, log);
          nat.softmax(x, got, rows, cols, log);
          close(got, want, `softmax log=${log} [${rows}, ${cols}]`);
        }
      }
    });

    // slices of 1 to 370 values: whole 32-float blocks, 8-float blocks and masked tails of the SIMD loops
    atEveryLevel("groupNorm (with and without affine, fused SiLU) and its backward match", () => {
      for (const [n, c, spatial, groups] of [
        [2, 6, 5, 3],
        [1, 8, 17, 1],
        [3, 4, 1, 4],
        [2, 10, 37, 1],
      ] as const) {
        const x = randArray(n * c * spatial, rng, -2, 3);
        const go = randArray(n * c * spatial, rng);
        for (const affine of [true, false]) {
          const w = affine ? randArray(c, rng) : null;
          const b = affine ? randArray(c, rng) : null;
          for (const silu of [false, true]) {
            const run = (be: Backend) => {
              const out = new Float32Array(n * c * spatial);
              const mean = new Float32Array(n * groups);
              const rstd = new Float32Array(n * groups);
              be.groupNorm(x, w, b, out, mean, rstd, n, c, spatial, groups, 1e-5, silu);
              return { out, mean, rstd };
            };
            const want = run(ref);
            const got = run(nat);
            const what = `groupNorm ${n}x${c}x${spatial} g${groups} affine=${affine} silu=${silu}`;
            close(got.out, want.out, what);
            close(got.mean, want.mean, `${what} mean`);
            close(got.rstd, want.rstd, `${what} rstd`);
          }
          const grads = (be: Backend) => {
            const mean = new Float32Array(n * groups);
            const rstd = new Float32Array(n * groups);
            ref.groupNorm(
              x,
              w,
              b,
              new Float32Array(x.length),
              mean,
              rstd,
              n,
              c,
              spatial,
              groups,
              1e-5,
              false,
            );
            const gx = new Float32Array(x.length);
            const gw = affine ? new Float32Array(c) : null;
            const gb = affine ? new Float32Array(c) : null;
            be.groupNormBackward(go, x, w, mean, rstd, gx, gw, gb, n, c, spatial, groups);
            return [gx, gw, gb];
          };
          const want = grads(ref);
          const got = grads(nat);
          want.forEach((g, i) => {
            if (g) close(got[i]!, g, `groupNormBackward ${n}x${c}x${spatial} output ${i}`, 2e-5);
          });
        }
      }
    });

    atEveryLevel("layerNorm and its backward match", () => {
      for (const [rows, cols] of [
        [7, 33],
        [1, 5],
        [40, 64],
        [3, 320],
        [2, 77],
      ] as const) {
        const x = randArray(rows * cols, rng, -2, 3);
        const go = randArray(rows * cols, rng);
        for (const affine of [true, false]) {
          const w = affine ? randArray(cols, rng) : null;
          const b = affine ? randArray(cols, rng) : null;
          const run = (be: Backend) => {
            const out = new Float32Array(rows * cols);
            const mean = new Float32Array(rows);
            const rstd = new Float32Array(rows);
            be.layerNorm(x, w, b, out, mean, rstd, rows, cols, 1e-5);
            const gx = new Float32Array(rows * cols);
            const gw = affine ? new Float32Array(cols) : null;
            const gb = affine ? new Float32Array(cols) : null;
            be.layerNormBackward(go, x, w, mean, rstd, gx, gw, gb, rows, cols);
            return [out, mean, rstd, gx, gw, gb];
          };
          const want = run(ref);
          const got = run(nat);
          want.forEach((v, i) => {
            if (v) close(got[i]!, v, `layerNorm ${rows}x${cols} affine=${affine} output ${i}`, 2e-5);
          });
        }
      }
    });
  });

  describe("attention", () => {
    const rng = testRng(5);
    it("matches the reference across tile boundaries, with masks and fully masked rows", () => {
      for (const [batch, lq, lk, d, dv, masked] of [
        [2, 70, 300, 16, 24, true],
        [1, 5, 77, 40, 40, false],
        [3, 64, 64, 8, 8, true],
        [1, 1, 1, 3, 2, false],
      ] as const) {
        const q = randArray(batch * lq * d, rng, -2, 2);
        const k = randArray(batch * lk * d, rng, -2, 2);
        const v = randArray(batch * lk * dv, rng);
        let mask: Float32Array | null = null;
        if (masked) {
          // one mask row per query shared by all heads (batch stride 0); row 3 fully masked
          mask = randArray(lq * lk, rng, -1, 1);
          for (let j = 0; j < lk; j++) {
            if (j % 3 === 0) mask[j] = Number.NEGATIVE_INFINITY;
            mask[3 * lk + j] = Number.NEGATIVE_INFINITY;
          }
        }
        const params = { batch, lq, lk, d, dv, scale: 1 / Math.sqrt(d), q, k, v, mask };
        const extra = masked ? { maskBatchStride: 0, maskRowStride: lk } : {};
        const want = new Float32Array(batch * lq * dv);
        const got = new Float32Array(batch * lq * dv).fill(Number.NaN);
        ref.attention({ ...params, ...extra, out: want });
        nat.attention({ ...params, ...extra, out: got });
        close(got, want, `attention b${batch} lq${lq} lk${lk} d${d} dv${dv} masked=${masked}`);
      }
    });
  });
});
