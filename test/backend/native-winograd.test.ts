// The native conv2d's Winograd paths (3x3, stride 1, >= 32 channels, >= 400 output pixels over the batch): F(4x4, 3x3)
// from 1400 pixels, F(2x2, 3x3) below, against the reference direct convolution: odd sizes (partial output tiles),
// padding 0-2, batches spanning tile blocks, filters transformed in several depth blocks, bias or not, float16
// weights, 1 and 2 threads, every SIMD level.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nativeAddon } from "../../src/backend/native/index.js";
import { float32ArrayToHalf, halfArrayToFloat32 } from "../../src/tensor/dtype.js";
import { testRng } from "../helpers.js";
import {
  close,
  conv3x3Params,
  kernels,
  nat,
  randArray,
  ref,
  restoreKernelAndThreadsAfter,
  skip,
} from "./native-helpers.js";

// each has >= 400 output pixels over the batch (the kernel's condition for taking this path)
const cases: [number, number, number, number, number, number][] = [
  // n, c, o, h, w, pad
  [2, 32, 40, 33, 31, 1], // ragged last tile row and column
  [1, 64, 33, 36, 34, 0],
  [3, 48, 32, 18, 18, 2],
  [1, 32, 32, 37, 29, 1],
  [2, 64, 48, 34, 30, 1], // several tile blocks
  // under 1400 output pixels: F(2x2, 3x3)
  [6, 32, 40, 14, 15, 1],
  [11, 33, 32, 12, 12, 0],
  // more input channels than the filters are transformed at a time (256), a partial panel of output channels
  [2, 300, 20, 16, 16, 1],
  [1, 260, 17, 38, 38, 1],
];

describe("native conv2d: Winograd F(4x4, 3x3) and F(2x2, 3x3)", { skip }, () => {
  const addon = nativeAddon!;
  const initial = restoreKernelAndThreadsAfter();
  const rng = testRng(21);

  for (const kernel of kernels) {
    it(`matches the direct convolution (${kernel})`, (t) => {
      if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} kernel on this CPU`);
      try {
        for (const [n, c, o, h, w, pad] of cases) {
          const p = conv3x3Params(n, c, o, h, w, pad);
          const x = randArray(n * c * h * w, rng);
          const wt = randArray(o * c * 9, rng, -0.2, 0.2);
          for (const bias of [randArray(o, rng), null]) {
            const length = n * o * p.outH * p.outW;
            // a skip connection added in the output transform, with the bias
            const residual = bias ? randArray(length, rng) : null;
            const want = new Float32Array(length);
            ref.conv2d(x, wt, bias, want, p, residual);
            const got = new Float32Array(want.length).fill(Number.NaN);
            nat.conv2d(x, wt, bias, got, p, residual);
            close(got, want, `N${n} C${c} O${o} ${h}x${w} pad ${pad} bias and residual ${!!bias}`, 1e-5);
          }
        }
      } finally {
        addon.setKernel("");
      }
    });
  }

  for (const kernel of kernels) {
    it(`reads float16 weights (with a residual), the same on 1 and 2 threads (${kernel})`, (t) => {
      if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} kernel on this CPU`);
      try {
        for (const [n, c, o, h, w, pad] of [cases[4]!, cases[7]!]) {
          const p = conv3x3Params(n, c, o, h, w, pad);
          const x = randArray(n * c * h * w, rng);
          const bits = float32ArrayToHalf(randArray(o * c * 9, rng, -0.2, 0.2));
          const bias = randArray(o, rng);
          const residual = randArray(n * o * p.outH * p.outW, rng);
          const want = new Float32Array(n * o * p.outH * p.outW);
          ref.conv2d(x, halfArrayToFloat32(bits), bias, want, p, residual);
          const outs = [1, 2].map((threads) => {
            addon.setNumThreads(threads);
            const out = new Float32Array(want.length);
            nat.halfWeights!.conv2dHalfW(x, bits, bias, out, p, residual);
            return out;
          });
          addon.setNumThreads(initial.threads);
          close(outs[0]!, want, `float16 weights, N${n} C${c} O${o} ${h}x${w}`, 1e-5);
          assert.deepEqual(outs[1], outs[0]);
        }
      } finally {
        addon.setKernel("");
      }
    });
  }
});
