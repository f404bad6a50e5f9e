// Shared pieces of the native-backend property tests: the backends under test, random data and the error measure.
import assert from "node:assert/strict";
import { after } from "node:test";
import type { Backend, Conv2dParams, GemmParams } from "../../src/backend/index.js";
import { referenceBackend } from "../../src/backend/index.js";
import { nativeAddon, nativeBackend, nativeLoadError } from "../../src/backend/native/index.js";

export const skip = nativeBackend
  ? false
  : `native addon not built (${nativeLoadError}); run \`npm run build:native\``;
export const nat = nativeBackend as Backend;
export const ref = referenceBackend;

export function randArray(n: number, rng: () => number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng();
  return a;
}

/** max|got - want| / max|want| (relative to the output's magnitude); NaNs must match. */
/** A batch-1 product of random row-major A [m, k] and B [k, n] (alpha 1, overwriting): all but its `out`. */
export function rowMajorGemm(m: number, n: number, k: number, rng: () => number): Omit<GemmParams, "out"> {
  return {
    batch: 1,
    m,
    n,
    k,
    a: randArray(m * k, rng),
    aOffset: 0,
    aBatchStride: 0,
    aRowStride: k,
    aColStride: 1,
    b: randArray(k * n, rng),
    bOffset: 0,
    bBatchStride: 0,
    bRowStride: n,
    bColStride: 1,
    outOffset: 0,
    alpha: 1,
    accumulate: false,
  };
}

export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g)) return Number.POSITIVE_INFINITY;
      continue;
    }
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      if (g !== w) return Number.POSITIVE_INFINITY;
      continue;
    }
    diff = Math.max(diff, Math.abs(g - w));
    mag = Math.max(mag, Math.abs(w));
  }
  return diff / Math.max(mag, 1e-30);
}

export function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 1e-5): void {
  const e = relErr(got, want);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(2)} > ${tol}`);
}

export const kernels = ["avx512", "avx2", "portable"];

/** A 3x3, stride-1 convolution of n x c x h x w into o channels with `pad` on every side. */
export function conv3x3Params(
  n: number,
  c: number,
  o: number,
  h: number,
  w: number,
  pad: number,
): Conv2dParams {
  return {
    batch: n,
    inChannels: c,
    inH: h,
    inW: w,
    outChannels: o,
    outH: h + 2 * pad - 2,
    outW: w + 2 * pad - 2,
    kernelH: 3,
    kernelW: 3,
    strideH: 1,
    strideW: 1,
    padH: pad,
    padW: pad,
    dilationH: 1,
    dilationW: 1,
    groups: 1,
  };
}

/**
 * For a describe whose tests switch the micro-kernel or the thread count: registers an `after` hook that puts back
 * the best kernel and the thread count the addon had, and returns that count (for tests restoring it themselves).
 */
export function restoreKernelAndThreadsAfter(): { threads: number } {
  const addon = nativeAddon;
  const threads = addon ? addon.info().threads : 1;
  after(() => {
    addon?.setKernel("");
    addon?.setNumThreads(threads);
  });
  return { threads };
}
