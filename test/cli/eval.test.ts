import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { settingsFromOptions } from "../../src/cli/eval.js";
import { saveSafetensors } from "../../src/io/safetensors.js";
import { DigitClassifier, DigitClassifierConfig } from "../../src/models/classifier/digit-classifier.js";
import { UNet2DModel } from "../../src/models/unet/unet-2d.js";
import { Generator } from "../../src/tensor/generator.js";
import { diffuse, repoRoot } from "./run-cli.js";

function assertOneLineError(r: ReturnType<typeof diffuse>, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^diffuse: /);
  assert.match(lines[0]!, pattern);
}

let dir: string;
let modelDir: string;
let classifierDir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-eval-cli-"));
  // a tiny random class-conditional pipeline folder, laid out as diffusers writes one
  modelDir = join(dir, "model");
  mkdirSync(join(modelDir, "unet"), { recursive: true });
  mkdirSync(join(modelDir, "scheduler"), { recursive: true });
  const config = {
    _class_name: "UNet2DModel",
    sample_size: 32,
    in_channels: 1,
    out_channels: 1,
    block_out_channels: [8, 16],
    down_block_types: ["DownBlock2D", "DownBlock2D"],
    up_block_types: ["UpBlock2D", "UpBlock2D"],
    layers_per_block: 1,
    norm_num_groups: 4,
    add_attention: false,
    num_class_embeds: 11,
  };
  const unet = new UNet2DModel(config, { generator: new Generator(0) });
  writeFileSync(join(modelDir, "unet", "config.json"), JSON.stringify(config));
  await saveSafetensors(join(modelDir, "unet", "diffusion_pytorch_model.safetensors"), unet.stateDict());
  writeFileSync(
    join(modelDir, "scheduler", "scheduler_config.json"),
    JSON.stringify({ _class_name: "DDPMScheduler", num_train_timesteps: 1000 }),
  );
  writeFileSync(
    join(modelDir, "model_index.json"),
    JSON.stringify({
      _class_name: "ClassConditionalPipeline",
      unet: ["diffusers", "UNet2DModel"],
      scheduler: ["diffusers", "DDPMScheduler"],
    }),
  );
  classifierDir = join(dir, "classifier");
  const classifier = new DigitClassifier(
    DigitClassifierConfig.from({ block_out_channels: [4, 8], norm_num_groups: 2, feature_dim: 6 }),
    { generator: new Generator(1) },
  );
  await classifier.save(classifierDir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("diffuse eval", () => {
  it("runs end to end on a tiny model and prints one JSON result", () => {
    const r = diffuse(
      "eval",
      "--model",
      modelDir,
      "--classifier",
      classifierDir,
      "--num-per-class",
      "1",
      "--sampler",
      "euler",
      "--steps",
      "2",
      "--guidance",
      "3",
      "--guidance-interval",
      "0.5,inf",
      "--json",
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    const progress = lines.filter((l) => l.type === "progress");
    assert.equal(lines.filter((l) => l.type === "setting").length, 1);
    assert.ok(progress.length >= 2, "progress lines");
    assert.equal(progress.at(-1).step, 20);
    const result = lines.at(-1);
    assert.equal(result.type, "result");
    assert.equal(result.heldOutDigits, 1000);
    assert.equal(result.referenceHalf, 500);
    assert.equal(result.guidanceInterval, "0.5,inf");
    assert.ok(result.referenceFd > 0);
    assert.equal(result.results.length, 1);
    const [one] = result.results;
    assert.equal(one.sampler, "euler");
    assert.equal(one.count, 10);
    assert.ok(one.accuracy >= 0 && one.accuracy <= 1);
    assert.ok(Number.isFinite(one.fd) && one.fd >= 0);
  });

  it("--sweep prints a markdown table of the settings", () => {
    const r = diffuse(
      "eval",
      "--model",
      modelDir,
      "--classifier",
      classifierDir,
      "--num-per-class",
      "1",
      "--sweep",
      "--sampler",
      "ddim,unipc",
      "--steps",
      "1",
      "--guidance",
      "1,7",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /reference FD between two halves of the held-out digits \(500 vs 500\): \d+\.\d{3}/,
    );
    assert.match(
      r.stdout,
      /\| sampler \| steps \| guidance 1: accuracy \/ FD \| guidance 7: accuracy \/ FD \|/,
    );
    assert.match(r.stdout, /\| ddim \| 1 \| \d+\.\d% \/ \d+\.\d\d \| \d+\.\d% \/ \d+\.\d\d \|/);
    assert.match(r.stdout, /\| unipc \| 1 \|/);
    assert.match(r.stdout, /seed 0, guidance applied at every step; cells/);
  });

  it("scores the shipped emoji model with the shipped emoji classifier (a few names, few steps)", () => {
    const emoji = join(repoRoot, "models", "emoji");
    const r = diffuse("eval", "--model", emoji, "--names", "16", "--steps", "4", "--batch", "8", "--json");
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.equal(result.type, "result");
    assert.equal(result.names, 16);
    assert.ok(
      result.classifierAccuracy > 0.95,
      `the classifier knows the real images (${result.classifierAccuracy})`,
    );
    assert.ok(result.referenceFd > 0);
    const [setting] = result.results;
    assert.deepEqual(
      [setting.sampler, setting.steps, setting.guidance, setting.count],
      ["dpmpp-2m", 4, 7.5, 16],
    );
    assert.ok(setting.top1 >= 0 && setting.top1 <= setting.top5 && setting.top5 <= 1);
    assertOneLineError(
      diffuse("eval", "--model", emoji, "--num-per-class", "5"),
      /--num-per-class and --guidance-interval apply to class-conditional models/,
    );
  });

  it("names a missing model or classifier folder in one line", () => {
    assertOneLineError(
      diffuse("eval", "--model", join(dir, "missing"), "--classifier", classifierDir),
      /model folder .*missing not found; pass --model DIR/,
    );
    assertOneLineError(
      diffuse("eval", "--model", modelDir, "--classifier", join(dir, "nope")),
      /classifier folder .*nope not found; train one with "diffuse train classifier --out/,
    );
    assert.ok(!existsSync(join(dir, "nope")));
  });

  it("rejects lists without --sweep, bad numbers and unknown samplers", () => {
    assertOneLineError(diffuse("eval", "--steps", "5,10"), /--steps takes one value \(lists need --sweep\)/);
    assertOneLineError(diffuse("eval", "--num-per-class", "0"), /--num-per-class must be an integer >= 1/);
    assertOneLineError(diffuse("eval", "--sampler", "warp"), /unknown sampler "warp"; known: ddpm, ddim/);
    assertOneLineError(
      diffuse("eval", "--guidance-interval", "2,1"),
      /--guidance-interval: .*sigmaMin < sigmaMax/,
    );
  });
});

describe("settingsFromOptions", () => {
  it("defaults to dpmpp-2m, 20 steps, guidance 3; --sweep to the 60 settings of the README", () => {
    assert.deepEqual(settingsFromOptions({}), [{ sampler: "dpmpp-2m", steps: 20, guidance: 3 }]);
    assert.equal(settingsFromOptions({ sweep: true }).length, 60);
    assert.deepEqual(settingsFromOptions({ sweep: true, sampler: "ddim", steps: "5", guidance: "1,3" }), [
      { sampler: "ddim", steps: 5, guidance: 1 },
      { sampler: "ddim", steps: 5, guidance: 3 },
    ]);
  });
});
