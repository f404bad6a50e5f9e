// The native GEGLU kernel against the reference at every SIMD level, on 1 and 2 threads, including rows too few
// to split, a half width that is not a multiple of the vector width, and NaN/infinite gates; and the fused
// projection + GEGLU against the reference GEMM followed by the reference GEGLU.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nativeAddon } from "../../src/backend/native/index.js";
import { float32ArrayToHalf, halfArrayToFloat32 } from "../../src/tensor/dtype.js";
import { testRng } from "../helpers.js";
import { close, kernels, nat, randArray, ref, restoreKernelAndThreadsAfter, skip } from "./native-helpers.js";

describe("native geglu", { skip }, () => {
  const addon = nativeAddon!;
  const initial = restoreKernelAndThreadsAfter();
  const rng = testRng(57);
  const shapes: [number, number][] = [
    [1, 1],
    [3, 17],
    [64, 1280],
    [300, 333],
  ];

  for (const kernel of kernels) {
    it(`matches the reference (${kernel})`, (t) => {
      if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} kernel on this CPU`);
      try {
        for (const threads of [1, 2]) {
          addon.setNumThreads(threads);
          for (const [rows, half] of shapes) {
            const x = randArray(rows * 2 * half, rng, -5, 5);
            if (rows * half > 2) {
              x[half] = Number.NaN; // gate of row 0, column 0
              x[half + 1] = Number.POSITIVE_INFINITY;
              x[half + 2] = Number.NEGATIVE_INFINITY;
            }
            const want = new Float32Array(rows * half);
            const got = new Float32Array(rows * half).fill(Number.NaN);
            ref.geglu(x, want, rows, half);
            nat.geglu(x, got, rows, half);
            close(got, want, `${kernel} ${threads} thread(s) rows ${rows} half ${half}`);
          }
        }
      } finally {
        addon.setKernel("");
        addon.setNumThreads(initial.threads);
      }
    });
  }
});

describe("native linearGeglu (projection and gate in one pass)", { skip }, () => {
  const addon = nativeAddon!;
  const initial = restoreKernelAndThreadsAfter();
  const rng = testRng(58);
  // [rows, in, half]: one row; odd sizes; several row blocks (2 * half = 2560 gives 98-row blocks) and a depth
  // past one GEMM depth block (in 600 > kc 512)
  const shapes: [number, number, number][] = [
    [1, 3, 1],
    [7, 17, 9],
    [300, 40, 1280],
    [130, 600, 70],
    // a weight past 2^20 values with a half width that is whole vector panels: column chunks x row blocks
    // (5 chunks of 224 / 128 columns and 2 row blocks on AVX-512)
    [150, 520, 1024],
  ];

  /** The composition: the reference GEMM (x W^T + bias), then the reference GEGLU. */
  function composed(
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | null,
    rows: number,
    inF: number,
    half: number,
  ) {
    const h = new Float32Array(rows * 2 * half);
    ref.gemm({
      ...{ batch: 1, m: rows, n: 2 * half, k: inF, alpha: 1, accumulate: false },
      ...{ a: x, aOffset: 0, aBatchStride: 0, aRowStride: inF, aColStride: 1 },
      ...{ b: w, bOffset: 0, bBatchStride: 0, bRowStride: 1, bColStride: inF },
      ...{ out: h, outOffset: 0, bias },
    });
    const want = new Float32Array(rows * half);
    ref.geglu(h, want, rows, half);
    return want;
  }

  for (const kernel of kernels) {
    it(`matches the reference linear + geglu, float32 and float16 weights (${kernel})`, (t) => {
      if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} kernel on this CPU`);
      try {
        for (const threads of [1, 2]) {
          addon.setNumThreads(threads);
          for (const [rows, inF, half] of shapes) {
            const x = randArray(rows * inF, rng);
            const w = randArray(2 * half * inF, rng, -0.3, 0.3);
            const bias = rows % 2 === 0 ? randArray(2 * half, rng) : null;
            const label = `${kernel} ${threads} thread(s) rows ${rows} in ${inF} half ${half}`;
            const got = new Float32Array(rows * half).fill(Number.NaN);
            // the weight from an offset inside a larger array
            const padded = new Float32Array(5 + w.length);
            padded.set(w, 5);
            nat.linearGeglu!({
              x,
              rows,
              inFeatures: inF,
              weight: padded,
              weightOffset: 5,
              bias,
              half,
              out: got,
            });
            close(got, composed(x, w, bias, rows, inF, half), label);
            const bits = float32ArrayToHalf(w);
            const gotHalf = new Float32Array(rows * half).fill(Number.NaN);
            nat.linearGeglu!({
              x,
              rows,
              inFeatures: inF,
              weight: bits,
              weightOffset: 0,
              bias,
              half,
              out: gotHalf,
            });
            close(gotHalf, composed(x, halfArrayToFloat32(bits), bias, rows, inF, half), `${label} float16`);
          }
        }
      } finally {
        addon.setKernel("");
        addon.setNumThreads(initial.threads);
      }
    });
  }

  it("refuses arrays too short for the shapes", () => {
    const x = new Float32Array(8);
    const w = new Float32Array(4 * 4);
    const out = new Float32Array(4);
    assert.throws(() => addon.linearGeglu(x, 3, 4, w, 0, null, 2, out), /linearGeglu x: needs 12/);
    assert.throws(() => addon.linearGeglu(x, 2, 4, w, 1, null, 2, out), /linearGeglu w: needs 17/);
    assert.throws(() => addon.linearGeglu(x, 2, 4, w, 0, new Float32Array(3), 2, out), /linearGeglu bias/);
  });
});
