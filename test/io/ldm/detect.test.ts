// Family detection on the tensor names and shapes of the released Stable Diffusion families (no weights needed),
// and the errors for files that are not Stable Diffusion checkpoints or whose parts disagree.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CheckpointError } from "../../../src/io/errors.js";
import { detectCheckpointFamily, ldmUNetPlan, ldmVAEPlan, openCLIPPlan } from "../../../src/io/ldm/index.js";
import { clipShapes, familyShapes, ldmUNetShapes } from "./synthetic.js";

describe("detectCheckpointFamily", () => {
  it("SD 1.x: CLIP ViT-L under cond_stage_model.transformer, context 768, epsilon", () => {
    const det = detectCheckpointFamily(familyShapes("sd1"));
    assert.equal(det.family, "sd1");
    assert.equal(det.inpainting, false);
    assert.equal(det.predictionType, "epsilon");
    assert.equal(det.unet.contextDim, 768);
    assert.deepEqual(det.unet.blockOutChannels, [320, 640, 1280, 1280]);
    assert.deepEqual(det.unet.attention, [true, true, true, false]);
    assert.equal(det.unet.linearProjection, false);
    assert.equal(det.textEncoder?.kind, "clip");
    assert.equal(det.textEncoder?.layers, 12);
    assert.equal(det.textEncoder2, null);
    assert.deepEqual(det.vae?.blockOutChannels, [128, 256, 512, 512]);
  });

  it("SD 2.x: OpenCLIP ViT-H under cond_stage_model.model, context 1024, v-prediction by default", () => {
    const det = detectCheckpointFamily(familyShapes("sd2"));
    assert.equal(det.family, "sd2");
    assert.equal(det.predictionType, "v_prediction");
    assert.match(det.predictionTypeSource, /SD 2\.x default/);
    assert.equal(det.textEncoder?.kind, "openclip");
    assert.equal(det.textEncoder?.layers, 24);
    assert.equal(det.textEncoder?.hiddenSize, 1024);
    assert.equal(det.unet.linearProjection, true);
    // metadata overrides the default, either way
    const eps = detectCheckpointFamily(familyShapes("sd2"), { "modelspec.prediction_type": "epsilon" });
    assert.equal(eps.predictionType, "epsilon");
    const arch = detectCheckpointFamily(familyShapes("sd2"), {
      "modelspec.architecture": "stable-diffusion-v2-768-v",
    });
    assert.equal(arch.predictionType, "v_prediction");
    // SD 2.x inpainting is an epsilon model
    const inpaint = detectCheckpointFamily(familyShapes("sd2", 9));
    assert.equal(inpaint.inpainting, true);
    assert.equal(inpaint.predictionType, "epsilon");
  });

  it("SDXL: CLIP ViT-L + OpenCLIP bigG under conditioner.embedders, label_emb, context 2048", () => {
    const det = detectCheckpointFamily(familyShapes("sdxl"));
    assert.equal(det.family, "sdxl");
    assert.equal(det.predictionType, "epsilon");
    assert.equal(det.unet.admInChannels, 2816);
    assert.deepEqual(det.unet.attention, [false, true, true]);
    assert.deepEqual(det.unet.transformerDepth, [0, 2, 10]);
    assert.equal(det.unet.midTransformerDepth, 10);
    assert.equal(det.textEncoder?.prefix, "conditioner.embedders.0.transformer.");
    assert.equal(det.textEncoder2?.prefix, "conditioner.embedders.1.model.");
    assert.equal(det.textEncoder2?.projectionDim, 1280);
    // a v_pred marker (written by some trainers) makes it a v-prediction model
    const v = familyShapes("sdxl");
    v.set("v_pred", []);
    const dv = detectCheckpointFamily(v);
    assert.equal(dv.predictionType, "v_prediction");
    assert.deepEqual(dv.ignored, { v_pred: 1 });
  });

  it("SDXL refiner: bigG alone under conditioner.embedders.0.model, context 1280", () => {
    const det = detectCheckpointFamily(familyShapes("refiner"));
    assert.equal(det.family, "sdxl-refiner");
    assert.equal(det.textEncoder, null);
    assert.equal(det.textEncoder2?.prefix, "conditioner.embedders.0.model.");
    assert.equal(det.unet.admInChannels, 2560);
  });

  it("inpainting: a 9-channel UNet", () => {
    const det = detectCheckpointFamily(familyShapes("sd1", 9));
    assert.equal(det.family, "sd1");
    assert.equal(det.inpainting, true);
    assert.equal(det.unet.inChannels, 9);
    assert.equal(detectCheckpointFamily(familyShapes("sdxl", 9)).inpainting, true);
  });

  it("ignores EMA copies and noise-schedule buffers, counting them", () => {
    const s = familyShapes("sd1");
    s.set("betas", [1000]);
    s.set("alphas_cumprod", [1000]);
    s.set("model_ema.decay", []);
    s.set("model_ema.num_updates", []);
    const det = detectCheckpointFamily(s);
    assert.deepEqual(det.ignored, { betas: 1, alphas_cumprod: 1, model_ema: 2 });
  });

  it("the plans of every released family cover all of its keys", () => {
    for (const fam of ["sd1", "sd2", "sdxl", "refiner"] as const) {
      const s = familyShapes(fam);
      const det = detectCheckpointFamily(s);
      const unet = ldmUNetPlan(s, det.unet);
      const vae = ldmVAEPlan(s);
      let covered = unet.tensors.size + vae.tensors.size;
      if (det.textEncoder?.kind === "clip") covered += det.textEncoder.layers * 16 + 5; // + position_ids, skipped
      for (const te of [det.textEncoder, det.textEncoder2]) {
        if (te?.kind !== "openclip") continue;
        const plan = openCLIPPlan(s, te.prefix, { projection: fam !== "sd2" });
        covered += new Set([...plan.tensors.values()].map((m) => m.source)).size + plan.skipped.size;
      }
      assert.equal(covered, s.size, fam);
    }
  });

  it("names what it found when a file is not a Stable Diffusion checkpoint", () => {
    const diffusersUNet = new Map([
      ["conv_in.weight", [320, 4, 3, 3]],
      ["down_blocks.0.resnets.0.conv1.weight", [320, 320, 3, 3]],
      ["down_blocks.0.resnets.0.conv1.bias", [320]],
    ]);
    assert.throws(
      () => detectCheckpointFamily(diffusersUNet),
      (e: unknown) =>
        e instanceof CheckpointError &&
        /expected an original Stable Diffusion checkpoint with model\.diffusion_model\.\*/.test(e.message) &&
        /found down_blocks\.\* \(2\), conv_in\.\* \(1\)/.test(e.message) &&
        /one diffusers model file: pass the model folder/.test(e.message),
    );
    const lora = new Map([["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", [4, 320]]]);
    assert.throws(() => detectCheckpointFamily(lora), /looks like a LoRA/);
    assert.throws(() => detectCheckpointFamily(new Map()), /found no tensors/);
  });

  it("rejects a UNet whose cross-attention width does not match its text encoder", () => {
    const s = new Map([
      ...ldmUNetShapes({ channels: [32, 64], layersPerBlock: 1, depth: [1, 0], midDepth: 1, context: 48 }),
      ...clipShapes("cond_stage_model.transformer.", { layers: 1, hidden: 32, intermediate: 64 }),
    ]);
    assert.throws(
      () => detectCheckpointFamily(s),
      /sd1 checkpoint whose UNet cross-attention width \(48, from attn2\.to_k\) does not match its text encoder\(s\) \(cond_stage_model\.transformer\.\* 32\)/,
    );
    const noTE = ldmUNetShapes({
      channels: [32, 64],
      layersPerBlock: 1,
      depth: [1, 0],
      midDepth: 1,
      context: 48,
    });
    assert.throws(() => detectCheckpointFamily(noTE), /cannot tell the Stable Diffusion family/);
  });

  it("reports LDM UNet names no rule understands", () => {
    const s = familyShapes("sd1");
    s.set("model.diffusion_model.input_blocks.1.7.weird.weight", [3]);
    const det = detectCheckpointFamily(s);
    assert.throws(
      () => ldmUNetPlan(s, det.unet),
      /UNet \(model\.diffusion_model\.\*\): 1 tensor name\(s\) not understood: model\.diffusion_model\.input_blocks\.1\.7\.weird\.weight; expected time_embed/,
    );
  });
});
