// The shipped text-to-image model (models/emoji) through the CLI: the default of a prompt without --model.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readImage, readPngText, writePng } from "../../src/io/image.js";
import { parseParameters } from "../../src/pipelines/params.js";
import { diffuse, repoRoot } from "./run-cli.js";

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

  it("negative prompts, image-to-image and inpainting work on it", () => {
    const heart = join(dir, "base.png");
    assert.equal(diffuse("generate", "red heart", "--steps", "8", "--seed", "3", "-o", heart).code, 0);
    const base = readImage(heart);
    const diff = (a: Uint8Array, b: Uint8Array, keep?: (i: number) => boolean) => {
      let sum = 0;
      let n = 0;
      for (let i = 0; i < a.length; i++) {
        if (keep && !keep(Math.floor(i / 3))) continue;
        sum += Math.abs(a[i]! - b[i]!);
        n++;
      }
      return sum / n;
    };
    // a negative prompt changes the image
    const neg = join(dir, "neg.png");
    let r = diffuse("generate", "red heart", "--negative", "red", "--steps", "8", "--seed", "3", "-o", neg);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(diff(readImage(neg).data, base.data) > 2, "the negative prompt changed the picture");
    // image-to-image at low strength stays near its source; at full strength it is a new picture
    const i2i = join(dir, "i2i.png");
    r = diffuse(
      "generate",
      "blue heart",
      "--init-image",
      heart,
      "--strength",
      "0.3",
      "--steps",
      "10",
      "--seed",
      "1",
      "-o",
      i2i,
    );
    assert.equal(r.code, 0, r.stderr);
    const fresh = join(dir, "fresh.png");
    assert.equal(diffuse("generate", "blue heart", "--steps", "10", "--seed", "1", "-o", fresh).code, 0);
    assert.ok(
      diff(readImage(i2i).data, base.data) < diff(readImage(fresh).data, base.data),
      "strength 0.3 keeps more of the source than a fresh drawing",
    );
    // inpainting the right half keeps the left half
    const maskPath = join(dir, "mask.png");
    const mask = new Uint8Array(32 * 32 * 3);
    for (let p = 0; p < 32 * 32; p++) if (p % 32 >= 16) mask.fill(255, p * 3, p * 3 + 3);
    writePng(maskPath, { width: 32, height: 32, channels: 3, data: mask });
    const inpainted = join(dir, "inpaint.png");
    r = diffuse(
      "generate",
      "yellow star",
      "--init-image",
      heart,
      "--mask",
      maskPath,
      "--steps",
      "10",
      "--seed",
      "2",
      "-o",
      inpainted,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = readImage(inpainted).data;
    const left = (p: number) => p % 32 < 12;
    const right = (p: number) => p % 32 >= 20;
    assert.ok(
      diff(out, base.data, left) < diff(out, base.data, right),
      "the kept half changed less than the repainted half",
    );
  });
});
