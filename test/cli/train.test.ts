import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { buildProgram } from "../../src/cli/main.js";
import { mnistUNetConfig } from "../../src/cli/train.js";
import { readTrainerState } from "../../src/train/checkpoint.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** A tiny model and run: 2 levels of 8 / 16 channels, attention at 16x16. */
const TINY = [
  "--channels",
  "8,16",
  "--attention",
  "1",
  "--norm-groups",
  "4",
  "--head-dim",
  "8",
  "--batch",
  "2",
];
const ARGS = ["--import", "tsx", "src/cli/main.ts", "train", "mnist"];

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-train-cli-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
}

describe("diffuse train mnist", () => {
  it("trains into a pipeline folder with --json progress lines (loss, lr, images/s)", () => {
    const out = join(dir, "run");
    const r = spawnSync(
      process.execPath,
      [
        ...ARGS,
        "--out",
        out,
        ...TINY,
        "--steps",
        "3",
        "--sample-every",
        "0",
        "--checkpoint-every",
        "2",
        "--prediction-type",
        "v_prediction",
        "--json",
      ],
      { cwd: repoRoot, encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    const train = lines.filter((l) => l.type === "progress" && l.stage === "train");
    assert.deepEqual(
      train.map((l) => l.step),
      [1, 2, 3],
    );
    const values = train[0]!.values as Record<string, number>;
    for (const k of ["loss", "lr", "imagesPerSecond", "gradNorm"]) assert.ok(Number.isFinite(values[k]), k);
    assert.ok(lines.some((l) => l.type === "saved" && l.what === "checkpoint" && l.step === 2));
    assert.deepEqual(lines.at(-1), { type: "done", step: 3, out });
    for (const f of [
      "model_index.json",
      "unet/config.json",
      "unet/diffusion_pytorch_model.safetensors",
      "scheduler/scheduler_config.json",
      "checkpoint/trainer_state.json",
      "samples/step-000003.png",
      "samples/loss.svg",
    ]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    const sched = JSON.parse(readFileSync(join(out, "scheduler", "scheduler_config.json"), "utf8"));
    assert.equal(sched.prediction_type, "v_prediction");
    assert.equal(sched.beta_schedule, "squaredcos_cap_v2");
    const cfg = JSON.parse(readFileSync(join(out, "unet", "config.json"), "utf8"));
    assert.equal(cfg.num_class_embeds, 11);
    assert.deepEqual(cfg.down_block_types, ["DownBlock2D", "AttnDownBlock2D"]);
    const index = JSON.parse(readFileSync(join(out, "model_index.json"), "utf8"));
    assert.deepEqual(index.guidance_interval, [0, 2.5], "the recipe's sampling default");
  });

  it("Ctrl-C (SIGINT) writes a checkpoint before exiting; --resume finishes the run", async () => {
    const out = join(dir, "interrupted");
    const child = spawn(
      process.execPath,
      [
        ...ARGS,
        "--out",
        out,
        ...TINY,
        "--steps",
        "400",
        "--sample-every",
        "0",
        "--checkpoint-every",
        "0",
        "--json",
      ],
      {
        cwd: repoRoot,
      },
    );
    let stdout = "";
    let sent = false;
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!sent && stdout.includes('"step":2,')) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    const code = await new Promise<number | null>((done) => child.on("close", done));
    assert.equal(code, 130); // as a shell reports a SIGINT, after the checkpoint
    const last = jsonLines(stdout).at(-1)!;
    assert.equal(last.type, "stopped");
    const step = last.step as number;
    assert.ok(step >= 2 && step < 400, `stopped at ${step}`);
    assert.equal(readTrainerState(join(out, "checkpoint")).step, step);
    assert.ok(existsSync(join(out, "unet", "diffusion_pytorch_model.safetensors")));
    const r = spawnSync(
      process.execPath,
      [
        ...ARGS,
        "--out",
        out,
        "--resume",
        out,
        ...TINY,
        "--steps",
        String(step + 1),
        "--sample-every",
        "0",
        "--json",
      ],
      {
        cwd: repoRoot,
        encoding: "utf8",
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const train = jsonLines(r.stdout).filter((l) => l.stage === "train");
    assert.deepEqual(
      train.map((l) => l.step),
      [step + 1],
    );
    assert.equal(readTrainerState(join(out, "checkpoint")).step, step + 1);
  });

  it("--resume keeps the run's recorded options: a contradicting flag is an error naming both values", async () => {
    const out = join(dir, "interrupted"); // the run of the previous test, recorded with --batch 2
    const resume = (...args: string[]) =>
      buildProgram().parseAsync([
        "node",
        "diffuse",
        "train",
        "mnist",
        "--out",
        out,
        "--resume",
        out,
        ...args,
      ]);
    await assert.rejects(resume("--batch", "3"), /--batch 3 contradicts the resumed run's --batch 2/);
    await assert.rejects(
      resume("--channels", "8,32"),
      /--channels 8,32 contradicts the resumed run's --channels 8,16/,
    );
  });

  it("rejects bad options with clear messages", async () => {
    const run = (...args: string[]) =>
      buildProgram().parseAsync(["node", "diffuse", "train", ...args, "--out", join(dir, "never")]);
    await assert.rejects(
      run("cifar"),
      /unknown command "train cifar" \(available: mnist, vae, clip, unet, lcm, lora, classifier\)/,
    );
    await assert.rejects(
      run("mnist", "--prediction-type", "sample"),
      /--prediction-type must be epsilon or v_prediction/,
    );
    await assert.rejects(
      run("mnist", "--beta-schedule", "cosine"),
      /--beta-schedule must be one of linear, scaled_linear, squaredcos_cap_v2/,
    );
    await assert.rejects(run("mnist", "--steps", "0"), /--steps must be an integer >= 1/);
    await assert.rejects(
      run("mnist", "--cond-dropout", "1.5"),
      /--cond-dropout must be a number in \[0, 1\]/,
    );
    await assert.rejects(run("mnist", "--attention", "5"), /--attention level 5 does not exist/);
    await assert.rejects(run("mnist", "--guidance-interval", "1"), /--guidance-interval: /);
    assert.equal(existsSync(join(dir, "never")), false);
  });

  it("describes a UNet2DModel with attention at the chosen levels", () => {
    const cfg = mnistUNetConfig({
      channels: "32,64,64",
      layersPerBlock: "1",
      attention: "2",
      headDim: "32",
      normGroups: "16",
    });
    assert.deepEqual(cfg.down_block_types, ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"]);
    assert.deepEqual(cfg.up_block_types, ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"]);
    assert.equal(cfg.num_class_embeds, 11);
    const none = mnistUNetConfig({
      channels: "32,64",
      layersPerBlock: "2",
      attention: "none",
      headDim: "8",
      normGroups: "8",
    });
    assert.deepEqual(none.down_block_types, ["DownBlock2D", "DownBlock2D"]);
  });
});
