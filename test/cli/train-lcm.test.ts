// `diffuse train lcm` end to end from a tiny teacher (two steps, resumed to three), the folder it writes used by
// `diffuse generate --steps 4` and scored by `diffuse eval` with its own LCM scheduler, and its option checks.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { settingsFromOptions } from "../../src/cli/eval.js";
import { buildProgram } from "../../src/cli/main.js";
import { writeTinyTeacher } from "../train/lcm-teacher.js";
import { diffuse } from "./run-cli.js";

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

let dir: string;
let teacher: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-train-lcm-"));
  teacher = join(dir, "teacher");
  mkdirSync(teacher);
  await writeTinyTeacher(teacher);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("diffuse train lcm", () => {
  it("distills into a folder that generate and eval sample with the LCM scheduler", () => {
    const out = join(dir, "lcm");
    const common = ["--batch", "4", "--sample-every", "0", "--checkpoint-every", "0", "--json"];
    const first = diffuse("train", "lcm", "--teacher", teacher, "--out", out, "--steps", "2", ...common);
    assert.equal(first.code, 0, first.stderr);
    const lines = jsonLines(first.stdout);
    assert.ok(lines.some((l) => l.type === "progress" && l.stage === "train"));
    assert.deepEqual(lines.at(-1), { type: "done", step: 2, out });
    // resuming needs no --teacher (the folder holds a copy); --steps extends the run
    const resumed = diffuse("train", "lcm", "--out", out, "--resume", out, "--steps", "3", "--json");
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(jsonLines(resumed.stdout).at(-1)!.step, 3);
    const gen = diffuse(
      "generate",
      "red heart",
      "--model",
      out,
      "--steps",
      "4",
      "-o",
      join(dir, "h.png"),
      "--json",
    );
    assert.equal(gen.code, 0, gen.stderr);
    const settings = jsonLines(gen.stdout).at(-1)!.settings as Record<string, unknown>;
    assert.deepEqual([settings.sampler, settings.steps], ["lcm", 4]);
    const ev = diffuse("eval", "--model", out, "--names", "2", "--steps", "2", "--guidance", "3", "--json");
    assert.equal(ev.code, 0, ev.stderr);
    const result = jsonLines(ev.stdout).at(-1)!;
    assert.deepEqual(
      (result.results as Record<string, unknown>[]).map((r) => [r.sampler, r.steps, r.guidance, r.count]),
      [["lcm", 2, 3, 2]],
    );
  });

  it("--lora trains an LCM-LoRA that generate and eval put on the teacher with --sampler lcm", () => {
    const out = join(dir, "lcm-lora");
    const common = ["--batch", "4", "--sample-every", "0", "--checkpoint-every", "0", "--json"];
    const run = diffuse(
      "train",
      "lcm",
      "--teacher",
      teacher,
      "--out",
      out,
      "--lora",
      "4",
      "--steps",
      "2",
      ...common,
    );
    assert.equal(run.code, 0, run.stderr);
    const file = join(out, "pytorch_lora_weights.safetensors");
    assert.ok(jsonLines(run.stdout).some((l) => l.type === "saved" && l.what === "lora" && l.path === file));
    const gen = diffuse(
      "generate",
      "red heart",
      "--model",
      teacher,
      "--lora",
      file,
      "--sampler",
      "lcm",
      "--steps",
      "4",
      "--guidance",
      "1",
      "-o",
      join(dir, "lora-heart.png"),
      "--json",
    );
    assert.equal(gen.code, 0, gen.stderr);
    const settings = jsonLines(gen.stdout).at(-1)!.settings as Record<string, unknown>;
    assert.deepEqual([settings.sampler, settings.steps], ["lcm", 4]);
    const ev = diffuse(
      "eval",
      "--model",
      teacher,
      "--lora",
      file,
      "--sampler",
      "lcm",
      "--names",
      "2",
      "--steps",
      "2",
      "--guidance",
      "1",
      "--json",
    );
    assert.equal(ev.code, 0, ev.stderr);
  });

  it("eval samples an LCM folder with its own scheduler: 4 steps, --sweep over 1, 2, 4, 8", () => {
    const lcm = { sampler: "lcm", steps: 4, guidance: 7.5, sweepSteps: [1, 2, 4, 8] };
    assert.deepEqual(settingsFromOptions({}, lcm), [{ sampler: "lcm", steps: 4, guidance: 7.5 }]);
    assert.deepEqual(
      settingsFromOptions({ sweep: true, guidance: "3" }, lcm).map((s) => s.steps),
      [1, 2, 4, 8],
    );
  });

  it("refuses a run without a teacher, --teacher on a resumed run, an inverted guidance range, a bad loss", async () => {
    const run = (...args: string[]) =>
      buildProgram().parseAsync(["node", "diffuse", "train", "lcm", ...args]);
    await assert.rejects(run("--out", join(dir, "x")), /a new run needs --teacher DIR/);
    await assert.rejects(
      run("--out", join(dir, "lcm"), "--resume", join(dir, "lcm"), "--teacher", teacher),
      /--teacher applies to a new run/,
    );
    await assert.rejects(
      run("--out", join(dir, "x"), "--teacher", teacher, "--w-min", "8", "--w-max", "2"),
      /--w-min 8 is above --w-max 2: the guidance range is inverted; swap them/,
    );
    await assert.rejects(
      run("--out", join(dir, "x"), "--teacher", teacher, "--loss", "l1"),
      /--loss must be one of l2, huber, got "l1"/,
    );
    await assert.rejects(run("--out", join(dir, "x"), "--teacher", teacher, "--lora", "0"), /--lora/);
    await assert.rejects(
      run("--out", join(dir, "x"), "--teacher", teacher, "--skip", "30"),
      /dividing num_train_timesteps 1000/,
    );
  });
});
