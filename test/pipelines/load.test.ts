// loadPipelineComponents on a diffusers folder assembled from the fixture component folders and on the tiny
// single-file checkpoint (LDM naming): the loaded models reproduce the fixture outputs; half-precision files
// stay half; and the errors for missing components, a missing tokenizer and unknown files say what to do.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadSafetensors, noGrad, saveSafetensors, type Tensor } from "../../src/index.js";
import { CheckpointError } from "../../src/io/errors.js";
import { loadPipelineComponents, type PipelineComponents } from "../../src/pipelines/load.js";
import type { ProgressEvent } from "../../src/tensor/progress.js";
import { assertClose, fixturesDir, skipWithoutFixtures } from "../helpers.js";

const SD15_SCHEDULER = {
  _class_name: "PNDMScheduler",
  _diffusers_version: "0.6.0",
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
};

const MODEL_INDEX = {
  _class_name: "StableDiffusionPipeline",
  _diffusers_version: "0.6.0",
  feature_extractor: [null, null],
  safety_checker: [null, null],
  requires_safety_checker: false,
  scheduler: ["diffusers", "PNDMScheduler"],
  text_encoder: ["transformers", "CLIPTextModel"],
  tokenizer: ["transformers", "CLIPTokenizer"],
  unet: ["diffusers", "UNet2DConditionModel"],
  vae: ["diffusers", "AutoencoderKL"],
};

describe("loadPipelineComponents", { skip: skipWithoutFixtures() }, () => {
  let models: string;
  let tmp: string;
  let pipeDir: string;
  let ldmFile: string;
  let tokenizerDir: string;
  let unetIO: Map<string, Tensor>;
  let vaeIO: Map<string, Tensor>;
  let clipIO: Map<string, Tensor>;
  let tinyConfigs: {
    unet: Record<string, unknown>;
    vae: Record<string, unknown>;
    textEncoder: Record<string, unknown>;
  };

  /** A pipeline folder built from the fixture component folders; `drop` leaves components out. */
  function assemble(name: string, drop: string[] = [], index: Record<string, unknown> = MODEL_INDEX): string {
    const dir = join(tmp, name);
    mkdirSync(dir);
    const parts: Record<string, string> = {
      unet: "tiny_unet",
      vae: "tiny_vae",
      text_encoder: "tiny_text_encoder",
      tokenizer: "tiny_tokenizer",
    };
    for (const [part, src] of Object.entries(parts))
      if (!drop.includes(part)) cpSync(join(models, src), join(dir, part), { recursive: true });
    if (!drop.includes("scheduler")) {
      mkdirSync(join(dir, "scheduler"));
      writeFileSync(join(dir, "scheduler", "scheduler_config.json"), JSON.stringify(SD15_SCHEDULER));
    }
    writeFileSync(join(dir, "model_index.json"), JSON.stringify(index));
    return dir;
  }

  /** Every model against the fixture outputs (unet_io a-d, vae_io decode, clip_io last hidden state). */
  function checkOutputs(p: PipelineComponents, tol: number): void {
    noGrad(() => {
      const sample = unetIO.get("sample")!;
      const ehs1 = unetIO.get("ehs1")!;
      assertClose(
        p.unet.call(sample, 500, ehs1).toFloat32Array(),
        unetIO.get("out_a")!.toFloat32Array(),
        tol,
        "unet out_a",
      );
      assertClose(
        p.unet.call(sample, [10, 981], ehs1).toFloat32Array(),
        unetIO.get("out_b")!.toFloat32Array(),
        tol,
        "unet out_b",
      );
      assertClose(
        p.unet.call(sample, 500, unetIO.get("ehs2")!).toFloat32Array(),
        unetIO.get("out_c")!.toFloat32Array(),
        tol,
        "unet out_c",
      );
      const mean = p.vae.encode(vaeIO.get("image")!).latentDist.mean;
      assertClose(mean.toFloat32Array(), vaeIO.get("latent_mean")!.toFloat32Array(), tol, "vae latent_mean");
      assertClose(
        p.vae.decode(vaeIO.get("latent_sample")!).toFloat32Array(),
        vaeIO.get("decoded_sample")!.toFloat32Array(),
        tol,
        "vae decoded_sample",
      );
      const out = p.textEncoder!.call(clipIO.get("input_ids")!);
      assertClose(
        out.lastHiddenState.toFloat32Array(),
        clipIO.get("last_hidden_state")!.toFloat32Array(),
        tol,
        "clip last_hidden_state",
      );
      assertClose(
        out.pooledOutput.toFloat32Array(),
        clipIO.get("pooler_output")!.toFloat32Array(),
        tol,
        "clip pooler_output",
      );
    });
  }

  before(async () => {
    models = join(fixturesDir()!, "models");
    tmp = mkdtempSync(join(tmpdir(), "diffuse-load-"));
    pipeDir = assemble("sd-tiny");
    ldmFile = join(models, "tiny_sd_ldm.safetensors");
    tokenizerDir = join(models, "tiny_tokenizer");
    unetIO = (await loadSafetensors(join(models, "unet_io.safetensors"))).tensors;
    vaeIO = (await loadSafetensors(join(models, "vae_io.safetensors"))).tensors;
    clipIO = (await loadSafetensors(join(models, "clip_io.safetensors"))).tensors;
    const cfg = (name: string) => JSON.parse(readFileSync(join(models, name, "config.json"), "utf8"));
    tinyConfigs = { unet: cfg("tiny_unet"), vae: cfg("tiny_vae"), textEncoder: cfg("tiny_text_encoder") };
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("a diffusers folder: every component through model_index.json", async () => {
    const p = await loadPipelineComponents(pipeDir);
    assert.equal(p.format, "diffusers");
    assert.equal(p.family, "sd1");
    assert.equal(p.inpainting, false);
    assert.equal(p.predictionType, "epsilon");
    assert.equal(p.modelName, "sd-tiny");
    assert.equal(p.hashPath, join(pipeDir, "unet", "diffusion_pytorch_model.safetensors"));
    assert.equal(p.scheduler.className, "PNDMScheduler");
    assert.equal(p.textEncoder2, null);
    assert.equal(p.tokenizer2, null);
    assert.deepEqual(p.dtypes, {
      unet: "float32",
      vae: "float32",
      textEncoder: "float32",
      textEncoder2: null,
    });
    assert.equal(p.detection, null);
    const cases = JSON.parse(readFileSync(join(models, "models.json"), "utf8")).tokenizer.cases;
    assert.deepEqual(p.tokenizer!.encode(cases[1].prompt, { padding: "max_length" }), cases[1].input_ids);
    checkOutputs(p, 1e-4);
  });

  it("a folder: the prediction type can be overridden, the scheduler config replaced", async () => {
    const p = await loadPipelineComponents(pipeDir, {
      predictionType: "v_prediction",
      configs: { scheduler: { ...SD15_SCHEDULER, _class_name: "EulerDiscreteScheduler" } },
    });
    assert.equal(p.scheduler.className, "EulerDiscreteScheduler");
    assert.equal(p.predictionType, "v_prediction");
    assert.equal(p.scheduler.config.prediction_type, "v_prediction");
  });

  it("the single file (LDM naming) with explicit configs reproduces the fixture outputs", async () => {
    const p = await loadPipelineComponents(ldmFile, { tokenizer: tokenizerDir, configs: tinyConfigs });
    assert.equal(p.format, "single-file");
    assert.equal(p.family, "sd1");
    assert.equal(p.modelName, "tiny_sd_ldm");
    assert.equal(p.hashPath, ldmFile);
    assert.equal(p.detection?.family, "sd1");
    assert.equal(p.predictionType, "epsilon");
    // SD 1.5's scheduler by default
    assert.equal(p.scheduler.className, "PNDMScheduler");
    assert.equal(p.scheduler.config.steps_offset, 1);
    assert.ok([p.unet, p.vae, p.textEncoder!].every((m) => m.training === false));
    assert.deepEqual(p.dtypes, {
      unet: "float32",
      vae: "float32",
      textEncoder: "float32",
      textEncoder2: null,
    });
    assert.equal(p.tokenizer!.eosTokenId, 673);
    checkOutputs(p, 1e-4);
  });

  it("a single file of its own sizes: UNet and VAE configs inferred from the shapes give the fixture outputs", async () => {
    const p = await loadPipelineComponents(ldmFile, {
      tokenizer: tokenizerDir,
      configs: { textEncoder: tinyConfigs.textEncoder },
    });
    assert.deepEqual(p.configSources, {
      unet: "inferred from shapes",
      vae: "inferred from shapes",
      textEncoder: "given",
      textEncoder2: null,
      scheduler: "released",
    });
    assert.deepEqual(p.unet.config.block_out_channels, [32, 64]);
    assert.deepEqual(p.unet.config.down_block_types, ["CrossAttnDownBlock2D", "DownBlock2D"]);
    assert.equal(p.unet.config.cross_attention_dim, 32);
    assert.deepEqual(p.vae.config.block_out_channels, [32, 64]);
    assert.ok(p.assumed.some((a) => /UNet: 8 attention heads per layer/.test(a)));
    assert.ok(p.assumed.some((a) => /VAE: scaling_factor 0\.18215/.test(a)));
    checkOutputs(p, 1e-4);
  });

  it("a float16 single file stays float16 in memory; dtype float32 converts", async () => {
    const all = (await loadSafetensors(ldmFile)).tensors;
    const halfFile = join(tmp, "tiny_fp16.safetensors");
    await saveSafetensors(halfFile, new Map([...all].map(([k, t]) => [k, t.half()])));
    const half = await loadPipelineComponents(halfFile, { tokenizer: tokenizerDir, configs: tinyConfigs });
    assert.deepEqual(half.dtypes, {
      unet: "float16",
      vae: "float16",
      textEncoder: "float16",
      textEncoder2: null,
    });
    for (const m of [half.unet, half.vae, half.textEncoder!])
      assert.ok(m.parameters().every((t) => t.dtype === "float16"));
    checkOutputs(half, 2e-2);
    const f32 = await loadPipelineComponents(halfFile, {
      tokenizer: tokenizerDir,
      configs: tinyConfigs,
      dtype: "float32",
    });
    assert.ok(f32.unet.parameters().every((t) => t.dtype === "float32"));
    assert.deepEqual(
      f32.unet.conv_in.weight.toFloat32Array(),
      half.unet.conv_in.weight.toFloat32Array(),
      "the same half-rounded values",
    );
  });

  it("loading reports progress: stage load, MiB of each model in turn, ending at its total", async () => {
    for (const [source, opts] of [
      [pipeDir, {}],
      [ldmFile, { tokenizer: tokenizerDir, configs: tinyConfigs }],
    ] as const) {
      const events: ProgressEvent[] = [];
      await loadPipelineComponents(source, { ...opts, onProgress: (e) => events.push(e) });
      assert.ok(events.every((e) => e.stage === "load" && e.total !== undefined && e.step <= e.total));
      const finals = events.filter((e) => e.step === e.total).map((e) => e.message);
      assert.deepEqual(finals, ["UNet2DConditionModel", "AutoencoderKL", "CLIPTextModel"], source);
    }
  });

  it("errors: a missing component folder, a missing tokenizer, no model_index.json", async () => {
    const noVae = assemble("no-vae", ["vae"]);
    await assert.rejects(
      loadPipelineComponents(noVae),
      (e: unknown) =>
        e instanceof CheckpointError &&
        /component folder vae\/ is missing \(model_index\.json lists vae: AutoencoderKL\)/.test(e.message),
    );
    const noTok = assemble("no-tokenizer", ["tokenizer"], { ...MODEL_INDEX, tokenizer: [null, null] });
    await assert.rejects(
      loadPipelineComponents(noTok),
      /the pipeline has no tokenizer; pass one with --tokenizer DIR/,
    );
    const withTok = await loadPipelineComponents(noTok, { tokenizer: tokenizerDir });
    assert.equal(withTok.tokenizer!.eosTokenId, 673);
    await assert.rejects(
      loadPipelineComponents(ldmFile, { configs: tinyConfigs }),
      (e: unknown) =>
        e instanceof CheckpointError &&
        /tiny_sd_ldm\.safetensors: a single-file checkpoint carries no tokenizer; pass a tokenizer folder with --tokenizer DIR/.test(
          e.message,
        ) &&
        /vocab\.json \+ merges\.txt/.test(e.message),
    );
    await assert.rejects(
      loadPipelineComponents(join(models, "tiny_unet")),
      /one model's folder \(config\.json\), not a pipeline; pass the folder that holds model_index\.json/,
    );
    await assert.rejects(
      loadPipelineComponents(assemble("other", [], { ...MODEL_INDEX, _class_name: "FluxPipeline" })),
      /pipeline class "FluxPipeline" is not a Stable Diffusion pipeline; expected one of StableDiffusionPipeline/,
    );
    await assert.rejects(loadPipelineComponents(join(tmp, "nowhere")), /nowhere: not found/);
  });

  it("errors: unknown files, pickles, and sizes that are not the family's", async () => {
    await assert.rejects(
      loadPipelineComponents(join(models, "tiny_unet", "diffusion_pytorch_model.safetensors"), {
        tokenizer: tokenizerDir,
      }),
      (e: unknown) =>
        e instanceof CheckpointError &&
        /expected an original Stable Diffusion checkpoint with model\.diffusion_model\.\* \(UNet\)/.test(
          e.message,
        ) &&
        /found up_blocks\.\* \(\d+\), down_blocks\.\* \(\d+\)/.test(e.message),
    );
    const ckpt = join(tmp, "model.ckpt");
    writeFileSync(ckpt, Buffer.from("PK\x03\x04 a zip pickle"));
    await assert.rejects(
      loadPipelineComponents(ckpt),
      /PyTorch pickle checkpoints are not read: convert it to \.safetensors/,
    );
    // without configs the UNet and VAE sizes are read from the shapes; a text encoder 32 wide has no 64-wide heads
    await assert.rejects(
      loadPipelineComponents(ldmFile, { tokenizer: tokenizerDir }),
      (e: unknown) =>
        e instanceof CheckpointError &&
        /cannot infer the attention heads of a text encoder of width 32 \(CLIP's heads are 64 wide\); pass its config explicitly/.test(
          e.message,
        ),
    );
    // a given config that does not fit the shapes is an error naming the differences
    await assert.rejects(
      loadPipelineComponents(ldmFile, {
        tokenizer: tokenizerDir,
        configs: { ...tinyConfigs, unet: { ...tinyConfigs.unet, block_out_channels: [32, 128] } },
      }),
      /the UNet of this sd1 checkpoint does not have the sizes the given configs\.unet says \(block_out_channels: config \[32,128\], file \[32,64\]\)/,
    );
  });
});
