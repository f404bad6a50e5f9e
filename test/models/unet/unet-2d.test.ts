import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UNet2DModel } from "../../../src/models/unet/unet-2d.js";
import { resolveUNet2DConfig, unet2DConfigJson } from "../../../src/models/unet/unet-2d-config.js";
import { noGrad } from "../../../src/tensor/autograd.js";
import { randn } from "../../../src/tensor/create.js";
import { Generator } from "../../../src/tensor/generator.js";

/** A tiny class-conditional config: two levels (8, 16 channels), attention on the second. */
const TINY = {
  sample_size: 16,
  in_channels: 1,
  out_channels: 1,
  block_out_channels: [8, 16],
  down_block_types: ["DownBlock2D", "AttnDownBlock2D"],
  up_block_types: ["AttnUpBlock2D", "UpBlock2D"],
  layers_per_block: 1,
  attention_head_dim: 8,
  norm_num_groups: 4,
  num_class_embeds: 3,
};

describe("UNet2DModel", () => {
  it("has diffusers' modules: 45,065 parameters for the tiny config (counted by hand, block by block)", () => {
    const unet = new UNet2DModel(TINY, { skipInit: true });
    // conv_in 80, time_embedding 1344, class_embedding 96, down 2048 + 5328, mid 11584, up 19456 + 5040, out 89
    assert.equal(unet.numParameters(), 45065);
    const sd = unet.stateDict();
    const shape = (k: string) => sd.get(k)?.shape;
    assert.deepEqual(shape("class_embedding.weight"), [3, 32]);
    assert.deepEqual(shape("time_embedding.linear_1.weight"), [32, 8]);
    assert.deepEqual(shape("down_blocks.0.downsamplers.0.conv.weight"), [8, 8, 3, 3]);
    assert.deepEqual(shape("down_blocks.1.resnets.0.conv_shortcut.weight"), [16, 8, 1, 1]);
    assert.deepEqual(shape("down_blocks.1.attentions.0.to_q.bias"), [16]);
    assert.deepEqual(shape("down_blocks.1.attentions.0.group_norm.weight"), [16]);
    assert.deepEqual(shape("mid_block.attentions.0.to_out.0.weight"), [16, 16]);
    assert.deepEqual(shape("mid_block.resnets.1.conv2.weight"), [16, 16, 3, 3]);
    // up block 0: resnet 0 takes 16 + 16 (skip), resnet 1 takes 16 + 8 (the skip before the first downsample)
    assert.deepEqual(shape("up_blocks.0.resnets.0.conv1.weight"), [16, 32, 3, 3]);
    assert.deepEqual(shape("up_blocks.0.resnets.1.conv1.weight"), [16, 24, 3, 3]);
    assert.deepEqual(shape("up_blocks.0.upsamplers.0.conv.weight"), [16, 16, 3, 3]);
    assert.deepEqual(shape("up_blocks.1.resnets.0.conv1.weight"), [8, 24, 3, 3]);
    assert.deepEqual(shape("up_blocks.1.resnets.1.conv1.weight"), [8, 16, 3, 3]);
    assert.deepEqual(shape("conv_out.weight"), [1, 8, 3, 3]);
    assert.equal(sd.has("up_blocks.1.upsamplers.0.conv.weight"), false);
    assert.equal(sd.has("down_blocks.1.downsamplers.0.conv.weight"), false);
  });

  it("maps [B, 1, H, W], timesteps and labels to [B, 1, H, W]; labels and timesteps change the output", () => {
    const unet = new UNet2DModel(TINY, { generator: new Generator(0) });
    const x = randn([2, 1, 16, 16], { generator: new Generator(1) });
    noGrad(() => {
      const a = unet.call(x, [10, 500], [0, 1]);
      assert.deepEqual(a.shape, [2, 1, 16, 16]);
      assert.ok(a.toFloat32Array().every(Number.isFinite));
      const b = unet.call(x, 10, [0, 0]); // one timestep broadcast to the batch
      const a0 = a.toFloat32Array().subarray(0, 256);
      const b0 = b.toFloat32Array().subarray(0, 256);
      assert.deepEqual(a0, b0, "sample 0 has t = 10 and label 0 in both calls");
      const a1 = a.toFloat32Array().subarray(256);
      const b1 = b.toFloat32Array().subarray(256);
      assert.notDeepEqual(a1, b1);
      const c = unet.call(x, [10, 500], [2, 1]);
      assert.notDeepEqual(c.toFloat32Array().subarray(0, 256), a0, "the label changes the output");
      // a non-square input whose sides are multiples of 2
      assert.deepEqual(unet.call(randn([1, 1, 8, 12]), 3, [1]).shape, [1, 1, 8, 12]);
    });
  });

  it("gives clear errors for labels, shapes and unsupported configs", () => {
    const unet = new UNet2DModel(TINY, { skipInit: true });
    const x = randn([2, 1, 16, 16]);
    assert.throws(() => unet.call(x, 1), /class-conditional; pass 2 class labels in \[0, 3\)/);
    assert.throws(() => unet.call(x, 1, [0, 3]), /class label 3 is out of range \[0, 3\)/);
    assert.throws(() => unet.call(x, 1, [0]), /expected 2 class labels, got 1/);
    assert.throws(() => unet.call(randn([1, 3, 16, 16]), 1, [0]), /sample must be \[B, 1, H, W\]/);
    assert.throws(() => unet.call(randn([1, 1, 15, 16]), 1, [0]), /multiples of 2/);
    const plain = new UNet2DModel({ ...TINY, num_class_embeds: null }, { skipInit: true });
    assert.throws(() => plain.call(x, 1, [0, 0]), /no class embedding/);
    assert.throws(
      () => resolveUNet2DConfig({ ...TINY, down_block_types: ["DownBlock2D", "CrossAttnDownBlock2D"] }),
      /down_block_types/,
    );
    assert.throws(
      () => resolveUNet2DConfig({ ...TINY, time_embedding_type: "fourier" }),
      /time_embedding_type/,
    );
    assert.throws(
      () => resolveUNet2DConfig({ ...TINY, norm_num_groups: 3 }),
      /norm_num_groups \(3\) must divide/,
    );
    assert.throws(() => resolveUNet2DConfig({ ...TINY, up_block_types: ["UpBlock2D"] }), /same length/);
  });

  it("writes every config key diffusers' UNet2DModel takes, defaults filled in", () => {
    const json = unet2DConfigJson(resolveUNet2DConfig(TINY));
    assert.equal(json._class_name, "UNet2DModel");
    assert.equal(Object.keys(json)[0], "_class_name");
    assert.equal(json.flip_sin_to_cos, true);
    assert.equal(json.freq_shift, 0);
    assert.equal(json.norm_eps, 1e-5);
    assert.equal(json.time_embedding_type, "positional");
    assert.equal(json.mid_block_type, "UNetMidBlock2D");
    assert.deepEqual(json.block_out_channels, [8, 16]);
    assert.equal(json.num_class_embeds, 3);
  });
});
