// float16 weights read by the native kernels directly (widened while packing): the addon's gemm with half A or B
// and conv2d with half weights against the reference on the widened values, every half bit pattern, every
// micro-kernel; and the ops (linear, conv2d) passing half weights through instead of widening them.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Conv2dParams } from "../../src/backend/index.js";
import { nativeAddon } from "../../src/backend/native/index.js";
import { F, noGrad, Tensor, withBackend } from "../../src/index.js";
import { float32ArrayToHalf, halfArrayToFloat32, halfToFloat } from "../../src/tensor/dtype.js";
import { testRng } from "../helpers.js";
import { close, kernels, nat, randArray, ref, skip } from "./native-helpers.js";

/** Random values rounded to half precision: the bits and their exact float32 values. */
function randHalf(
  n: number,
  rng: () => number,
  lo = -1,
  hi = 1,
): { bits: Uint16Array; values: Float32Array } {
  const bits = float32ArrayToHalf(randArray(n, rng, lo, hi));
  return { bits, values: halfArrayToFloat32(bits) };
}

describe("native backend: float16 weights", { skip }, () => {
  const addon = nativeAddon!;
  after(() => addon.setKernel(""));
  const rng = testRng(11);

  for (const kernel of kernels) {
    it(`widens every float16 bit pattern exactly (${kernel})`, (t) => {
      if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} kernel on this CPU`);
      try {
        // out[0][j] = 1 * B[0][j] over all 65536 patterns, B row-major and transposed
        const bits = new Uint16Array(65536).map((_, i) => i);
        const one = new Float32Array([1]);
        for (const [rs, cs] of [
          [65536, 1],
          [1, 1],
        ] as const) {
          const out = new Float32Array(65536);
          addon.gemm(one, 0, 0, 1, 1, bits, 0, 0, rs, cs, out, 0, 1, 1, 65536, 1, 1, false, null);
          for (let i = 0; i < 65536; i++) {
            const want = halfToFloat(i) + 0; // a GEMM sums from +0, so -0 comes out as 0
            if (Number.isNaN(want)) assert.ok(Number.isNaN(out[i]!), `pattern ${i}`);
            else assert.ok(Object.is(out[i], want), `pattern ${i}: ${out[i]} vs ${want}`);
          }
        }
      } finally {
        addon.setKernel("");
      }
    });

    it(`gemm with a float16 A or B matches the reference on the widened values (${kernel})`, (t) => {
      if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} kernel on this CPU`);
      try {
        for (const [m, n, k] of [
          [1, 1, 1],
          [15, 33, 17],
          [29, 70, 300],
          [64, 130, 513],
          [3, 7, 1030],
        ] as const) {
          for (const layout of ["row", "transposed"] as const) {
            const tr = layout === "transposed";
            const a = randHalf(m * k, rng);
            const b = randHalf(k * n, rng);
            const bias = randArray(n, rng);
            const [brs, bcs] = tr ? [1, k] : [n, 1];
            const [ars, acs] = tr ? [1, m] : [k, 1];
            for (const half of ["a", "b"] as const) {
              const want = new Float32Array(m * n);
              const common = { batch: 1, m, n, k, aOffset: 0, aBatchStride: 0, bOffset: 0, bBatchStride: 0 };
              const strides = { aRowStride: ars, aColStride: acs, bRowStride: brs, bColStride: bcs };
              const rest = { outOffset: 0, alpha: 1, accumulate: false, bias };
              ref.gemm({ ...common, ...strides, ...rest, a: a.values, b: b.values, out: want });
              const got = new Float32Array(m * n);
              addon.gemm(
                half === "a" ? a.bits : a.values,
                0,
                0,
                ars,
                acs,
                half === "b" ? b.bits : b.values,
                0,
                0,
                brs,
                bcs,
                got,
                0,
                1,
                m,
                n,
                k,
                1,
                false,
                bias,
              );
              close(got, want, `${m}x${n}x${k} ${layout}, half ${half}`, 2e-5);
            }
          }
        }
      } finally {
        addon.setKernel("");
      }
    });

    it(`conv2d with float16 weights matches the reference (${kernel})`, (t) => {
      if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} kernel on this CPU`);
      try {
        for (const [c, o, hw, kk, stride, pad, groups] of [
          [3, 5, 9, 3, 1, 1, 1],
          [32, 29, 12, 3, 2, 1, 1],
          [16, 16, 8, 1, 1, 0, 1],
          [8, 12, 7, 3, 1, 1, 4],
        ] as const) {
          const oh = Math.floor((hw + 2 * pad - kk) / stride) + 1;
          const p: Conv2dParams = {
            batch: 2,
            inChannels: c,
            inH: hw,
            inW: hw,
            outChannels: o,
            outH: oh,
            outW: oh,
            kernelH: kk,
            kernelW: kk,
            strideH: stride,
            strideW: stride,
            padH: pad,
            padW: pad,
            dilationH: 1,
            dilationW: 1,
            groups,
          };
          const x = randArray(2 * c * hw * hw, rng);
          const w = randHalf(o * (c / groups) * kk * kk, rng);
          const bias = randArray(o, rng);
          const want = new Float32Array(2 * o * oh * oh);
          ref.conv2d(x, w.values, bias, want, p);
          const got = new Float32Array(want.length).fill(Number.NaN);
          nat.halfWeights!.conv2dHalfW(x, w.bits, bias, got, p);
          close(got, want, `conv ${c}->${o} k${kk} s${stride} g${groups}`, 2e-5);
        }
      } finally {
        addon.setKernel("");
      }
    });
  }

  it("linear and conv2d pass float16 weights to the kernels and agree with widened float32 weights", () => {
    const x = Tensor.fromStorage(randArray(6 * 40, rng), [2, 3, 40], "float32");
    const w = Tensor.fromStorage(randHalf(24 * 40, rng).bits, [24, 40], "float16");
    const b = Tensor.fromStorage(randArray(24, rng), [24], "float32");
    const img = Tensor.fromStorage(randArray(2 * 8 * 10 * 10, rng), [2, 8, 10, 10], "float32");
    const cw = Tensor.fromStorage(randHalf(6 * 8 * 9, rng).bits, [6, 8, 3, 3], "float16");
    noGrad(() => {
      for (const backend of ["native", "reference"]) {
        withBackend(backend, () => {
          const y16 = F.linear(x, w, b);
          const y32 = F.linear(x, w.float(), b);
          assert.equal(y16.dtype, "float32");
          close(y16.toFloat32Array(), y32.toFloat32Array(), `linear (${backend})`, 1e-6);
          // a transposed (non-contiguous) half weight too
          const wt = Tensor.fromStorage(randHalf(40 * 24, rng).bits, [40, 24], "float16").transpose(0, 1);
          close(
            F.linear(x, wt, b).toFloat32Array(),
            F.linear(x, wt.float(), b).toFloat32Array(),
            `linear, transposed weight (${backend})`,
            1e-6,
          );
          const c16 = F.conv2d(img, cw, null, { padding: 1 });
          const c32 = F.conv2d(img, cw.float(), null, { padding: 1 });
          close(c16.toFloat32Array(), c32.toFloat32Array(), `conv2d (${backend})`, 1e-6);
        });
      }
    });
  });

  it("conv2d with a float16 weight still gives gradients (the weight is widened for the backward pass)", () => {
    const img = Tensor.fromStorage(randArray(1 * 4 * 6 * 6, rng), [1, 4, 6, 6], "float32");
    img.requiresGrad = true;
    const cw = Tensor.fromStorage(randHalf(3 * 4 * 9, rng).bits, [3, 4, 3, 3], "float16");
    F.conv2d(img, cw, null, { padding: 1 }).sum().backward();
    const g16 = img.grad!.toFloat32Array();
    img.grad = null;
    F.conv2d(img, cw.float(), null, { padding: 1 }).sum().backward();
    close(g16, img.grad!.toFloat32Array(), "input gradient", 1e-6);
  });
});
