// `diffuse info` on models: a diffusers pipeline folder assembled from the fixture components, one component
// folder, and the tiny single-file checkpoint (text and --json), run through the real CLI entry.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fixturesDir, skipWithoutFixtures } from "../helpers.js";
import { diffuse } from "./run-cli.js";

describe("diffuse info on models", { skip: skipWithoutFixtures() }, () => {
  let models: string;
  let tmp: string;
  let pipe: string;
  let ldm: string;

  before(() => {
    models = join(fixturesDir()!, "models");
    ldm = join(models, "tiny_sd_ldm.safetensors");
    tmp = mkdtempSync(join(tmpdir(), "diffuse-info-model-"));
    pipe = join(tmp, "pipe");
    mkdirSync(pipe);
    for (const [part, src] of Object.entries({
      unet: "tiny_unet",
      vae: "tiny_vae",
      text_encoder: "tiny_text_encoder",
      tokenizer: "tiny_tokenizer",
    }))
      cpSync(join(models, src), join(pipe, part), { recursive: true });
    mkdirSync(join(pipe, "scheduler"));
    writeFileSync(
      join(pipe, "scheduler", "scheduler_config.json"),
      JSON.stringify({ _class_name: "PNDMScheduler", beta_schedule: "scaled_linear", steps_offset: 1 }),
    );
    writeFileSync(
      join(pipe, "model_index.json"),
      JSON.stringify({
        _class_name: "StableDiffusionPipeline",
        safety_checker: [null, null],
        scheduler: ["diffusers", "PNDMScheduler"],
        text_encoder: ["transformers", "CLIPTextModel"],
        tokenizer: ["transformers", "CLIPTokenizer"],
        unet: ["diffusers", "UNet2DConditionModel"],
        vae: ["diffusers", "AutoencoderKL"],
      }),
    );
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("a pipeline folder: family, components, parameter counts, dtypes", () => {
    const r = diffuse("info", pipe);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: diffusers pipeline StableDiffusionPipeline/);
    // 1,106,212 + 658,375 + 41,184 parameters (tiny_unet, tiny_vae, tiny_text_encoder)
    assert.match(
      r.stdout,
      /family: sd1 layout, own sizes \(cross_attention_dim 32\), prediction: epsilon, parameters: 1,805,771/,
    );
    assert.match(r.stdout, /^unet\s+UNet2DConditionModel\s+1,106,212\s+F32 x 304$/m);
    assert.match(r.stdout, /^vae\s+AutoencoderKL\s+658,375\s+F32 x 124$/m);
    assert.match(r.stdout, /^text_encoder\s+CLIPTextModel\s+41,184\s+F32 x \d+$/m);
    assert.match(r.stdout, /^tokenizer\s+CLIPTokenizer\s+-\s+eos 673, pad 673$/m);
    assert.match(r.stdout, /^scheduler\s+PNDMScheduler\s+-\s+prediction epsilon$/m);
    assert.match(r.stdout, /not included: safety_checker/);

    const j = diffuse("info", pipe, "--json");
    assert.equal(j.code, 0, j.stderr);
    const info = JSON.parse(j.stdout);
    assert.equal(info.format, "diffusers");
    assert.equal(info.pipeline, "StableDiffusionPipeline");
    assert.equal(info.family, "sd1");
    assert.equal(info.releasedSizes, false);
    assert.equal(info.parameterCount, 1805771);
    assert.deepEqual(Object.keys(info.components).sort(), [
      "scheduler",
      "text_encoder",
      "tokenizer",
      "unet",
      "vae",
    ]);
    assert.equal(info.components.unet.parameterCount, 1106212);
    assert.deepEqual(info.components.unet.dtypes, { F32: 304 });
    assert.deepEqual(info.components.unet.config.block_out_channels, [32, 64]);
    assert.equal(info.components.text_encoder.config.hidden_size, 32);
    assert.deepEqual(info.absent, ["safety_checker"]);
  });

  it("one component folder", () => {
    const r = diffuse("info", join(models, "tiny_vae"), "--json");
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.format, "diffusers-component");
    assert.equal(info.component.class, "AutoencoderKL");
    assert.equal(info.component.parameterCount, 658375);
  });

  it("the single-file checkpoint: family, components by prefix, detected layout, why no config can be made", () => {
    const r = diffuse("info", ldm);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Stable Diffusion checkpoint \(single file, original LDM naming\)/);
    assert.match(r.stdout, /family: sd1, prediction: epsilon \(sd1 default\)/);
    assert.match(r.stdout, /^unet\s+model\.diffusion_model\.\s+304\s+1,106,212\s+F32 x 304$/m);
    assert.match(r.stdout, /^vae\s+first_stage_model\.\s+124\s+658,375\s+F32 x 124$/m);
    assert.match(r.stdout, /^text_encoder\s+cond_stage_model\.transformer\.\s+36\s+41,184\s+F32 x 36$/m);
    assert.match(
      r.stdout,
      /unet: block_out_channels \[32, 64\], layers_per_block 2, transformer depth \[1, 0\]/,
    );
    assert.match(r.stdout, /text_encoder: CLIP \(transformers layout\), 2 layers, hidden 32/);
    // UNet and VAE configs can be inferred from the shapes; a 32-wide text encoder has no 64-wide heads
    assert.match(r.stdout, /configs: cannot infer the attention heads of a text encoder of width 32/);

    const j = diffuse("info", ldm, "--json");
    assert.equal(j.code, 0, j.stderr);
    const info = JSON.parse(j.stdout);
    assert.equal(info.format, "sd-checkpoint");
    assert.equal(info.family, "sd1");
    assert.equal(info.inpainting, false);
    assert.equal(info.parameterCount, 1805771);
    assert.deepEqual(info.dtypes, { F32: 464 });
    assert.deepEqual(Object.keys(info.components), ["unet", "vae", "text_encoder"]);
    assert.deepEqual(info.components.unet.layout.blockOutChannels, [32, 64]);
    assert.equal(info.components.text_encoder.layout.kind, "clip");
    assert.equal(info.configs, null);
    assert.match(info.configsNote, /text encoder of width 32 .*\(configs\.textEncoder\)/);
  });

  it("other folders and diffusers weight files are not mistaken for checkpoints", () => {
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    const r = diffuse("info", empty);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^diffuse: .*empty is not a file or a model folder \(info reads: /);
    // a diffusers UNet file is still described as a plain safetensors file
    const u = diffuse("info", join(models, "tiny_unet", "diffusion_pytorch_model.safetensors"), "--json");
    assert.equal(u.code, 0, u.stderr);
    assert.equal(JSON.parse(u.stdout).format, "safetensors");
  });
});
