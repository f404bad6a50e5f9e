// ResnetBlock2D, Downsample2D / Upsample2D, GEGLU FeedForward and the transformer blocks: diffusers' state-dict
// names, and outputs against compositions of the plain ops in diffusers' order.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { F, Generator, noGrad, randn, type Tensor, tensor } from "../../../src/index.js";
import {
  BasicTransformerBlock,
  Downsample2D,
  FeedForward,
  type GEGLU,
  ResnetBlock2D,
  Transformer2DModel,
  Upsample2D,
} from "../../../src/models/index.js";
import type { Linear } from "../../../src/nn/index.js";
import { addLoraAdapter } from "../../../src/nn/lora.js";
import { assertAllClose, gradcheck, randomTensor } from "../../helpers.js";

const gen = (s: number) => new Generator().manualSeed(s);
const keys = (m: { stateDict(): Map<string, Tensor> }) => [...m.stateDict().keys()];
const close = (got: Tensor, want: Tensor, what = "output") =>
  assertAllClose(got.toFloat32Array(), want.toFloat32Array(), 1e-5, 1e-4, what);

/** Random affine GroupNorm/LayerNorm parameters, so that a swapped or ignored parameter shows. */
function randomizeNorms(m: { namedParameters(): [string, Tensor][] }, seed: number): void {
  for (const [name, p] of m.namedParameters()) {
    if (/norm/.test(name))
      (p.dataSync() as Float32Array).set(randn(p.shape, { generator: gen(seed++) }).toFloat32Array());
  }
}

describe("ResnetBlock2D", () => {
  it("uses diffusers' names; a 1x1 conv_shortcut only when channels change", () => {
    const same = new ResnetBlock2D({ inChannels: 4, tembChannels: 6, groups: 2, skipInit: true });
    assert.deepEqual(keys(same), [
      "norm1.weight",
      "norm1.bias",
      "conv1.weight",
      "conv1.bias",
      "time_emb_proj.weight",
      "time_emb_proj.bias",
      "norm2.weight",
      "norm2.bias",
      "conv2.weight",
      "conv2.bias",
    ]);
    const change = new ResnetBlock2D({
      inChannels: 4,
      outChannels: 6,
      tembChannels: null,
      groups: 2,
      skipInit: true,
    });
    assert.ok(!keys(change).some((k) => k.startsWith("time_emb_proj")));
    assert.deepEqual(change.conv_shortcut!.weight.shape, [6, 4, 1, 1]);
  });

  it("= (shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) + proj(silu(temb)))))) / scale", () => {
    const r = new ResnetBlock2D({
      inChannels: 4,
      outChannels: 6,
      tembChannels: 5,
      groups: 2,
      eps: 1e-6,
      outputScaleFactor: 2,
      generator: gen(1),
    });
    randomizeNorms(r, 10);
    const x = randn([2, 4, 5, 3], { generator: gen(2) });
    const temb = randn([2, 5], { generator: gen(3) });
    const got = noGrad(() => r.call(x, temb));
    let h = F.silu(F.group_norm(x, 2, r.norm1.weight, r.norm1.bias, 1e-6));
    h = F.conv2d(h, r.conv1.weight, r.conv1.bias, { padding: 1 });
    h = h.add(F.linear(F.silu(temb), r.time_emb_proj!.weight, r.time_emb_proj!.bias).reshape([2, 6, 1, 1]));
    const conv2In = F.silu(F.group_norm(h, 2, r.norm2.weight, r.norm2.bias, 1e-6));
    h = F.conv2d(conv2In, r.conv2.weight, r.conv2.bias, { padding: 1 });
    const shortcut = F.conv2d(x, r.conv_shortcut!.weight, r.conv_shortcut!.bias);
    const want = shortcut.add(h).div(2);
    close(got, want);
    // the skip connection goes into conv2's kernel, unless an on-the-fly LoRA adapter hooks conv2
    const lora = addLoraAdapter(r.conv2, {
      down: randn([2, 6, 3, 3], { generator: gen(4) }),
      up: randn([6, 2, 1, 1], { generator: gen(5) }),
    });
    close(
      noGrad(() => r.call(x, temb)),
      noGrad(() => shortcut.add(r.conv2.call(conv2In)).div(2)),
    );
    lora.remove();
    close(
      noGrad(() => r.call(x, temb)),
      got,
    );
  });

  it("has gradients (finite differences) for x and temb", () => {
    const r = new ResnetBlock2D({
      inChannels: 2,
      outChannels: 4,
      tembChannels: 3,
      groups: 2,
      generator: gen(4),
    });
    gradcheck((x, t) => r.call(x, t), [randomTensor([1, 2, 3, 3], 5), randomTensor([1, 3], 6)]);
  });
});

describe("Downsample2D / Upsample2D", () => {
  const x = randn([1, 3, 5, 5], { generator: gen(7) });

  it("conv stride 2; padding 0 pads only the bottom and right (the VAE encoder)", () => {
    const d1 = new Downsample2D(3, { outChannels: 4, generator: gen(8) });
    assert.deepEqual(keys(d1), ["conv.weight", "conv.bias"]);
    const w = d1.conv!;
    close(
      noGrad(() => d1.call(x)),
      F.conv2d(x, w.weight, w.bias, { stride: 2, padding: 1 }),
    );
    assert.deepEqual(d1.call(x).shape, [1, 4, 3, 3]);
    const d0 = new Downsample2D(3, { padding: 0, generator: gen(9) });
    const w0 = d0.conv!;
    close(
      noGrad(() => d0.call(x)),
      F.conv2d(F.pad(x, [0, 1, 0, 1]), w0.weight, w0.bias, { stride: 2 }),
    );
    assert.deepEqual(d0.call(x).shape, [1, 3, 2, 2]);
  });

  it("without a conv: 2x2 average pooling", () => {
    const pool = new Downsample2D(1, { useConv: false });
    const img = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 1, 4, 4]);
    assert.deepEqual(Array.from(pool.call(img).toFloat32Array()), [3.5, 5.5, 11.5, 13.5]);
    assert.throws(
      () => new Downsample2D(2, { useConv: false, outChannels: 3 }),
      /average pooling keeps the channels/,
    );
  });

  it("nearest x2 (or to a given size) then a 3x3 conv", () => {
    const up = new Upsample2D(1, { useConv: false });
    const img = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
    assert.deepEqual(
      Array.from(up.call(img).toFloat32Array()),
      [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4],
    );
    assert.deepEqual(up.call(img, [3, 4]).shape, [1, 1, 3, 4]);
    const conv = new Upsample2D(3, { outChannels: 2, generator: gen(10) });
    const want = F.conv2d(F.interpolate(x, { scaleFactor: 2 }), conv.conv!.weight, conv.conv!.bias, {
      padding: 1,
    });
    close(
      noGrad(() => conv.call(x)),
      want,
    );
  });
});

describe("FeedForward / BasicTransformerBlock / Transformer2DModel", () => {
  it("FeedForward: net.2(a * gelu(g)) with [a, g] = net.0.proj(x)", () => {
    const ff = new FeedForward(4, { mult: 2, generator: gen(11) });
    assert.deepEqual(keys(ff), ["net.0.proj.weight", "net.0.proj.bias", "net.2.weight", "net.2.bias"]);
    assert.deepEqual(ff.stateDict().get("net.0.proj.weight")!.shape, [16, 4]);
    const x = randn([2, 3, 4], { generator: gen(12) });
    const proj = ff.stateDict();
    const h = F.linear(x, proj.get("net.0.proj.weight")!, proj.get("net.0.proj.bias")!);
    const gated = h.slice(-1, 0, 8).mul(F.gelu(h.slice(-1, 8, 16)));
    close(
      noGrad(() => ff.call(x)),
      F.linear(gated, proj.get("net.2.weight")!, proj.get("net.2.bias")!),
    );
    // an on-the-fly LoRA on the projection is honoured (the fused projection + GEGLU steps aside for it)
    const geglu = ff.net.at(0) as GEGLU;
    const lora = addLoraAdapter(geglu.proj, {
      down: randn([2, 4], { generator: gen(13) }),
      up: randn([16, 2], { generator: gen(14) }),
    });
    const hooked = noGrad(() => geglu.call(x));
    const hp = noGrad(() => geglu.proj.call(x));
    close(hooked, hp.slice(-1, 0, 8).mul(F.gelu(hp.slice(-1, 8, 16))));
    lora.remove();
    close(
      noGrad(() => geglu.call(x)),
      gated,
    );
  });

  it("BasicTransformerBlock: diffusers' names (no q/k/v bias; attn2 keys/values from the encoder states)", () => {
    const block = new BasicTransformerBlock(8, 2, 4, { crossAttentionDim: 6, skipInit: true });
    const sd = block.stateDict();
    assert.deepEqual(
      keys(block).filter((k) => k.startsWith("attn2")),
      [
        "attn2.to_q.weight",
        "attn2.to_k.weight",
        "attn2.to_v.weight",
        "attn2.to_out.0.weight",
        "attn2.to_out.0.bias",
      ],
    );
    assert.deepEqual(sd.get("attn2.to_k.weight")!.shape, [8, 6]);
    assert.deepEqual(sd.get("attn1.to_k.weight")!.shape, [8, 8]);
    for (const k of ["norm1.weight", "norm2.bias", "norm3.weight", "ff.net.0.proj.weight", "ff.net.2.bias"])
      assert.ok(sd.has(k), k);
    const only = new BasicTransformerBlock(8, 2, 4, {
      crossAttentionDim: 6,
      onlyCrossAttention: true,
      skipInit: true,
    });
    assert.deepEqual(only.attn1.to_k.weight.shape, [8, 6]);
  });

  it("BasicTransformerBlock: h = x + attn1, h + attn2, h + ff, the skips added inside the output projections", () => {
    const block = new BasicTransformerBlock(8, 2, 4, { crossAttentionDim: 6, generator: gen(16) });
    randomizeNorms(block, 30);
    const x = randn([2, 5, 8], { generator: gen(17) });
    const ctx = randn([2, 3, 6], { generator: gen(18) });
    const composed = () =>
      noGrad(() => {
        let h = x.add(block.attn1.call(block.norm1.call(x)));
        h = h.add(block.attn2.call(block.norm2.call(h), ctx));
        return h.add(block.ff.call(block.norm3.call(h))).toFloat32Array();
      });
    assert.deepEqual(noGrad(() => block.call(x, ctx)).toFloat32Array(), composed());
    // on-the-fly LoRA adapters on the output projections are honoured (the fused sums step aside for them)
    const adapters = [block.attn1.to_out.at(0), block.ff.net.at(2)].map((layer, i) =>
      addLoraAdapter(layer as Linear, {
        down: randn([2, (layer as Linear).inFeatures], { generator: gen(19 + i) }),
        up: randn([8, 2], { generator: gen(21 + i) }),
      }),
    );
    const hooked = noGrad(() => block.call(x, ctx)).toFloat32Array();
    assert.deepEqual(hooked, composed());
    for (const a of adapters) a.remove();
    assert.notDeepEqual(noGrad(() => block.call(x, ctx)).toFloat32Array(), hooked);
    // with gradients: the same values, and the skip connections carry gradient to x
    gradcheck((t) => block.call(t, ctx), [randomTensor([2, 3, 8], 23)]);
  });

  it("Transformer2DModel: x + proj_out(blocks(proj_in(norm(x)))); 1x1 convs and linear projections agree", () => {
    const conv = new Transformer2DModel(2, 4, 8, {
      crossAttentionDim: 6,
      normNumGroups: 4,
      generator: gen(13),
    });
    randomizeNorms(conv, 20);
    assert.deepEqual(conv.stateDict().get("proj_in.weight")!.shape, [8, 8, 1, 1]);
    const x = randn([2, 8, 3, 2], { generator: gen(14) });
    const ctx = randn([2, 5, 6], { generator: gen(15) });
    const got = noGrad(() => conv.call(x, ctx));
    // diffusers' order with real 1x1 convolutions
    const want = noGrad(() => {
      let h = F.group_norm(x, 4, conv.norm.weight, conv.norm.bias, 1e-6);
      const pin = conv.proj_in as unknown as { weight: Tensor; bias: Tensor };
      h = F.conv2d(h, pin.weight, pin.bias);
      let t = h.permute(0, 2, 3, 1).reshape([2, 6, 8]);
      for (const b of conv.transformer_blocks) t = b.call(t, ctx);
      h = t.reshape([2, 3, 2, 8]).permute(0, 3, 1, 2).contiguous();
      const pout = conv.proj_out as unknown as { weight: Tensor; bias: Tensor };
      return F.conv2d(h, pout.weight, pout.bias).add(x);
    });
    close(got, want);
    const lin = new Transformer2DModel(2, 4, 8, {
      crossAttentionDim: 6,
      normNumGroups: 4,
      useLinearProjection: true,
      skipInit: true,
    });
    const sd = conv.stateDict();
    for (const k of ["proj_in.weight", "proj_out.weight"]) sd.set(k, sd.get(k)!.reshape([8, 8]));
    lin.loadStateDict(sd);
    close(
      noGrad(() => lin.call(x, ctx)),
      got,
    );
  });
});
