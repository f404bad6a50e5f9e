// `diffuse generate` on a tiny Stable Diffusion folder assembled from the fixture components (model_index.json,
// links to the component folders, the SD 1.5 scheduler config): PNGs carry A1111 parameters that `diffuse info`
// prints and `--from` reproduces byte for byte (single images, one image of a batch, image-to-image); errors
// are one line.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeImage, readPngText, writePng } from "../../src/io/image.js";
import { parseParameters } from "../../src/pipelines/index.js";
import { fixturesDir, skipWithoutFixtures } from "../helpers.js";
import { diffuse } from "./run-cli.js";

function assertOk(r: ReturnType<typeof diffuse>): void {
  assert.equal(r.code, 0, `exit code (stderr: ${r.stderr})`);
}

function assertOneLineError(r: ReturnType<typeof diffuse>, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit code (stdout: ${r.stdout}, stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^diffuse: /);
  assert.match(lines[0]!, pattern);
}

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

/** A diffusers pipeline folder linking the fixture components (no tokenizer when `tokenizer` is false). */
function assemble(dir: string, tokenizer = true): void {
  const models = join(fixturesDir()!, "models");
  mkdirSync(join(dir, "scheduler"), { recursive: true });
  const index: Record<string, unknown> = {
    _class_name: "StableDiffusionPipeline",
    _diffusers_version: "0.38.0",
    unet: ["diffusers", "UNet2DConditionModel"],
    vae: ["diffusers", "AutoencoderKL"],
    text_encoder: ["transformers", "CLIPTextModel"],
    scheduler: ["diffusers", "PNDMScheduler"],
    safety_checker: [null, null],
    feature_extractor: [null, null],
  };
  symlinkSync(join(models, "tiny_unet"), join(dir, "unet"));
  symlinkSync(join(models, "tiny_vae"), join(dir, "vae"));
  symlinkSync(join(models, "tiny_text_encoder"), join(dir, "text_encoder"));
  if (tokenizer) {
    index.tokenizer = ["transformers", "CLIPTokenizer"];
    symlinkSync(join(models, "tiny_tokenizer"), join(dir, "tokenizer"));
  }
  writeFileSync(join(dir, "model_index.json"), JSON.stringify(index, null, 2));
  writeFileSync(join(dir, "scheduler", "scheduler_config.json"), JSON.stringify(SD15_SCHEDULER, null, 2));
}

describe("diffuse generate (Stable Diffusion)", { skip: skipWithoutFixtures() }, () => {
  let tmp: string;
  let model: string;
  const out = (name: string) => join(tmp, name);
  const params = (file: string) => parseParameters(readPngText(readFileSync(file)).parameters!);

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "diffuse-generate-"));
    model = out("tiny-sd");
    assemble(model);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("writes a PNG with A1111 parameters; info prints them; --from reproduces it byte for byte", () => {
    const r = diffuse(
      "generate",
      "--model",
      model,
      "a photo of a cat",
      "--negative",
      "blurry, dark",
      "--steps",
      "4",
      "--seed",
      "42",
      "--guidance",
      "6.5",
      "-o",
      out("a.png"),
    );
    assertOk(r);
    assert.equal(r.stdout, `${out("a.png")}\n`);
    const p = params(out("a.png"));
    const unetHash = createHash("sha256")
      .update(readFileSync(join(model, "unet", "diffusion_pytorch_model.safetensors")))
      .digest("hex")
      .slice(0, 10);
    assert.deepEqual(
      { ...p, extra: undefined },
      {
        prompt: "a photo of a cat",
        negativePrompt: "blurry, dark",
        steps: 4,
        sampler: "pndm",
        guidanceScale: 6.5,
        seed: 42,
        width: 16,
        height: 16,
        modelHash: unetHash,
        modelName: "tiny-sd",
        extra: undefined,
      },
    );
    const image = decodeImage(readFileSync(out("a.png")));
    assert.deepEqual([image.width, image.height, image.channels], [16, 16, 3]);

    const info = diffuse("info", out("a.png"));
    assertOk(info);
    assert.match(info.stdout, /PNG, 16x16 RGB/);
    assert.match(info.stdout, /prompt: a photo of a cat/);
    assert.match(info.stdout, /negative prompt: blurry, dark/);
    assert.match(info.stdout, new RegExp(`Model hash +${unetHash}`));
    const json = JSON.parse(diffuse("info", out("a.png"), "--json").stdout);
    assert.equal(json.parameters.Seed, "42");
    assert.equal(json.parameters.Sampler, "PLMS");

    assertOk(diffuse("generate", "--model", model, "--from", out("a.png"), "-o", out("a-again.png")));
    assert.ok(readFileSync(out("a-again.png")).equals(readFileSync(out("a.png"))), "identical bytes");

    // explicit options override the image's parameters
    assertOk(
      diffuse("generate", "--model", model, "--from", out("a.png"), "--seed", "43", "-o", out("a43.png")),
    );
    assert.equal(params(out("a43.png")).seed, 43);
    assert.notDeepEqual(decodeImage(readFileSync(out("a43.png"))).data, image.data);
  });

  it("one image of a batch is reproduced from its Batch size / Batch pos; samplers by A1111 name", () => {
    const r = diffuse(
      "generate",
      "--model",
      model,
      "a red car",
      "--num-images",
      "3",
      "--seed",
      "7",
      "--steps",
      "3",
      "--sampler",
      "DPM++ 2M Karras",
      "-o",
      out("b.png"),
    );
    assertOk(r);
    assert.deepEqual(r.stdout.trim().split("\n"), [out("b-0.png"), out("b-1.png"), out("b-2.png")]);
    const p = params(out("b-2.png"));
    assert.equal(p.sampler, "dpmpp-2m-karras");
    assert.deepEqual([p.batchSize, p.batchPos], [3, 2]);
    assertOk(diffuse("generate", "--model", model, "--from", out("b-2.png"), "-o", out("b2-again.png")));
    assert.ok(readFileSync(out("b2-again.png")).equals(readFileSync(out("b-2.png"))), "identical bytes");
  });

  it("image-to-image and inpainting from files; --from needs the init image again", () => {
    const mask = new Uint8Array(16 * 16);
    for (let i = 0; i < mask.length; i++) mask[i] = i % 16 < 8 ? 255 : 0;
    writePng(out("mask.png"), { width: 16, height: 16, channels: 1, data: mask });
    writePng(out("mask-small.png"), { width: 8, height: 8, channels: 1, data: mask.subarray(0, 64) });
    assertOk(
      diffuse(
        "generate",
        "--model",
        model,
        "a cat",
        "--init-image",
        out("a.png"),
        "--strength",
        "0.6",
        "--steps",
        "5",
        "--seed",
        "3",
        "--sampler",
        "euler",
        "-o",
        out("i2i.png"),
      ),
    );
    assert.equal(params(out("i2i.png")).strength, 0.6);
    assertOneLineError(
      diffuse("generate", "--model", model, "--from", out("i2i.png"), "-o", out("x.png")),
      /was made by image-to-image or inpainting; pass the same --init-image/,
    );
    assertOk(
      diffuse(
        "generate",
        "--model",
        model,
        "--from",
        out("i2i.png"),
        "--init-image",
        out("a.png"),
        "-o",
        out("i2i-again.png"),
      ),
    );
    assert.ok(readFileSync(out("i2i-again.png")).equals(readFileSync(out("i2i.png"))), "identical bytes");

    assertOk(
      diffuse(
        "generate",
        "--model",
        model,
        "a cat",
        "--init-image",
        out("a.png"),
        "--mask",
        out("mask.png"),
        "--steps",
        "3",
        "--seed",
        "3",
        "-o",
        out("inpaint.png"),
      ),
    );
    assertOneLineError(
      diffuse(
        "generate",
        "--model",
        model,
        "a cat",
        "--init-image",
        out("a.png"),
        "--mask",
        out("mask-small.png"),
        "--steps",
        "3",
        "-o",
        out("x.png"),
      ),
      /mask is 8x8 but the init image is 16x16/,
    );
  });

  it("errors are one line: bad sizes, no prompt, no tokenizer, not an SD model", () => {
    assertOneLineError(
      diffuse("generate", "--model", model, "a cat", "--width", "15", "-o", out("x.png")),
      /width 15 is not a multiple of 2 .*nearest valid widths: 14 or 16/,
    );
    assertOneLineError(diffuse("generate", "--model", model, "-o", out("x.png")), /give a prompt/);
    const noTokenizer = out("no-tokenizer");
    assemble(noTokenizer, false);
    assertOneLineError(diffuse("generate", "--model", noTokenizer, "a cat", "-o", out("x.png")), /tokenizer/);
    assertOneLineError(
      diffuse("generate", "--model", join(fixturesDir()!, "models", "tiny_unet"), "a cat"),
      /not a Stable Diffusion model/,
    );
  });
});
