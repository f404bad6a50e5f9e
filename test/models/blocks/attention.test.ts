// Attention against a plain-loop implementation of multi-head attention, in its token and image forms, and its
// gradient by finite differences.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { F, Generator, noGrad, randn, type Tensor } from "../../../src/index.js";
import { Attention } from "../../../src/models/index.js";
import { assertAllClose, gradcheck, randomTensor } from "../../helpers.js";

/** x [L, Din] W [Dout, Din] (+ b) as nested loops. */
function affine(x: Float32Array, rows: number, w: Tensor, b: Tensor | null): Float32Array {
  const [dout, din] = w.shape as [number, number];
  const wd = w.toFloat32Array();
  const bd = b?.toFloat32Array();
  const out = new Float32Array(rows * dout);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < dout; o++) {
      let s = bd ? bd[o]! : 0;
      for (let i = 0; i < din; i++) s += x[r * din + i]! * wd[o * din + i]!;
      out[r * dout + o] = s;
    }
  return out;
}

/** One batch item: softmax(q k^T / sqrt(d)) v per head, then to_out. */
function naive(attn: Attention, x: Float32Array, lq: number, ctx: Float32Array, lk: number): Float32Array {
  const q = affine(x, lq, attn.to_q.weight, attn.to_q.bias);
  const k = affine(ctx, lk, attn.to_k.weight, attn.to_k.bias);
  const v = affine(ctx, lk, attn.to_v.weight, attn.to_v.bias);
  const inner = attn.innerDim;
  const d = inner / attn.heads;
  const o = new Float32Array(lq * inner);
  for (let h = 0; h < attn.heads; h++)
    for (let i = 0; i < lq; i++) {
      const s = new Float64Array(lk);
      for (let j = 0; j < lk; j++) {
        for (let t = 0; t < d; t++) s[j]! += q[i * inner + h * d + t]! * k[j * inner + h * d + t]!;
        s[j]! /= Math.sqrt(d);
      }
      const m = Math.max(...s);
      const e = s.map((z) => Math.exp(z - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let t = 0; t < d; t++) {
        let acc = 0;
        for (let j = 0; j < lk; j++) acc += (e[j]! / z) * v[j * inner + h * d + t]!;
        o[i * inner + h * d + t] = acc;
      }
    }
  const out = attn.to_out.at(0) as unknown as { weight: Tensor; bias: Tensor | null };
  return affine(o, lq, out.weight, out.bias);
}

const gen = (s: number) => new Generator().manualSeed(s);

describe("Attention", () => {
  it("multi-head cross-attention on tokens", () => {
    const attn = new Attention({
      queryDim: 8,
      crossAttentionDim: 6,
      heads: 2,
      dimHead: 4,
      generator: gen(1),
    });
    assert.deepEqual(
      [...attn.stateDict().keys()],
      ["to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias"],
    );
    const x = randn([2, 5, 8], { generator: gen(2) });
    const ctx = randn([2, 3, 6], { generator: gen(3) });
    const got = noGrad(() => attn.call(x, ctx)).toFloat32Array();
    for (let b = 0; b < 2; b++) {
      const want = naive(attn, x.select(0, b).toFloat32Array(), 5, ctx.select(0, b).toFloat32Array(), 3);
      assertAllClose(got.subarray(b * 40, (b + 1) * 40), want, 1e-5, 1e-4, `batch ${b}`);
    }
    // self-attention when no encoder states are given
    const self = new Attention({ queryDim: 8, heads: 4, dimHead: 3, bias: true, generator: gen(4) });
    const selfGot = noGrad(() => self.call(x)).toFloat32Array();
    assertAllClose(
      selfGot.subarray(0, 40),
      naive(self, x.select(0, 0).toFloat32Array(), 5, x.select(0, 0).toFloat32Array(), 5),
      1e-5,
      1e-4,
    );
  });

  it("image input with GroupNorm, residual and output rescale (the VAE mid block's form)", () => {
    const attn = new Attention({
      queryDim: 4,
      heads: 1,
      dimHead: 4,
      bias: true,
      normNumGroups: 2,
      eps: 1e-6,
      residualConnection: true,
      rescaleOutputFactor: 2,
      generator: gen(5),
    });
    const g = attn.group_norm!;
    (g.weight!.dataSync() as Float32Array).set([1.5, 0.5, -1, 2]);
    (g.bias!.dataSync() as Float32Array).set([0.1, -0.2, 0.3, 0]);
    const x = randn([1, 4, 3, 2], { generator: gen(6) });
    const got = noGrad(() => attn.call(x));
    assert.deepEqual(got.shape, [1, 4, 3, 2]);
    const normed = F.group_norm(x, 2, g.weight, g.bias, 1e-6);
    const tokens = normed.reshape([4, 6]).transpose(0, 1).contiguous().toFloat32Array();
    const o = naive(attn, tokens, 6, tokens, 6);
    const xd = x.toFloat32Array();
    const want = new Float32Array(24);
    for (let c = 0; c < 4; c++)
      for (let p = 0; p < 6; p++) want[c * 6 + p] = (o[p * 4 + c]! + xd[c * 6 + p]!) / 2;
    assertAllClose(got.toFloat32Array(), want, 1e-5, 1e-4);
  });

  it("has gradients (finite differences) for queries and context", () => {
    const attn = new Attention({
      queryDim: 4,
      crossAttentionDim: 3,
      heads: 2,
      dimHead: 2,
      generator: gen(7),
    });
    gradcheck((x, c) => attn.call(x, c), [randomTensor([1, 3, 4], 1), randomTensor([1, 2, 3], 2)]);
  });

  it("checks shapes", () => {
    const attn = new Attention({ queryDim: 8, crossAttentionDim: 6, heads: 2, dimHead: 4, skipInit: true });
    assert.throws(
      () => attn.call(randn([2, 5, 7])),
      /expected \[B, L, 8\] or \[B, 8, H, W\], got \[2, 5, 7\]/,
    );
    assert.throws(
      () => attn.call(randn([2, 5, 8]), randn([2, 3, 5])),
      /encoder hidden states must be \[2, L, 6\]/,
    );
  });
});
