// The LDM -> diffusers UNet and VAE mappings on layouts the tiny fixture does not have (SDXL's attention-free first
// level with deeper transformers and label_emb; SD 2.x's linear projections; four VAE levels): every converted
// key and shape must be exactly the state dict of the diffusers model built from the matching config.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type ConversionPlan,
  inferUNetLayout,
  inferVAELayout,
  ldmUNetPlan,
  ldmVAEPlan,
} from "../../../src/io/ldm/index.js";
import { AutoencoderKL, UNet2DConditionModel } from "../../../src/models/index.js";
import type { Module } from "../../../src/nn/index.js";
import { ldmUNetShapes, ldmVAEShapes } from "./synthetic.js";

function assertMatchesModel(plan: ConversionPlan, model: Module): void {
  const sd = model.stateDict();
  assert.deepEqual([...plan.tensors.keys()].sort(), [...sd.keys()].sort());
  for (const [k, m] of plan.tensors) assert.deepEqual(m.shape, sd.get(k)!.shape, k);
}

describe("LDM UNet / VAE names -> diffusers models", () => {
  it("SDXL-like: no attention on level 0, 2 and 3 transformer blocks, label_emb, linear projections", () => {
    const shapes = ldmUNetShapes({
      channels: [32, 64, 64],
      layersPerBlock: 2,
      depth: [0, 2, 3],
      midDepth: 3,
      context: 48,
      linear: true,
      adm: 80,
    });
    const layout = inferUNetLayout(shapes);
    assert.deepEqual(layout.attention, [false, true, true]);
    assert.deepEqual(layout.transformerDepth, [0, 2, 3]);
    const unet = new UNet2DConditionModel(
      {
        block_out_channels: [32, 64, 64],
        layers_per_block: 2,
        down_block_types: ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        up_block_types: ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        transformer_layers_per_block: [1, 2, 3],
        attention_head_dim: [2, 4, 4],
        cross_attention_dim: 48,
        use_linear_projection: true,
        addition_embed_type: "text_time",
        addition_time_embed_dim: 8,
        projection_class_embeddings_input_dim: 80,
      },
      { skipInit: true },
    );
    const plan = ldmUNetPlan(shapes, layout);
    assertMatchesModel(plan, unet);
    const src = (k: string) => plan.tensors.get(k)!.source.replace("model.diffusion_model.", "");
    assert.equal(src("add_embedding.linear_2.weight"), "label_emb.0.2.weight");
    // up block 0 (deepest, with attention) ends with output_blocks.2.2.conv; up block 1 with output_blocks.5.2.conv
    assert.equal(src("up_blocks.0.upsamplers.0.conv.weight"), "output_blocks.2.2.conv.weight");
    assert.equal(src("up_blocks.1.upsamplers.0.conv.weight"), "output_blocks.5.2.conv.weight");
    assert.equal(
      src("up_blocks.0.attentions.1.transformer_blocks.2.attn2.to_k.weight"),
      "output_blocks.1.1.transformer_blocks.2.attn2.to_k.weight",
    );
    assert.equal(src("down_blocks.1.downsamplers.0.conv.weight"), "input_blocks.6.0.op.weight");
  });

  it("SD-like with 3 levels, one ResBlock per level and a 9-channel (inpainting) input", () => {
    const shapes = ldmUNetShapes({
      channels: [32, 64, 96],
      layersPerBlock: 1,
      depth: [1, 1, 0],
      midDepth: 1,
      context: 16,
      inChannels: 9,
    });
    const layout = inferUNetLayout(shapes);
    assert.equal(layout.layersPerBlock, 1);
    assert.equal(layout.inChannels, 9);
    const unet = new UNet2DConditionModel(
      {
        in_channels: 9,
        block_out_channels: [32, 64, 96],
        layers_per_block: 1,
        down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        attention_head_dim: 4,
        cross_attention_dim: 16,
      },
      { skipInit: true },
    );
    assertMatchesModel(ldmUNetPlan(shapes, layout), unet);
  });

  it("VAE with four levels: the decoder's up.i numbering is reversed", () => {
    const shapes = ldmVAEShapes([32, 32, 64, 64], 2);
    const info = inferVAELayout(shapes);
    assert.deepEqual(info.blockOutChannels, [32, 32, 64, 64]);
    assert.equal(info.layersPerBlock, 2);
    const vae = new AutoencoderKL(
      {
        block_out_channels: [32, 32, 64, 64],
        layers_per_block: 2,
        down_block_types: new Array(4).fill("DownEncoderBlock2D"),
        up_block_types: new Array(4).fill("UpDecoderBlock2D"),
      },
      { skipInit: true },
    );
    const plan = ldmVAEPlan(shapes);
    assertMatchesModel(plan, vae);
    assert.equal(
      plan.tensors.get("decoder.up_blocks.0.resnets.2.conv1.weight")!.source,
      "first_stage_model.decoder.up.3.block.2.conv1.weight",
    );
    assert.equal(
      plan.tensors.get("decoder.up_blocks.2.upsamplers.0.conv.weight")!.source,
      "first_stage_model.decoder.up.1.upsample.conv.weight",
    );
  });
});
