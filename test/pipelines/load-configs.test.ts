// The released configs a single file of each family is built with fit the shapes of that family's checkpoints
// (names and shapes generated from the LDM / SGM model definitions; no weights), and the default schedulers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { detectCheckpointFamily, ldmUNetPlan, openCLIPPlan } from "../../src/io/ldm/index.js";
import { resolveConfigs, unetKeyLayout } from "../../src/pipelines/family-configs.js";
import { schedulerFromConfig } from "../../src/schedulers/registry.js";
import { familyShapes, ldmUNetShapes, ldmVAEShapes, openClipShapes } from "../io/ldm/synthetic.js";

describe("configs of single-file checkpoints", () => {
  it("each released family fits its named configs; the key layout of the config is the file's", () => {
    for (const fam of ["sd1", "sd2", "sdxl", "refiner"] as const) {
      const shapes = familyShapes(fam);
      const det = detectCheckpointFamily(shapes);
      const cfg = resolveConfigs(det, {}, det.predictionType);
      const layout = unetKeyLayout(cfg.unet);
      assert.deepEqual(
        layout,
        { levels: det.unet.levels, layersPerBlock: det.unet.layersPerBlock, attention: det.unet.attention },
        fam,
      );
      assert.ok(ldmUNetPlan(shapes, layout).tensors.size > 0);
    }
  });

  it("SD 1.5: PNDM, CLIP ViT-L; inpainting keeps the 9 input channels", () => {
    const det = detectCheckpointFamily(familyShapes("sd1", 9));
    const cfg = resolveConfigs(det, {}, det.predictionType);
    assert.equal(cfg.unet.in_channels, 9);
    assert.equal(cfg.unet.cross_attention_dim, 768);
    assert.equal(cfg.textEncoder?.hidden_act, "quick_gelu");
    assert.equal(cfg.vae.scaling_factor, 0.18215);
    assert.equal(cfg.scheduler._class_name, "PNDMScheduler");
    assert.equal(schedulerFromConfig(cfg.scheduler).className, "PNDMScheduler");
  });

  it("SD 2.x: 23 of the 24 OpenCLIP layers, DDIM with the detected prediction type, 768px for v", () => {
    const shapes = familyShapes("sd2");
    const det = detectCheckpointFamily(shapes);
    const v = resolveConfigs(det, {}, "v_prediction");
    assert.equal(v.textEncoder?.num_hidden_layers, 23);
    assert.equal(v.scheduler._class_name, "DDIMScheduler");
    assert.equal(v.scheduler.prediction_type, "v_prediction");
    assert.equal(v.unet.sample_size, 96);
    const eps = resolveConfigs(det, {}, "epsilon");
    assert.equal(eps.scheduler.prediction_type, "epsilon");
    assert.equal(eps.unet.sample_size, 64);
    const plan = openCLIPPlan(shapes, det.textEncoder!.prefix, { layers: 23 });
    assert.ok(plan.tensors.has("text_model.encoder.layers.22.mlp.fc2.bias"));
    assert.ok(!plan.tensors.has("text_model.encoder.layers.23.mlp.fc2.bias"));
    assert.ok(plan.skipped.has("cond_stage_model.model.transformer.resblocks.23.mlp.c_proj.bias"));
  });

  it("SDXL base and refiner: Euler, the SDXL VAE, bigG with projection", () => {
    for (const fam of ["sdxl", "refiner"] as const) {
      const det = detectCheckpointFamily(familyShapes(fam));
      const cfg = resolveConfigs(det, {}, det.predictionType);
      assert.equal(cfg.scheduler._class_name, "EulerDiscreteScheduler");
      assert.equal(cfg.vae.scaling_factor, 0.13025);
      assert.equal(cfg.textEncoder2?.projection_dim, 1280);
      assert.equal(cfg.textEncoder === null, fam === "refiner");
      assert.equal(cfg.unet.addition_embed_type, "text_time");
    }
  });

  it("explicit configs replace the named ones and are checked too", () => {
    const det = detectCheckpointFamily(familyShapes("sd1"));
    assert.throws(
      () =>
        resolveConfigs(
          det,
          { textEncoder: { hidden_size: 768, num_hidden_layers: 11, intermediate_size: 3072 } },
          "epsilon",
        ),
      /the text encoder of this sd1 checkpoint does not have the sizes the given configs\.textEncoder says \(num_hidden_layers: config 11, file 12\)/,
    );
    const sched = resolveConfigs(
      det,
      { scheduler: { _class_name: "EulerDiscreteScheduler" } },
      "epsilon",
    ).scheduler;
    assert.deepEqual(sched, { _class_name: "EulerDiscreteScheduler" });
  });

  it("sizes other than the released ones: configs inferred from the shapes, with what was assumed", () => {
    const shapes = new Map([
      ...ldmUNetShapes({
        channels: [64, 128, 192],
        layersPerBlock: 1,
        depth: [0, 2, 1],
        midDepth: 1,
        context: 1024,
        linear: true,
      }),
      ...ldmVAEShapes([32, 64], 1),
      ...openClipShapes("cond_stage_model.model.", {
        layers: 6,
        hidden: 1024,
        intermediate: 2048,
        projection: 512,
      }),
    ]);
    const det = detectCheckpointFamily(shapes);
    assert.equal(det.family, "sd2");
    const cfg = resolveConfigs(det, {}, det.predictionType);
    assert.deepEqual(cfg.sources, {
      unet: "inferred from shapes",
      vae: "inferred from shapes",
      textEncoder: "inferred from shapes",
      textEncoder2: null,
      scheduler: "released",
    });
    assert.deepEqual(cfg.unet.block_out_channels, [64, 128, 192]);
    assert.deepEqual(cfg.unet.down_block_types, [
      "DownBlock2D",
      "CrossAttnDownBlock2D",
      "CrossAttnDownBlock2D",
    ]);
    assert.deepEqual(cfg.unet.up_block_types, ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]);
    assert.deepEqual(cfg.unet.attention_head_dim, [1, 2, 3]);
    assert.deepEqual(cfg.unet.transformer_layers_per_block, [1, 2, 1]);
    assert.equal(cfg.unet.use_linear_projection, true);
    assert.equal(cfg.textEncoder!.num_hidden_layers, 5, "SD 2.x keeps the penultimate layer");
    assert.equal(cfg.textEncoder!.num_attention_heads, 16);
    assert.deepEqual(cfg.vae.block_out_channels, [32, 64]);
    assert.equal(cfg.vae.layers_per_block, 1);
    assert.ok(
      cfg.assumed.some((a) => /heads of 64 channels \(1, 2, 3 per level, the sd2 convention\)/.test(a)),
    );
    // the models the configs build take the file's keys
    const plan = ldmUNetPlan(shapes, unetKeyLayout(cfg.unet));
    assert.ok(plan.tensors.size > 0);
    // a width no convention divides is an error that asks for the config
    const odd = new Map([...familyShapes("sd1")].filter(([k]) => !k.startsWith("first_stage_model.")));
    for (const [k, v] of ldmVAEShapes([24, 48], 1)) odd.set(k, v);
    assert.throws(
      () => resolveConfigs(detectCheckpointFamily(odd), {}, "epsilon"),
      /cannot infer the GroupNorm groups of a VAE with channels \[24, 48\] \(32 groups need multiples of 32\); pass its config explicitly/,
    );
  });
});
