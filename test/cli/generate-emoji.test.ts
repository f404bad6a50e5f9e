// The shipped text-to-image model (models/emoji) through the CLI: the default of a prompt without --model.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { readImage, readPngText } from "../../src/io/image.js";
import { parseParameters } from "../../src/pipelines/params.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

function diffuse(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-emoji-cli-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("diffuse generate with the shipped emoji model", () => {
  it("a prompt without --model draws a 32x32 emoji; --from replays it pixel for pixel", () => {
    const out = join(dir, "heart.png");
    const r = diffuse("generate", "red heart", "--steps", "8", "--seed", "3", "-o", out);
    assert.equal(r.code, 0, r.stderr);
    const img = readImage(out);
    assert.equal(img.width, 32);
    assert.equal(img.height, 32);
    const p = parseParameters(readPngText(readFileSync(out)).parameters!);
    assert.equal(p.prompt, "red heart");
    assert.equal(p.modelName, "emoji");
    assert.equal(p.seed, 3);
    // a red heart: the centre is red (R high, G and B low)
    const at = (x: number, y: number, c: number) => img.data[(y * 32 + x) * img.channels + c]!;
    assert.ok(at(16, 16, 0) > 150 && at(16, 16, 1) < 110 && at(16, 16, 2) < 110, "the centre pixel is red");
    const again = join(dir, "again.png");
    const replay = diffuse("generate", "--from", out, "-o", again);
    assert.equal(replay.code, 0, replay.stderr);
    assert.deepEqual(readImage(again).data, img.data);
  });

  it("diffuse info describes the folder as an SD-layout model of its own sizes", () => {
    const r = diffuse("info", join(repoRoot, "models", "emoji"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /diffusers pipeline StableDiffusionPipeline/);
    assert.match(
      r.stdout,
      /family: sd1 layout, own sizes \(cross_attention_dim 256\), prediction: v_prediction/,
    );
  });
});
