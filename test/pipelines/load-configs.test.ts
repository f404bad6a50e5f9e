// The released configs a single file of each family is built with fit the shapes of that family's checkpoints
// (names and shapes generated from the LDM / SGM model definitions; no weights), and the default schedulers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { detectCheckpointFamily, ldmUNetPlan, openCLIPPlan } from "../../src/io/ldm/index.js";
import { resolveConfigs, unetKeyLayout } from "../../src/pipelines/family-configs.js";
import { schedulerFromConfig } from "../../src/schedulers/registry.js";
import { familyShapes } from "../io/ldm/synthetic.js";

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
      /text encoder of this sd1 checkpoint .*num_hidden_layers: config 11, file 12.*configs\.textEncoder/,
    );
    const sched = resolveConfigs(
      det,
      { scheduler: { _class_name: "EulerDiscreteScheduler" } },
      "epsilon",
    ).scheduler;
    assert.deepEqual(sched, { _class_name: "EulerDiscreteScheduler" });
  });
});
