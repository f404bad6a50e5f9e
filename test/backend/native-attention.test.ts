// The native fused attention (scores computed transposed, online softmax down the key blocks) against the
// reference at every SIMD level: several key blocks with growing maxima (the running output is rescaled),
// ragged query tiles, per-head masks with fully masked queries, cross-attention shapes, 1 and 2 threads.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { AttentionParams } from "../../src/backend/index.js";
import { nativeAddon } from "../../src/backend/native/index.js";
import { testRng } from "../helpers.js";
import { close, kernels, nat, randArray, ref, skip } from "./native-helpers.js";

describe("native attention", { skip }, () => {
  const addon = nativeAddon!;
  const initial = addon?.info();
  after(() => {
    addon.setKernel("");
    addon.setNumThreads(initial.threads);
  });
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
      // a mask per head (batch stride lq * lk): random biases, every third key masked, query 1 fully masked
      mask = randArray(batch * lq * lk, rng, -1, 1);
      for (let b = 0; b < batch; b++)
        for (let i = 0; i < lq; i++)
          for (let j = 0; j < lk; j++)
            if (j % 3 === 0 || i === 1) mask[(b * lq + i) * lk + j] = Number.NEGATIVE_INFINITY;
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
});
