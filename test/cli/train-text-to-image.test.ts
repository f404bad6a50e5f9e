// `diffuse train vae`, `train clip` and `train unet` end to end with tiny models on the emoji images, and their
// option checks.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { buildProgram } from "../../src/cli/main.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

function diffuse(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args, "--json"], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  const lines = r.stdout
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code: r.status, lines, stderr: r.stderr };
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-train-t2i-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("diffuse train vae / clip / unet", () => {
  it("trains the three stages into a folder that generates", () => {
    const common = ["--steps", "2", "--batch", "4", "--sample-every", "0", "--checkpoint-every", "0"];
    const vae = diffuse(
      "train",
      "vae",
      "--out",
      join(dir, "vae"),
      "--size",
      "16",
      "--channels",
      "8,8",
      "--norm-groups",
      "4",
      ...common,
    );
    assert.equal(vae.code, 0, vae.stderr);
    const metrics = vae.lines.find((l) => l.type === "metrics")!;
    assert.ok((metrics.scalingFactor as number) > 0 && (metrics.images as number) === 3786);
    const clip = diffuse(
      "train",
      "clip",
      "--out",
      join(dir, "clip"),
      "--merges",
      "50",
      "--max-length",
      "24",
      "--hidden",
      "16",
      "--layers",
      "1",
      "--heads",
      "2",
      "--projection-dim",
      "8",
      "--image-channels",
      "8,8",
      ...common,
    );
    assert.equal(clip.code, 0, clip.stderr);
    assert.ok(clip.lines.some((l) => l.type === "metrics" && typeof l.top1 === "number"));
    const unet = diffuse(
      "train",
      "unet",
      "--out",
      join(dir, "t2i"),
      "--vae",
      join(dir, "vae"),
      "--text-encoder",
      join(dir, "clip"),
      "--channels",
      "8,16",
      "--heads",
      "2",
      "--norm-groups",
      "4",
      ...common,
    );
    assert.equal(unet.code, 0, unet.stderr);
    assert.equal(unet.lines.at(-1)!.type, "done");
    for (const part of ["model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler"])
      assert.ok(existsSync(join(dir, "t2i", part)), part);
    // resuming needs neither --vae nor --text-encoder (the run recorded them; its folder holds copies)
    const resumed = diffuse(
      "train",
      "unet",
      "--out",
      join(dir, "t2i"),
      "--resume",
      join(dir, "t2i"),
      "--steps",
      "3",
    );
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(resumed.lines.at(-1)!.step, 3);
    const gen = diffuse(
      "generate",
      "red heart",
      "--model",
      join(dir, "t2i"),
      "--steps",
      "2",
      "-o",
      join(dir, "h.png"),
    );
    assert.equal(gen.code, 0, gen.stderr);
  });

  it("refuses what does not fit: no VAE for a new run, --vae on a resumed one, a contradicting flag", async () => {
    const run = (...args: string[]) => buildProgram().parseAsync(["node", "diffuse", "train", ...args]);
    await assert.rejects(
      run("unet", "--out", join(dir, "x")),
      /a new run needs --vae DIR .* and --text-encoder DIR/,
    );
    await assert.rejects(
      run("unet", "--out", join(dir, "t2i"), "--resume", join(dir, "t2i"), "--vae", join(dir, "vae")),
      /--vae and --text-encoder apply to a new run/,
    );
    await assert.rejects(
      run("vae", "--out", join(dir, "vae"), "--resume", join(dir, "vae"), "--kl-weight", "0.5"),
      /--kl-weight 0.5 contradicts the resumed run's --kl-weight 1e-4/,
    );
    await assert.rejects(
      run("vae", "--out", join(dir, "y"), "--size", "48"),
      /--size must be 16, 32 or 64, got 48/,
    );
    await assert.rejects(
      run("clip", "--out", join(dir, "y"), "--hidden", "30", "--heads", "4"),
      /--hidden 30 is not divisible by --heads 4/,
    );
  });
});
