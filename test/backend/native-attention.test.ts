// The native fused attention (scores computed transposed, online softmax down the key blocks) against the
// reference at every SIMD level: several key blocks with growing maxima (the running output is rescaled),
// ragged query tiles, per-head masks with fully masked queries, cross-attention shapes, head widths that the
// main and the narrow micro-kernel tile, 1 and 2 threads.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type AttentionParams, contiguousHeads, type HeadLayout } from "../../src/backend/index.js";
import { nativeAddon } from "../../src/backend/native/index.js";
import { testRng } from "../helpers.js";
import { close, kernels, nat, randArray, ref, restoreKernelAndThreadsAfter, skip } from "./native-helpers.js";

describe("native attention", { skip }, () => {
  const addon = nativeAddon!;
  const initial = restoreKernelAndThreadsAfter();
  const rng = testRng(31);

  function problem(
    batch: number,
    lq: number,
    lk: number,
    d: number,
    dv: number,
    masked: boolean,
    spread = 2,
  ) {
    const q = randArray(batch * lq * d, rng, -spread, spread);
    const k = randArray(batch * lk * d, rng, -spread, spread);
    // later keys score higher, so the running max grows from block to block
    for (let b = 0; b < batch; b++) for (let j = 0; j < lk; j++) k[(b * lk + j) * d] = (j / lk) * 4 * spread;
    const v = randArray(batch * lk * dv, rng);
    let mask: Float32Array | null = null;
    if (masked) {
      // a mask per head (batch stride lq * lk): random biases, every third key masked with float32's lowest value
      // (what PyTorch code masks with), query 1 fully masked with -inf (zeros), query 2 fully masked with the
      // lowest value (still a softmax: uniform weights)
      mask = randArray(batch * lq * lk, rng, -1, 1);
      for (let b = 0; b < batch; b++)
        for (let i = 0; i < lq; i++)
          for (let j = 0; j < lk; j++) {
            if (j % 3 === 0 || i === 2) mask[(b * lq + i) * lk + j] = -3.4028234663852886e38;
            if (i === 1) mask[(b * lq + i) * lk + j] = Number.NEGATIVE_INFINITY;
          }
    }
    const p: Omit<AttentionParams, "out"> = {
      batch,
      lq,
      lk,
      d,
      dv,
      scale: 1 / Math.sqrt(d),
      q,
      k,
      v,
      mask,
      maskBatchStride: masked ? lq * lk : 0,
      maskRowStride: masked ? lk : 0,
    };
    return p;
  }

  const shapes: [number, number, number, number, number, boolean][] = [
    [2, 100, 700, 40, 40, false], // three key blocks, ragged query tile
    [3, 33, 300, 16, 24, true], // per-head masks, a fully masked query
    [2, 130, 77, 40, 40, false], // cross-attention: 77 keys
    [2, 40, 300, 40, 80, true], // head widths in narrow-kernel panels (AVX-512: 10 rows)
    [1, 1, 5, 64, 8, true],
    [1, 7, 1, 3, 2, false],
  ];

  for (const kernel of kernels) {
    it(`matches the reference (${kernel})`, (t) => {
      if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} kernel on this CPU`);
      try {
        for (const [batch, lq, lk, d, dv, masked] of shapes) {
          const p = problem(batch, lq, lk, d, dv, masked);
          const want = new Float32Array(batch * lq * dv);
          const got = new Float32Array(batch * lq * dv).fill(Number.NaN);
          ref.attention({ ...p, out: want });
          nat.attention({ ...p, out: got });
          close(got, want, `b${batch} lq${lq} lk${lk} d${d} dv${dv} masked=${masked}`);
          if (masked && lq > 1)
            assert.deepEqual(Array.from(got.subarray(dv, 2 * dv)), new Array(dv).fill(0), "masked query");
          if (masked && lq > 2) {
            // the mean of the head's values
            const mean = new Float32Array(dv);
            for (let j = 0; j < lk; j++) for (let c = 0; c < dv; c++) mean[c]! += p.v[j * dv + c]! / lk;
            close(
              got.subarray(2 * dv, 3 * dv),
              mean,
              "query masked with the lowest float32 everywhere",
              1e-5,
            );
          }
        }
      } finally {
        addon.setKernel("");
      }
    });
  }

  it("gives the same result on 1 and 2 threads, and NaN scores give NaN rows", () => {
    const p = problem(4, 200, 600, 40, 40, false);
    const outs = [1, 2].map((threads) => {
      addon.setNumThreads(threads);
      const out = new Float32Array(4 * 200 * 40);
      nat.attention({ ...p, out });
      return out;
    });
    addon.setNumThreads(initial.threads);
    assert.deepEqual(outs[1], outs[0]);
    const q = p.q.slice();
    q[5 * 40] = Number.NaN; // query 5 of head 0
    const out = new Float32Array(4 * 200 * 40);
    nat.attention({ ...p, q, out });
    assert.ok(Number.isNaN(out[5 * 40]!));
    assert.ok(Number.isFinite(out[6 * 40]!));
  });

  it("reads and writes strided head layouts (head-split views, shared keys, padded rows, offsets)", () => {
    const [outer, heads, lq, lk, d, dv] = [2, 3, 37, 290, 24, 16];
    const batch = outer * heads;
    // q: [outer, lq, heads, d] after 5 unused elements (the head-split view of [outer, lq, heads * d])
    const ql: HeadLayout = { offset: 5, outerStride: lq * heads * d, headStride: d, rowStride: heads * d };
    // k: one [lk, d] per outer index shared by its heads (head stride 0), as a broadcast view gives
    const kl: HeadLayout = { offset: 0, outerStride: lk * d, headStride: 0, rowStride: d };
    // v: [outer, heads, lk, dv + 3] with 3 padding elements per row
    const vl: HeadLayout = {
      offset: 2,
      outerStride: heads * lk * (dv + 3),
      headStride: lk * (dv + 3),
      rowStride: dv + 3,
    };
    // out: [outer, lq, heads, dv] after an offset
    const ol: HeadLayout = { offset: 7, outerStride: lq * heads * dv, headStride: dv, rowStride: heads * dv };
    const q = randArray(5 + outer * lq * heads * d, rng, -2, 2);
    const k = randArray(outer * lk * d, rng, -2, 2);
    const v = randArray(2 + outer * heads * lk * (dv + 3), rng);
    const gather = (src: Float32Array, l: HeadLayout, rows: number, cols: number) => {
      const dst = new Float32Array(batch * rows * cols);
      for (let b = 0; b < batch; b++) {
        const base = l.offset + Math.floor(b / heads) * l.outerStride + (b % heads) * l.headStride;
        for (let r = 0; r < rows; r++)
          for (let c = 0; c < cols; c++) dst[(b * rows + r) * cols + c] = src[base + r * l.rowStride + c]!;
      }
      return dst;
    };
    const base = { batch, lq, lk, d, dv, scale: 0.3 };
    const want = new Float32Array(batch * lq * dv);
    ref.attention({
      ...base,
      q: gather(q, ql, lq, d),
      k: gather(k, kl, lk, d),
      v: gather(v, vl, lk, dv),
      out: want,
    });
    const strided = { ...base, q, k, v, heads, qLayout: ql, kLayout: kl, vLayout: vl, outLayout: ol };
    for (const [name, backend] of [
      ["native", nat],
      ["reference", ref],
    ] as const) {
      for (const threads of [1, 2]) {
        addon.setNumThreads(threads);
        const out = new Float32Array(7 + batch * lq * dv).fill(Number.NaN);
        backend.attention({ ...strided, out });
        close(gather(out, ol, lq, dv), want, `${name}, ${threads} thread(s)`);
        assert.ok(Array.from(out.subarray(0, 7)).every(Number.isNaN), "elements before the offset untouched");
      }
    }
    addon.setNumThreads(initial.threads);
    assert.deepEqual(contiguousHeads(heads, lq, d), {
      offset: 0,
      outerStride: heads * lq * d,
      headStride: lq * d,
      rowStride: d,
    });
  });

  it("refuses layouts that do not fit: heads not dividing the batch, views past the array, a short layout list", () => {
    const [batch, lq, lk, d] = [4, 3, 5, 2];
    const q = new Float32Array(batch * lq * d);
    const k = new Float32Array(batch * lk * d);
    const v = new Float32Array(batch * lk * d);
    const out = new Float32Array(batch * lq * d);
    const call = (heads: number, layouts: number[]) =>
      addon.attention(q, k, v, out, null, batch, lq, lk, d, d, 1, 0, 0, heads, layouts);
    const contiguous = (rows: number) => [0, 2 * rows * d, rows * d, d];
    const all = [...contiguous(lq), ...contiguous(lk), ...contiguous(lk), ...contiguous(lq)];
    call(2, all); // fits
    assert.throws(() => call(3, all), /heads must divide batch/);
    const tooFar = [...all];
    tooFar[12] = 1; // out offset 1: the last row runs past the array
    assert.throws(() => call(2, tooFar), /attention out: view reaches elements/);
    assert.throws(() => call(2, all.slice(0, 12)), /layouts must have 16 numbers/);
  });
});
