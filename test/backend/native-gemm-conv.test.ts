// Property tests of the native GEMM and convolution kernels against the reference backend (the oracle): odd sizes,
// batch 1, strides, transposed operands, accumulate, bias (per column and per row), a residual, groups, dilation,
// stride 2, a batch of small maps in one product, every micro-kernel.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Backend, Conv2dParams, GemmParams } from "../../src/backend/index.js";
import { getBackend } from "../../src/backend/index.js";
import { nativeAddon } from "../../src/backend/native/index.js";
import { float32ArrayToHalf, halfArrayToFloat32 } from "../../src/tensor/dtype.js";
import { testRng } from "../helpers.js";
import {
  close,
  kernels,
  nat,
  randArray,
  ref,
  restoreKernelAndThreadsAfter,
  rowMajorGemm,
  skip,
} from "./native-helpers.js";

describe("native backend: gemm and conv2d", { skip }, () => {
  const addon = nativeAddon!;
  const initial = restoreKernelAndThreadsAfter();

  it("is the default backend unless DIFFUSE_BACKEND says otherwise", () => {
    if (!process.env.DIFFUSE_BACKEND) assert.equal(getBackend().name, "native");
    assert.ok(["avx512", "avx2", "portable"].includes(addon.info().kernel));
  });

  describe("gemm", () => {
    const rng = testRng(1);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
    const sizes = [1, 2, 5, 7, 13, 16, 17, 31, 33, 64, 65, 130];

    /** A random GEMM with A and B stored row-major, transposed or with gaps, in larger arrays at an offset. */
    function randomCase(i: number): GemmParams {
      const batch = pick([1, 1, 2, 3]);
      const m = pick(sizes);
      const n = pick(sizes);
      const k = i % 7 === 0 ? pick([257, 300, 513]) : pick(sizes);
      const layout = (rows: number, cols: number) => {
        const kind = pick(["row", "col", "gap"] as const);
        const rowStride = kind === "row" ? cols : kind === "col" ? 1 : cols + 3;
        const colStride = kind === "row" ? 1 : kind === "col" ? rows : 1;
        const span = kind === "col" ? rows * cols : rows * (cols + 3);
        const bcast = batch > 1 && rng() < 0.25;
        return { rowStride, colStride, batchStride: bcast ? 0 : span, span };
      };
      const la = layout(m, k);
      const lb = layout(k, n);
      const aOffset = pick([0, 5]);
      const bOffset = pick([0, 3]);
      const outOffset = pick([0, 2]);
      const residualOffset = pick([0, 4]);
      return {
        batch,
        m,
        n,
        k,
        a: randArray(aOffset + batch * la.span, rng),
        aOffset,
        aBatchStride: la.batchStride,
        aRowStride: la.rowStride,
        aColStride: la.colStride,
        b: randArray(bOffset + batch * lb.span, rng),
        bOffset,
        bBatchStride: lb.batchStride,
        bRowStride: lb.rowStride,
        bColStride: lb.colStride,
        out: randArray(outOffset + batch * m * n, rng),
        outOffset,
        alpha: pick([1, 1, 0.5, -2]),
        accumulate: rng() < 0.3,
        bias: rng() < 0.3 ? randArray(n, rng) : null,
        biasRows: rng() < 0.3 ? randArray(m, rng) : null,
        residual: rng() < 0.3 ? randArray(residualOffset + batch * m * n, rng) : null,
        residualOffset,
      };
    }

    for (const kernel of kernels) {
      it(`matches the reference on 40 random problems (${kernel} micro-kernel)`, (t) => {
        if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} kernel in this build or on this CPU`);
        try {
          for (let i = 0; i < 40; i++) {
            const p = randomCase(i);
            const want = p.out.slice();
            const got = p.out.slice();
            ref.gemm({ ...p, out: want });
            nat.gemm({ ...p, out: got });
            const what = `case ${i} (${p.batch}x${p.m}x${p.n}x${p.k}, strides A ${p.aRowStride}/${p.aColStride} B ${p.bRowStride}/${p.bColStride}, acc ${p.accumulate}, residual ${p.residual != null})`;
            close(got, want, what, 2e-5);
            // nothing before outOffset is touched
            for (let j = 0; j < p.outOffset; j++) assert.equal(got[j], p.out[j]);
          }
        } finally {
          addon.setKernel("");
        }
      });
    }

    it("adds a residual after the product and biases, also to an empty product, never over its own output", () => {
      const [m, n] = [3, 5];
      const residual = randArray(1 + m * n, rng);
      const bias = randArray(n, rng);
      for (const k of [0, 4]) {
        const p = { ...rowMajorGemm(m, n, k, rng), bias, residual, residualOffset: 1 };
        const want = new Float32Array(m * n);
        const got = new Float32Array(m * n);
        ref.gemm({ ...p, out: want });
        nat.gemm({ ...p, out: got });
        close(got, want, `residual, k = ${k}`);
        if (k === 0)
          for (let j = 0; j < m * n; j++) assert.equal(got[j], Math.fround(bias[j % n]! + residual[1 + j]!));
        const shared = new Float32Array(2 * m * n);
        assert.throws(
          () => nat.gemm({ ...p, out: shared, residual: shared, residualOffset: m * n }),
          /residual and out share memory/,
        );
      }
    });

    it("gives the same result on 1 and 2 threads for a problem large enough to split", () => {
      const m = 150;
      const n = 333;
      const k = 200;
      const p = { ...rowMajorGemm(m, n, k, rng), bias: randArray(n, rng) };
      const want = new Float32Array(m * n);
      ref.gemm({ ...p, out: want });
      const outs = [1, 2].map((threads) => {
        addon.setNumThreads(threads);
        const out = new Float32Array(m * n);
        nat.gemm({ ...p, out });
        return out;
      });
      addon.setNumThreads(initial.threads);
      close(outs[0]!, want, "1 thread");
      assert.deepEqual(outs[1], outs[0]);
    });

    it("handles k = 0 (bias only) and empty outputs", () => {
      const out = new Float32Array(6).fill(7);
      const bias = new Float32Array([1, 2, 3]);
      const p = {
        batch: 1,
        m: 2,
        n: 3,
        k: 0,
        a: new Float32Array(0),
        aOffset: 0,
        aBatchStride: 0,
        aRowStride: 0,
        aColStride: 1,
        b: new Float32Array(0),
        bOffset: 0,
        bBatchStride: 0,
        bRowStride: 3,
        bColStride: 1,
        out,
        outOffset: 0,
        alpha: 1,
        accumulate: true,
        bias,
      };
      nat.gemm(p);
      assert.deepEqual([...out], [8, 9, 10, 8, 9, 10]);
    });

    it("rejects views that reach outside their arrays", () => {
      const a = new Float32Array(10);
      const p = {
        batch: 1,
        m: 4,
        n: 4,
        k: 4,
        a,
        aOffset: 0,
        aBatchStride: 0,
        aRowStride: 4,
        aColStride: 1,
        b: new Float32Array(16),
        bOffset: 0,
        bBatchStride: 0,
        bRowStride: 4,
        bColStride: 1,
        out: new Float32Array(16),
        outOffset: 0,
        alpha: 1,
        accumulate: false,
      };
      assert.throws(() => nat.gemm(p), RangeError);
      assert.throws(() => nat.gemm({ ...p, a: new Float32Array(16), out: new Float32Array(15) }), RangeError);
    });
  });

  describe("conv2d", () => {
    const rng = testRng(2);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;

    function randomParams(i: number): Conv2dParams {
      const groups = pick([1, 1, 2, 3]);
      const cpg = pick([1, 2, 5]);
      const opg = pick([1, 3, 4]);
      const kernelH = i % 5 === 0 ? 1 : pick([1, 2, 3, 5]);
      const kernelW = i % 5 === 0 ? 1 : pick([1, 3]);
      const strideH = i % 5 === 0 ? 1 : pick([1, 1, 2]);
      const strideW = i % 5 === 0 ? 1 : pick([1, 2]);
      const dilationH = pick([1, 1, 2]);
      const dilationW = pick([1, 2]);
      const padH = i % 5 === 0 ? 0 : pick([0, 1, 2]);
      const padW = i % 5 === 0 ? 0 : pick([0, 1]);
      const inH = pick([5, 8, 11]) + dilationH * (kernelH - 1);
      const inW = pick([4, 9, 17, 33]) + dilationW * (kernelW - 1);
      const outH = Math.floor((inH + 2 * padH - dilationH * (kernelH - 1) - 1) / strideH) + 1;
      const outW = Math.floor((inW + 2 * padW - dilationW * (kernelW - 1) - 1) / strideW) + 1;
      return {
        batch: pick([1, 2]),
        inChannels: groups * cpg,
        inH,
        inW,
        outChannels: groups * opg,
        outH,
        outW,
        kernelH,
        kernelW,
        strideH,
        strideW,
        padH,
        padW,
        dilationH,
        dilationW,
        groups,
      };
    }

    const describeParams = (p: Conv2dParams) =>
      `N${p.batch} C${p.inChannels} ${p.inH}x${p.inW} -> O${p.outChannels} ${p.outH}x${p.outW} k${p.kernelH}x${p.kernelW} s${p.strideH},${p.strideW} p${p.padH},${p.padW} d${p.dilationH},${p.dilationW} g${p.groups}`;

    it("forward, backward-input and backward-weight match the reference on 30 random convolutions", () => {
      for (let i = 0; i < 30; i++) {
        const p = randomParams(i);
        const what = describeParams(p);
        const xLen = p.batch * p.inChannels * p.inH * p.inW;
        const wLen = p.outChannels * (p.inChannels / p.groups) * p.kernelH * p.kernelW;
        const oLen = p.batch * p.outChannels * p.outH * p.outW;
        const x = randArray(xLen, rng);
        const w = randArray(wLen, rng);
        const bias = rng() < 0.5 ? randArray(p.outChannels, rng) : null;
        const go = randArray(oLen, rng);
        const residual = rng() < 0.4 ? randArray(oLen, rng) : null;
        const want = new Float32Array(oLen);
        const got = new Float32Array(oLen).fill(Number.NaN); // outputs must be fully written
        ref.conv2d(x, w, bias, want, p, residual);
        nat.conv2d(x, w, bias, got, p, residual);
        close(got, want, `conv2d ${what} residual ${residual !== null}`);
        const wantGi = new Float32Array(xLen);
        const gotGi = new Float32Array(xLen).fill(Number.NaN);
        ref.conv2dBackwardInput(go, w, wantGi, p);
        nat.conv2dBackwardInput(go, w, gotGi, p);
        close(gotGi, wantGi, `conv2dBackwardInput ${what}`);
        const wantGw = new Float32Array(wLen);
        const gotGw = new Float32Array(wLen).fill(Number.NaN);
        ref.conv2dBackwardWeight(x, go, wantGw, p);
        nat.conv2dBackwardWeight(x, go, gotGw, p);
        close(gotGw, wantGw, `conv2dBackwardWeight ${what}`);
      }
    });

    it("convolves a batch of small maps as one product (3x3, stride 2, 1x1; float16 weights; 1 and 2 threads)", () => {
      // maps of at most 256 output pixels, batch > 1, one group: one GEMM for all images into a scratch copied out
      // (on 2 threads only batch 3: even batches run image by image, one per thread)
      const shapes: [number, number, number, number, number, number, number][] = [
        // n, c, o, h, w, kernel, stride
        [2, 40, 30, 8, 8, 3, 1],
        [3, 17, 45, 7, 9, 3, 1],
        [2, 24, 33, 16, 16, 3, 2],
        [4, 50, 29, 6, 5, 1, 1],
      ];
      for (const [n, c, o, h, w, kernel, stride] of shapes) {
        const pad = kernel === 3 ? 1 : 0;
        const outH = Math.floor((h + 2 * pad - kernel) / stride) + 1;
        const outW = Math.floor((w + 2 * pad - kernel) / stride) + 1;
        const p: Conv2dParams = {
          ...{ batch: n, inChannels: c, inH: h, inW: w, outChannels: o, outH, outW },
          ...{ kernelH: kernel, kernelW: kernel, strideH: stride, strideW: stride, padH: pad, padW: pad },
          ...{ dilationH: 1, dilationW: 1, groups: 1 },
        };
        const x = randArray(n * c * h * w, rng);
        const bits = float32ArrayToHalf(randArray(o * c * kernel * kernel, rng, -0.3, 0.3));
        const wt = halfArrayToFloat32(bits);
        const bias = randArray(o, rng);
        const residual = randArray(n * o * outH * outW, rng);
        const what = `N${n} C${c} ${h}x${w} -> O${o} k${kernel} s${stride}`;
        for (const res of [residual, null]) {
          const want = new Float32Array(residual.length);
          ref.conv2d(x, wt, bias, want, p, res);
          for (const threads of [1, 2]) {
            addon.setNumThreads(threads);
            const got = new Float32Array(want.length).fill(Number.NaN);
            nat.conv2d(x, wt, bias, got, p, res);
            close(got, want, `${what}, ${threads} thread(s), residual ${res !== null}`);
            const half = new Float32Array(want.length).fill(Number.NaN);
            nat.halfWeights!.conv2dHalfW(x, bits, bias, half, p, res);
            close(half, want, `${what}, float16 weights, ${threads} thread(s)`);
          }
          addon.setNumThreads(initial.threads);
        }
      }
    });

    it("matches on a convolution large enough to use the thread pool", () => {
      const p: Conv2dParams = {
        batch: 1,
        inChannels: 32,
        inH: 24,
        inW: 24,
        outChannels: 40,
        outH: 24,
        outW: 24,
        kernelH: 3,
        kernelW: 3,
        strideH: 1,
        strideW: 1,
        padH: 1,
        padW: 1,
        dilationH: 1,
        dilationW: 1,
        groups: 1,
      };
      const x = randArray(32 * 24 * 24, rng);
      const w = randArray(40 * 32 * 9, rng);
      const go = randArray(40 * 24 * 24, rng);
      const bias = randArray(40, rng);
      const run = (b: Backend) => {
        const out = new Float32Array(40 * 576);
        const gi = new Float32Array(32 * 576);
        const gw = new Float32Array(40 * 32 * 9);
        b.conv2d(x, w, bias, out, p);
        b.conv2dBackwardInput(go, w, gi, p);
        b.conv2dBackwardWeight(x, go, gw, p);
        return [out, gi, gw];
      };
      const want = run(ref);
      const got = run(nat);
      ["forward", "backward input", "backward weight"].forEach((what, i) => {
        close(got[i]!, want[i]!, what);
      });
    });
  });
});
