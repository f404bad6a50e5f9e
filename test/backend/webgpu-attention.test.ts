// WebGPU fused attention against the reference backend: contiguous and head-split layouts, lq != lk (partial
// query blocks and key tiles), d != dv up to SD's 160 and past one 160-column value chunk, and additive masks
// (broadcast with stride 0, per head, with -Infinity entries and fully masked rows, which give zeros).
// Tolerance: 1e-5 of the output's scale (max(1, max |want|)); the GPU works in float32, the reference in float64.
import { describe, it } from "node:test";
import {
  type AttentionParams,
  type BufferTypes,
  contiguousHeads,
  type HeadLayout,
} from "../../src/backend/index.js";
import { testRng } from "../rng.js";
import { adapter, assertClose, down, gpu, randArray, ref, skip, up } from "./webgpu-helpers.js";

const TOL = 1e-5;

interface Case {
  outer: number;
  heads: number;
  lq: number;
  lk: number;
  d: number;
  dv: number;
  /** [outer, L, heads * D] tensors viewed per head, instead of contiguous [outer * heads, L, D] */
  split?: boolean;
  mask?: "broadcast" | "per-head";
  /** leading elements before every operand (offsets into the buffers) */
  offset?: number;
}

describe(`webgpu attention (${adapter})`, { skip }, () => {
  const rng = testRng(21);

  async function check(c: Case): Promise<void> {
    const { outer, heads, lq, lk, d, dv } = c;
    const batch = outer * heads;
    const off = c.offset ?? 0;
    const layout = (rows: number, cols: number): HeadLayout =>
      c.split
        ? { offset: off, outerStride: rows * heads * cols, headStride: cols, rowStride: heads * cols }
        : { ...contiguousHeads(heads, rows, cols), offset: off };
    const q = randArray(off + batch * lq * d, rng, -2, 2);
    const k = randArray(off + batch * lk * d, rng, -2, 2);
    const v = randArray(off + batch * lk * dv, rng);
    const outSize = off + batch * lq * dv;
    let mask: Float32Array | null = null;
    let maskBatchStride = 0;
    if (c.mask) {
      const perHead = c.mask === "per-head";
      mask = randArray((perHead ? batch : 1) * lq * lk, rng, -3, 1);
      maskBatchStride = perHead ? lq * lk : 0;
      // -Infinity entries, and the whole of query row 1 masked (zeros out)
      for (let i = 0; i < mask.length; i += 3) mask[i] = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < lk; j++) mask[lk + j] = Number.NEGATIVE_INFINITY;
    }
    const shape = {
      batch,
      lq,
      lk,
      d,
      dv,
      scale: 1 / Math.sqrt(d),
      heads,
      qLayout: layout(lq, d),
      kLayout: layout(lk, d),
      vLayout: layout(lk, dv),
      outLayout: layout(lq, dv),
      maskBatchStride,
      maskRowStride: lk,
    };
    const out0 = randArray(outSize, rng);
    const want = out0.slice();
    ref.attention({ ...shape, q, k, v, out: want, mask });
    const out = up(out0);
    const p: AttentionParams<BufferTypes> = {
      ...shape,
      q: up(q),
      k: up(k),
      v: up(v),
      out,
      mask: mask ? up(mask) : null,
    };
    gpu.attention(p);
    assertClose(await down(out, outSize), want, TOL, JSON.stringify(c));
  }

  it("contiguous heads, lq != lk, d != dv", async () => {
    await check({ outer: 2, heads: 1, lq: 17, lk: 33, d: 40, dv: 40 });
    await check({ outer: 1, heads: 2, lq: 40, lk: 7, d: 24, dv: 13, offset: 5 });
    await check({ outer: 1, heads: 1, lq: 1, lk: 1, d: 1, dv: 1 });
  });

  it("head-split layouts", async () => {
    await check({ outer: 2, heads: 3, lq: 5, lk: 37, d: 16, dv: 24, split: true });
    await check({ outer: 1, heads: 2, lq: 33, lk: 18, d: 80, dv: 64, split: true, offset: 3 });
  });

  it("masks: broadcast (stride 0) and per head, with -Infinity and fully masked rows", async () => {
    await check({ outer: 2, heads: 2, lq: 9, lk: 21, d: 8, dv: 12, mask: "broadcast" });
    await check({ outer: 1, heads: 3, lq: 35, lk: 17, d: 20, dv: 16, split: true, mask: "per-head" });
  });

  it("wide heads: d = dv = 160 and dv past one 160-column chunk", async () => {
    await check({ outer: 1, heads: 1, lq: 9, lk: 20, d: 160, dv: 160 });
    await check({ outer: 1, heads: 2, lq: 5, lk: 19, d: 64, dv: 170, mask: "per-head" });
  });
});
