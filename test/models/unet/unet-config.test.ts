// UNet2DConditionModel configs: the named configs resolve as diffusers builds those models, bad configs fail with
// clear messages, and the optional embeddings (SDXL text_time, class labels, LCM cond) are wired where diffusers
// wires them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, Generator, noGrad, randn, type Tensor, tensor, zeros } from "../../../src/index.js";
import {
  buildDownBlock,
  ModelConfigError,
  planUNet,
  ResnetBlock2D,
  UNet2DConditionConfig,
  UNet2DConditionModel,
} from "../../../src/models/index.js";

const gen = (seed: number) => new Generator().manualSeed(seed);

/** A small SD-style config (groups 8, two levels). */
const TINY = {
  block_out_channels: [16, 32],
  down_block_types: ["CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D"],
  layers_per_block: 1,
  attention_head_dim: 2,
  cross_attention_dim: 8,
  norm_num_groups: 8,
};

function build(overrides: Record<string, unknown>, seed = 1): UNet2DConditionModel {
  return new UNet2DConditionModel({ ...TINY, ...overrides }, { generator: gen(seed) });
}

/** A copy of `from`'s weights into `to` (keys of `to` only). */
function copyWeights(from: UNet2DConditionModel, to: UNet2DConditionModel): void {
  const sd = from.stateDict();
  to.loadStateDict(new Map([...to.stateDict().keys()].map((k) => [k, sd.get(k)!])));
}

const shapeOf = (m: UNet2DConditionModel, key: string): readonly number[] | undefined =>
  m.stateDict().get(key)?.shape;

describe("UNet2DConditionConfig named configs", () => {
  it("sd15: 8 heads everywhere (legacy attention_head_dim), 1x1-conv projections", () => {
    const cfg = UNet2DConditionConfig.sd15();
    assert.equal(cfg.cross_attention_dim, 768);
    assert.equal(cfg.use_linear_projection, false);
    assert.equal(cfg.sample_size, 64);
    const plan = planUNet(cfg);
    assert.equal(plan.timeEmbedDim, 1280);
    assert.deepEqual(
      plan.down.map((p) => [p.type, p.inChannels, p.outChannels, p.heads, p.resample]),
      [
        ["CrossAttnDownBlock2D", 320, 320, 8, true],
        ["CrossAttnDownBlock2D", 320, 640, 8, true],
        ["CrossAttnDownBlock2D", 640, 1280, 8, true],
        ["DownBlock2D", 1280, 1280, 8, false],
      ],
    );
    assert.deepEqual(
      plan.up.map((p) => [p.type, p.prevOutputChannels, p.inChannels, p.outChannels, p.numLayers]),
      [
        ["UpBlock2D", 1280, 1280, 1280, 3],
        ["CrossAttnUpBlock2D", 1280, 640, 1280, 3],
        ["CrossAttnUpBlock2D", 1280, 320, 640, 3],
        ["CrossAttnUpBlock2D", 640, 320, 320, 3],
      ],
    );
    assert.deepEqual([plan.mid!.heads, plan.mid!.inChannels], [8, 1280]);
    assert.equal(UNet2DConditionConfig.sd15({ in_channels: 9 }).in_channels, 9);
  });

  it("sd21: heads [5, 10, 20, 20] of 64 channels, linear projections, upcast attention", () => {
    const cfg = UNet2DConditionConfig.sd21();
    assert.deepEqual(
      [cfg.cross_attention_dim, cfg.use_linear_projection, cfg.upcast_attention],
      [1024, true, true],
    );
    const plan = planUNet(cfg);
    assert.deepEqual(
      plan.down.map((p) => p.outChannels / p.heads),
      [64, 64, 64, 64],
    );
    assert.deepEqual(
      plan.up.map((p) => p.heads),
      [20, 20, 10, 5],
    );
  });

  it("sdxl: transformer depths [1, 2, 10] reversed on the way up, text_time embedding", () => {
    const cfg = UNet2DConditionConfig.sdxl();
    assert.deepEqual(
      [cfg.addition_embed_type, cfg.addition_time_embed_dim, cfg.projection_class_embeddings_input_dim],
      ["text_time", 256, 2816],
    );
    const plan = planUNet(cfg);
    assert.deepEqual(
      plan.down.map((p) => [p.type, p.transformerLayers, p.outChannels / p.heads]),
      [
        ["DownBlock2D", [1, 1], 64],
        ["CrossAttnDownBlock2D", [2, 2], 64],
        ["CrossAttnDownBlock2D", [10, 10], 64],
      ],
    );
    assert.deepEqual(plan.mid!.transformerLayers, [10]);
    assert.deepEqual(
      plan.up.map((p) => [p.type, p.transformerLayers, p.heads]),
      [
        ["CrossAttnUpBlock2D", [10, 10, 10], 20],
        ["CrossAttnUpBlock2D", [2, 2, 2], 10],
        ["UpBlock2D", [1, 1, 1], 5],
      ],
    );
  });

  it("keeps unknown keys and fills diffusers' defaults", () => {
    const cfg = UNet2DConditionConfig.from({ ...TINY, my_custom_key: [1, 2] });
    assert.deepEqual(cfg.my_custom_key, [1, 2]);
    assert.equal(cfg.mid_block_type, "UNetMidBlock2DCrossAttn");
    assert.equal(cfg.freq_shift, 0);
    assert.deepEqual(UNet2DConditionConfig.defaults().block_out_channels, [320, 640, 1280, 1280]);
  });
});

describe("UNet2DConditionConfig validation", () => {
  const bad = (overrides: Record<string, unknown>, message: RegExp) =>
    assert.throws(
      () => new UNet2DConditionModel({ ...TINY, ...overrides }, { skipInit: true }),
      (err: unknown) => err instanceof ModelConfigError && message.test(err.message),
    );

  it("rejects unknown block types", () => {
    bad(
      { down_block_types: ["AttnDownBlock2D", "DownBlock2D"] },
      /down_block_types\[0\] must be one of CrossAttnDownBlock2D, DownBlock2D, got "AttnDownBlock2D"/,
    );
    bad(
      { up_block_types: ["UpBlock2D", "KUpBlock2D"] },
      /up_block_types\[1\] must be one of .*got "KUpBlock2D"/,
    );
    bad(
      { mid_block_type: "UNetMidBlock2DSimpleCrossAttn" },
      /mid_block_type must be one of "UNetMidBlock2DCrossAttn"/,
    );
  });

  it("rejects channels that do not split into groups or heads", () => {
    bad(
      { block_out_channels: [16, 20] },
      /block_out_channels\[1\] = 20 is not divisible by norm_num_groups = 8/,
    );
    bad({ attention_head_dim: 3 }, /down block 0: 16 channels cannot be split into 3 attention heads/);
    assert.throws(
      () => new ResnetBlock2D({ inChannels: 12, outChannels: 16, groups: 8 }),
      /ResnetBlock2D norm1: 12 channels cannot be split into 8 GroupNorm groups/,
    );
  });

  it("rejects lists of the wrong length and values of the wrong type", () => {
    bad({ up_block_types: ["UpBlock2D"] }, /up_block_types must be a list of 2/);
    bad(
      { attention_head_dim: [2, 2, 2] },
      /attention_head_dim must be an integer >= 1 or a list of 2 of them/,
    );
    bad({ layers_per_block: "2" }, /layers_per_block must be an integer >= 1 or a list/);
    bad({ transformer_layers_per_block: [[1], 1] }, /reverse_transformer_layers_per_block is required/);
    bad(
      { transformer_layers_per_block: [[1, 1], 1], reverse_transformer_layers_per_block: [1, 1] },
      /down block 0: 2 transformer layer counts for 1 layers/,
    );
  });

  it("rejects options it does not implement, and incomplete SDXL settings", () => {
    bad(
      { resnet_time_scale_shift: "scale_shift" },
      /resnet_time_scale_shift = "scale_shift" is not supported \(supported: "default"\)/,
    );
    bad({ encoder_hid_dim_type: "text_proj" }, /encoder_hid_dim_type/);
    bad(
      { addition_embed_type: "text_time" },
      /needs addition_time_embed_dim and projection_class_embeddings_input_dim/,
    );
    bad({ class_embed_type: "projection" }, /needs projection_class_embeddings_input_dim/);
  });
});

describe("UNet2DConditionModel optional inputs", () => {
  const sample = randn([2, 4, 8, 8], { generator: gen(5) });
  const ehs = randn([2, 3, 8], { generator: gen(6) });

  it("SDXL text_time: add_embedding(cat(text_embeds, time_proj(time_ids))) is added to the time embedding", () => {
    const sdxlish = {
      addition_embed_type: "text_time",
      addition_time_embed_dim: 4,
      projection_class_embeddings_input_dim: 6 + 6 * 4,
      use_linear_projection: true,
      transformer_layers_per_block: [2, 1],
    };
    const xl = build(sdxlish);
    assert.deepEqual(shapeOf(xl, "add_embedding.linear_1.weight"), [64, 30]);
    assert.deepEqual(shapeOf(xl, "down_blocks.0.attentions.0.proj_in.weight"), [16, 16]);
    assert.ok(xl.stateDict().has("down_blocks.0.attentions.0.transformer_blocks.1.attn2.to_k.weight"));
    // up block 1 mirrors down block 0: 2 transformer blocks per layer
    assert.ok(xl.stateDict().has("up_blocks.1.attentions.1.transformer_blocks.1.ff.net.2.weight"));
    const textEmbeds = randn([2, 6], { generator: gen(7) });
    const timeIds = tensor([64, 64, 0, 0, 64, 64, 32, 32, 0, 0, 32, 32], [2, 6]);
    noGrad(() => {
      const out = xl.call(sample, 10, ehs, { addedCondKwargs: { textEmbeds, timeIds } });
      assert.deepEqual(out.shape, [2, 4, 8, 8]);
      const other = xl.call(sample, 10, ehs, { addedCondKwargs: { textEmbeds, timeIds: timeIds.add(8) } });
      assert.notDeepEqual(other.toFloat32Array(), out.toFloat32Array());
      assert.throws(() => xl.call(sample, 10, ehs), /pass addedCondKwargs: \{ textEmbeds, timeIds \}/);
      assert.throws(
        () => xl.call(sample, 10, ehs, { addedCondKwargs: { textEmbeds: zeros([2, 5]), timeIds } }),
        /29 features, but projection_class_embeddings_input_dim is 30/,
      );
      // with add_embedding's output zeroed, the model is the same UNet without the extra embedding
      const plain = build({ use_linear_projection: true, transformer_layers_per_block: [2, 1] }, 2);
      copyWeights(xl, plain);
      const lin2 = xl.add_embedding!.linear_2;
      (lin2.weight.dataSync() as Float32Array).fill(0);
      (lin2.bias!.dataSync() as Float32Array).fill(0);
      assert.deepEqual(
        xl.call(sample, 10, ehs, { addedCondKwargs: { textEmbeds, timeIds } }).toFloat32Array(),
        plain.call(sample, 10, ehs).toFloat32Array(),
      );
    });
  });

  it("class labels: an Embedding (num_class_embeds) or a TimestepEmbedding (class_embed_type timestep)", () => {
    const byId = build({ num_class_embeds: 3 });
    assert.deepEqual(shapeOf(byId, "class_embedding.weight"), [3, 64]);
    const byTime = build({ class_embed_type: "timestep" });
    assert.deepEqual(shapeOf(byTime, "class_embedding.linear_1.weight"), [64, 16]);
    const plain = build({}, 2);
    noGrad(() => {
      assert.throws(() => byId.call(sample, 10, ehs), /class-conditional; pass classLabels/);
      const a = byId.call(sample, 10, ehs, { classLabels: [0, 2] });
      const b = byId.call(sample, 10, ehs, { classLabels: tensor([2, 2], [2], { dtype: "int32" }) });
      assert.notDeepEqual(a.toFloat32Array(), b.toFloat32Array());
      // a zero class embedding leaves the time embedding as it is
      copyWeights(byId, plain);
      (byId.class_embedding!.parameters()[0]!.dataSync() as Float32Array).fill(0);
      assert.deepEqual(
        byId.call(sample, 10, ehs, { classLabels: [1, 1] }).toFloat32Array(),
        plain.call(sample, 10, ehs).toFloat32Array(),
      );
      assert.deepEqual(byTime.call(sample, 10, ehs, { classLabels: [3, 700] }).shape, [2, 4, 8, 8]);
      // projections take class vectors
      const byVector = build({
        class_embed_type: "simple_projection",
        projection_class_embeddings_input_dim: 3,
      });
      assert.deepEqual(shapeOf(byVector, "class_embedding.weight"), [64, 3]);
      const vectors = randn([2, 3], { generator: gen(9) });
      assert.deepEqual(byVector.call(sample, 10, ehs, { classLabels: vectors }).shape, [2, 4, 8, 8]);
      assert.throws(
        () => byVector.call(sample, 10, ehs, { classLabels: [1, 2] }),
        /takes classLabels as a \[2, D\] tensor/,
      );
    });
  });

  it("num_attention_heads, when set, is the number of heads", () => {
    const m = build({ num_attention_heads: 4, attention_head_dim: null });
    const attn = m.down_blocks.at(0).attentions!.at(0).transformer_blocks.at(0).attn1;
    assert.deepEqual([attn.heads, attn.innerDim], [4, 16]);
  });

  it("center_input_sample feeds 2x - 1; time_cond_proj_dim adds cond_proj(condition)", () => {
    const centered = build({ center_input_sample: true });
    const plain = build({}, 2);
    copyWeights(centered, plain);
    const lcm = build({ time_cond_proj_dim: 5 });
    assert.deepEqual(shapeOf(lcm, "time_embedding.cond_proj.weight"), [16, 5]);
    assert.equal(lcm.stateDict().has("time_embedding.cond_proj.bias"), false);
    noGrad(() => {
      assert.deepEqual(
        centered.call(sample, 7, ehs).toFloat32Array(),
        plain.call(sample.mul(2).sub(1), 7, ehs).toFloat32Array(),
      );
      const zero = lcm.call(sample, 7, ehs, { timestepCond: zeros([2, 5]) });
      assert.deepEqual(zero.toFloat32Array(), lcm.call(sample, 7, ehs).toFloat32Array());
      const cond = lcm.call(sample, 7, ehs, { timestepCond: randn([2, 5], { generator: gen(3) }) });
      assert.notDeepEqual(cond.toFloat32Array(), zero.toFloat32Array());
    });
  });

  it("inpainting UNets take 9 input channels; odd sizes keep their size through the up path", () => {
    const inpaint = build({ in_channels: 9 });
    assert.deepEqual(shapeOf(inpaint, "conv_in.weight"), [16, 9, 3, 3]);
    noGrad(() => {
      const x: Tensor = randn([1, 9, 9, 7], { generator: gen(8) });
      assert.deepEqual(inpaint.call(x, 999, ehs.slice(0, 0, 1)).shape, [1, 4, 9, 7]);
    });
  });
});

describe("buildDownBlock", () => {
  it("builds a down block as the model does (same keys and shapes), and refuses a missing index", () => {
    const model = build({});
    const cfg = model.config;
    const plan = planUNet(cfg);
    for (let i = 0; i < plan.down.length; i++) {
      const block = buildDownBlock(cfg, plan, i);
      const want = [...model.stateDict()]
        .filter(([k]) => k.startsWith(`down_blocks.${i}.`))
        .map(([k, t]) => [k.slice(`down_blocks.${i}.`.length), t.shape]);
      assert.deepEqual(
        [...block.stateDict()].map(([k, t]) => [k, t.shape]),
        want,
      );
    }
    assert.throws(() => buildDownBlock(cfg, plan, 2), ArgumentError);
    assert.throws(() => buildDownBlock(cfg, plan, 2), /2 down blocks, not index 2/);
  });
});
