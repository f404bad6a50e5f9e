// The tiny single-file checkpoint (original LDM naming) converts back to exactly the diffusers / transformers
// tensors of the fixture folders: every key, shape and value.
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { loadSafetensors, openSafetensors, type SafetensorsFile, type Tensor } from "../../../src/index.js";
import {
  applyTransform,
  type ConversionPlan,
  detectCheckpointFamily,
  inferUNetLayout,
  inferVAELayout,
  LDM_UNET_PREFIX,
  LDM_VAE_PREFIX,
  ldmCLIPPlan,
  ldmUNetPlan,
  ldmVAEPlan,
  type ShapeMap,
} from "../../../src/io/ldm/index.js";
import { fixturesDir, skipWithoutFixtures } from "../../helpers.js";

/** Applies a plan to the file and compares with the reference tensors, key by key and bit for bit. */
async function assertConvertsTo(
  file: SafetensorsFile,
  plan: ConversionPlan,
  want: Map<string, Tensor>,
): Promise<void> {
  assert.deepEqual([...plan.tensors.keys()].sort(), [...want.keys()].sort());
  for (const [key, m] of plan.tensors) {
    const ref = want.get(key)!;
    assert.deepEqual(m.shape, ref.shape, `${key}: planned shape`);
    const got = applyTransform(await file.getAsync(m.source), m.transform);
    assert.deepEqual(got.shape, ref.shape, `${key}: shape`);
    assert.equal(got.dtype, ref.dtype, `${key}: dtype`);
    assert.deepEqual(got.toFloat32Array(), ref.toFloat32Array(), `${key} (from ${m.source})`);
  }
}

describe("tiny_sd_ldm.safetensors -> diffusers layout", { skip: skipWithoutFixtures() }, () => {
  let models: string;
  let file: SafetensorsFile;
  let shapes: ShapeMap;

  before(async () => {
    models = join(fixturesDir()!, "models");
    file = await openSafetensors(join(models, "tiny_sd_ldm.safetensors"));
    shapes = new Map(file.entries.map((e) => [e.name, e.shape]));
  });

  it("reads the UNet and VAE layouts from the names and shapes", () => {
    const unet = inferUNetLayout(shapes);
    // tiny_unet: block_out_channels [32, 64], layers_per_block 2, CrossAttnDownBlock2D then DownBlock2D
    assert.deepEqual(
      {
        levels: unet.levels,
        layersPerBlock: unet.layersPerBlock,
        attention: unet.attention,
        blockOutChannels: unet.blockOutChannels,
        transformerDepth: unet.transformerDepth,
        midTransformerDepth: unet.midTransformerDepth,
        inChannels: unet.inChannels,
        outChannels: unet.outChannels,
        contextDim: unet.contextDim,
        linearProjection: unet.linearProjection,
        admInChannels: unet.admInChannels,
        timeEmbedDim: unet.timeEmbedDim,
      },
      {
        levels: 2,
        layersPerBlock: 2,
        attention: [true, false],
        blockOutChannels: [32, 64],
        transformerDepth: [1, 0],
        midTransformerDepth: 1,
        inChannels: 4,
        outChannels: 4,
        contextDim: 32,
        linearProjection: false,
        admInChannels: null,
        timeEmbedDim: 128,
      },
    );
    assert.deepEqual(inferVAELayout(shapes), {
      levels: 2,
      layersPerBlock: 1,
      blockOutChannels: [32, 64],
      inChannels: 3,
      outChannels: 3,
      latentChannels: 4,
    });
  });

  it("UNet: all 304 tensors of tiny_unet, exactly", async () => {
    const plan = ldmUNetPlan(shapes, inferUNetLayout(shapes));
    const want = (await loadSafetensors(join(models, "tiny_unet", "diffusion_pytorch_model.safetensors")))
      .tensors;
    assert.equal(want.size, 304);
    assert.equal(plan.skipped.size, 0);
    await assertConvertsTo(file, plan, want);
    // a few mappings spelled out
    const src = (k: string) => plan.tensors.get(k)!.source.slice(LDM_UNET_PREFIX.length);
    assert.equal(src("down_blocks.0.downsamplers.0.conv.weight"), "input_blocks.3.0.op.weight");
    assert.equal(
      src("down_blocks.1.resnets.0.conv_shortcut.weight"),
      "input_blocks.4.0.skip_connection.weight",
    );
    assert.equal(src("up_blocks.0.upsamplers.0.conv.weight"), "output_blocks.2.1.conv.weight");
    assert.equal(src("up_blocks.1.attentions.2.proj_in.weight"), "output_blocks.5.1.proj_in.weight");
    assert.equal(src("mid_block.resnets.1.time_emb_proj.weight"), "middle_block.2.emb_layers.1.weight");
    assert.equal(src("conv_norm_out.weight"), "out.0.weight");
  });

  it("VAE: all 124 tensors of tiny_vae, exactly (1x1 attention kernels become linear weights)", async () => {
    const plan = ldmVAEPlan(shapes);
    const want = (await loadSafetensors(join(models, "tiny_vae", "diffusion_pytorch_model.safetensors")))
      .tensors;
    assert.equal(want.size, 124);
    await assertConvertsTo(file, plan, want);
    const m = plan.tensors.get("decoder.mid_block.attentions.0.to_out.0.weight")!;
    assert.equal(m.source, `${LDM_VAE_PREFIX}decoder.mid.attn_1.proj_out.weight`);
    assert.deepEqual(m.transform, { kind: "squeeze" });
    // the decoder's levels are numbered the other way round
    assert.equal(
      plan.tensors.get("decoder.up_blocks.0.upsamplers.0.conv.weight")!.source,
      `${LDM_VAE_PREFIX}decoder.up.1.upsample.conv.weight`,
    );
    assert.equal(
      plan.tensors.get("decoder.up_blocks.1.resnets.0.conv_shortcut.weight")!.source,
      `${LDM_VAE_PREFIX}decoder.up.0.block.0.nin_shortcut.weight`,
    );
  });

  it("text encoder: all tensors of tiny_text_encoder, exactly", async () => {
    const plan = ldmCLIPPlan(shapes, "cond_stage_model.transformer.");
    const want = (await loadSafetensors(join(models, "tiny_text_encoder", "model.safetensors"))).tensors;
    want.delete("text_model.embeddings.position_ids");
    await assertConvertsTo(file, plan, want);
  });

  it("detects an SD 1.x-style checkpoint (CLIP under cond_stage_model.transformer)", () => {
    const det = detectCheckpointFamily(shapes, file.metadata);
    assert.equal(det.family, "sd1");
    assert.equal(det.inpainting, false);
    assert.equal(det.predictionType, "epsilon");
    assert.equal(det.textEncoder?.kind, "clip");
    assert.equal(det.textEncoder?.hiddenSize, 32);
    assert.equal(det.textEncoder?.layers, 2);
    assert.equal(det.textEncoder2, null);
    assert.deepEqual(det.ignored, {});
  });
});
