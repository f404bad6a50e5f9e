import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { outputPaths, SHIPPED_MODEL_DIR } from "../../src/cli/generate.js";
import { buildProgram } from "../../src/cli/main.js";
import { readImage, readPngText } from "../../src/io/image.js";
import { saveClassConditionalPipeline } from "../../src/pipelines/class-conditional-save.js";
import { parseParameters } from "../../src/pipelines/params.js";
import { DDPMScheduler } from "../../src/schedulers/ddpm.js";
import { tinyUNet } from "../train/tiny.js";
import { diffuse, repoRoot } from "./run-cli.js";

function assertOneLineError(r: ReturnType<typeof diffuse>, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^diffuse: /);
  assert.match(lines[0]!, pattern);
}

let dir: string;
let model: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-gen-"));
  model = join(dir, "tiny-mnist");
  await saveClassConditionalPipeline(model, tinyUNet(1), {
    ...new DDPMScheduler({}).config,
    _class_name: "DDPMScheduler",
  });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("diffuse generate (class-conditional)", () => {
  it("writes out-0.png, out-1.png and a grid, each with an A1111-style parameters chunk", () => {
    const out = join(dir, "a", "out.png");
    mkdirSync(dirname(out));
    const grid = join(dir, "a", "grid.png");
    const r = diffuse(
      "generate",
      "--model",
      model,
      "--class",
      "3",
      "--num-images",
      "2",
      "--sampler",
      "dpmpp-2m",
      "--steps",
      "2",
      "--guidance",
      "3",
      "--seed",
      "42",
      "-o",
      out,
      "--grid",
      grid,
      "--json",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(join(dir, "a")).sort(), ["grid.png", "out-0.png", "out-1.png"]);
    const img = readImage(join(dir, "a", "out-1.png"));
    assert.equal(img.width, 32);
    assert.equal(img.height, 32);
    const text = readPngText(readFileSync(join(dir, "a", "out-1.png")));
    assert.equal(
      text.parameters,
      "class 3\nSteps: 2, Sampler: DPM++ 2M, CFG scale: 3, Seed: 43, Size: 32x32, Model: tiny-mnist, RNG: CPU",
    );
    assert.match(readPngText(readFileSync(join(dir, "a", "out-0.png"))).parameters!, /Seed: 42,/);
    const g = readImage(grid);
    assert.equal(g.width, 2 * 32 + 2);
    const files = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((e) => e.type === "image");
    assert.deepEqual(
      files.map((f) => f.seed),
      [42, 43, undefined],
    );
  });

  it("writes one image to the -o name itself; image i redone alone with seed + i is identical", () => {
    const many = join(dir, "many.png");
    assert.equal(
      diffuse(
        "generate",
        "--model",
        model,
        "--class",
        "5,6",
        "--num-images",
        "2",
        "--steps",
        "2",
        "--seed",
        "7",
        "-o",
        many,
      ).code,
      0,
    );
    const one = join(dir, "one.png");
    const r = diffuse("generate", "--model", model, "--class", "6", "--steps", "2", "--seed", "8", "-o", one);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(one));
    assert.deepEqual(readImage(one).data, readImage(join(dir, "many-1.png")).data);
  });

  it("takes seeds up to 2^64 - 1 as PyTorch does, exactly, and records them", async () => {
    const out = join(dir, "big-seed.png");
    const gen = (...args: string[]) =>
      buildProgram().parseAsync([
        "node",
        "diffuse",
        "generate",
        "--model",
        model,
        "--steps",
        "2",
        ...args,
        "-o",
        out,
      ]);
    await gen("--seed", "18446744073709551615");
    const params = parseParameters(readPngText(readFileSync(out)).parameters!);
    assert.equal(params.seed, 18446744073709551615n);
    await assert.rejects(
      gen("--seed", "18446744073709551615", "--num-images", "2"),
      /\+ 1 \(image 2\) is not below 2\^64/,
    );
    await assert.rejects(gen("--seed", "18446744073709551616"), /--seed must be below 2\^64/);
  });

  it("--from replays a class-conditional PNG pixel for pixel", async () => {
    const first = join(dir, "replay-a.png");
    const again = join(dir, "replay-b.png");
    const gen = (...args: string[]) => buildProgram().parseAsync(["node", "diffuse", "generate", ...args]);
    await gen(
      "--model",
      model,
      "--class",
      "3",
      "--seed",
      "5",
      "--steps",
      "3",
      "--sampler",
      "euler",
      "-o",
      first,
    );
    await gen("--model", model, "--from", first, "-o", again);
    assert.deepEqual(readImage(again).data, readImage(first).data);
    await assert.rejects(
      gen("--from", first, "-o", again),
      /made with the model ".*", not the shipped mnist; pass --model/,
    );
    await assert.rejects(gen("--model", model, "--from", first, "a cat", "-o", again), /takes no prompt/);
  });

  it("gives clear errors for a missing folder, a bad class, a bad sampler, a non-pipeline folder and a prompt", async () => {
    const out = join(dir, "x.png");
    // one run through the CLI for the one-line format; the rest in-process (same code path, no process start-up)
    assertOneLineError(
      diffuse("generate", "--model", join(dir, "nope"), "-o", out),
      /model folder .*nope not found/,
    );
    const gen = (...args: string[]) =>
      buildProgram().parseAsync(["node", "diffuse", "generate", ...args, "-o", out]);
    await assert.rejects(
      gen("--model", model, "--class", "10"),
      /--class must be integers in 0\.\.9 for this model, got "10"/,
    );
    await assert.rejects(gen("--model", model, "--class", "x"), /--class/);
    await assert.rejects(
      gen("--model", model, "--sampler", "nope"),
      /unknown sampler "nope"; known: .*dpmpp-2m/,
    );
    await assert.rejects(gen("--model", model, "--steps", "0"), /--steps must be an integer >= 1/);
    await assert.rejects(
      gen("--model", model, "--device", "cuda"),
      /--device must be cpu or webgpu, got "cuda"/,
    );
    // a WebGPU set-up that cannot give an adapter says so in one line
    const noAdapter = spawnSync(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "generate", "--device", "webgpu"],
      {
        cwd: repoRoot,
        encoding: "utf8",
        env: { ...process.env, DIFFUSE_DEBUG: "", DIFFUSE_WEBGPU_ADAPTER: "metal" },
      },
    );
    assertOneLineError(
      { code: noAdapter.status, stdout: noAdapter.stdout, stderr: noAdapter.stderr },
      /DIFFUSE_WEBGPU_ADAPTER must be auto, swiftshader or null, got "metal"/,
    );
    const bare = join(dir, "bare");
    mkdirSync(bare);
    await assert.rejects(gen("--model", bare), /no model_index.json/);
    writeFileSync(join(bare, "model_index.json"), JSON.stringify({ _class_name: "KandinskyPipeline" }));
    await assert.rejects(gen("--model", bare), /"KandinskyPipeline" is not supported/);
    await assert.rejects(gen("--model", model, "a photo of a cat"), /class-conditional models take --class/);
    // text-to-image options are refused for a class-conditional model, not ignored
    await assert.rejects(
      gen("--model", model, "--width", "64", "--negative", "blurry"),
      /--negative, --width apply to text-to-image models; .* is class-conditional/,
    );
    await assert.rejects(
      gen("--model", model, "--dtype", "float16"),
      /--dtype applies to text-to-image models/,
    );
    // and class-conditional options for a text-to-image run
    await assert.rejects(
      gen("red heart", "--grid", join(dir, "g.png")),
      /--grid applies to class-conditional models/,
    );
    assert.equal(existsSync(out), false);
  });

  it("uses the model's guidance interval unless --guidance-interval says otherwise, and records it", async () => {
    const withInterval = join(dir, "interval-mnist");
    await saveClassConditionalPipeline(
      withInterval,
      tinyUNet(1),
      { ...new DDPMScheduler({}).config, _class_name: "DDPMScheduler" },
      { guidanceInterval: { sigmaMin: 0, sigmaMax: 2 } },
    );
    const gen = async (m: string, name: string, ...args: string[]) => {
      const out = join(dir, name);
      await buildProgram().parseAsync([
        "node",
        "diffuse",
        "generate",
        "--model",
        m,
        "--steps",
        "3",
        "-o",
        out,
        ...args,
      ]);
      return { text: readPngText(readFileSync(out)).parameters!, data: readImage(out).data };
    };
    const byDefault = await gen(withInterval, "gi-default.png");
    assert.match(byDefault.text, /, Guidance interval: "0,2"$/);
    const typed = await gen(model, "gi-typed.png", "--guidance-interval", "0,2");
    assert.deepEqual(typed.data, byDefault.data, "same weights, same interval");
    const all = await gen(withInterval, "gi-all.png", "--guidance-interval", "all");
    assert.doesNotMatch(all.text, /Guidance interval/);
    assert.deepEqual(all.data, (await gen(model, "gi-plain.png")).data, "'all' guides every step");
    assert.notDeepEqual(all.data, byDefault.data);
    await assert.rejects(
      gen(model, "gi-bad.png", "--guidance-interval", "5"),
      /--guidance-interval: .*SIGMA_MIN,SIGMA_MAX/,
    );
    await assert.rejects(
      gen(model, "gi-bad.png", "--guidance-interval", "3,1"),
      /--guidance-interval: .*sigmaMin < sigmaMax/,
    );
  });

  it("names outputs and finds the shipped model relative to the package", () => {
    assert.deepEqual(outputPaths("o.png", 1), ["o.png"]);
    assert.deepEqual(outputPaths("dir/o.png", 2), ["dir/o-0.png", "dir/o-1.png"]);
    assert.deepEqual(outputPaths("o", 1), ["o.png"]);
    assert.throws(() => outputPaths("o.jpg", 1), /\.png/);
    assert.equal(SHIPPED_MODEL_DIR, join(repoRoot, "models", "mnist"));
  });
});
