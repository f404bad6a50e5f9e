import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import jpeg from "jpeg-js";
import { tensor } from "../../src/index.js";
import {
  decodeImage,
  encodePng,
  ImageError,
  imageGrid,
  imageToTensor,
  readImage,
  readPngText,
  tensorToImage,
  writePng,
} from "../../src/io/image.js";

describe("PNG images", () => {
  const rgb = {
    width: 3,
    height: 2,
    channels: 3 as const,
    data: Uint8Array.from({ length: 18 }, (_, i) => i * 13),
  };

  it("round-trips pixels and text chunks (Latin-1 and UTF-8)", () => {
    const params =
      "a photo of a cat\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 42";
    const bytes = encodePng(rgb, { parameters: params, comment: "ünïcödé ✓" });
    const back = decodeImage(bytes);
    assert.equal(back.width, 3);
    assert.equal(back.height, 2);
    assert.equal(back.channels, 3);
    assert.deepEqual(Array.from(back.data), Array.from(rgb.data));
    assert.equal(back.text.parameters, params);
    assert.equal(back.text.comment, "ünïcödé ✓");
    assert.deepEqual(readPngText(bytes), back.text);
  });

  it("writes atomically and reads back from disk; grayscale expands to RGB", () => {
    const dir = mkdtempSync(join(tmpdir(), "diffuse-img-"));
    const path = join(dir, "g.png");
    writePng(path, { width: 2, height: 1, channels: 1, data: new Uint8Array([0, 200]) });
    const img = readImage(path);
    assert.deepEqual(Array.from(img.data), [0, 0, 0, 200, 200, 200]);
  });

  it("rejects broken files with ImageError", () => {
    const dir = mkdtempSync(join(tmpdir(), "diffuse-img-"));
    const good = encodePng(rgb);
    writeFileSync(join(dir, "trunc.png"), good.subarray(0, 40));
    assert.throws(() => readImage(join(dir, "trunc.png")), ImageError);
    writeFileSync(join(dir, "junk.png"), "hello");
    assert.throws(() => readImage(join(dir, "junk.png")), /not a PNG or JPEG/);
    assert.throws(() => readImage(join(dir, "missing.png")), /cannot read file \(ENOENT\)/);
    assert.throws(() => encodePng({ ...rgb, data: new Uint8Array(5) }), /expected 3x2x3 = 18/);
  });

  it("tensor <-> image mapping uses [-1, 1] and rounds half to even", () => {
    const t = tensor([-1, 0, 1, 2, -0.5, 0.5], [1, 2, 3]);
    const img = tensorToImage(t);
    // (x+1)/2*255: -1 -> 0, 0 -> 127.5 -> 128 (half to even), 1 -> 255, 2 -> clamped 255
    assert.deepEqual(Array.from(img.data), [0, 128, 255, 255, 64, 191]);
    const back = imageToTensor(img, [0, 1]);
    assert.deepEqual(back.shape, [1, 1, 2, 3]);
    assert.ok(Math.abs(back.toFloat32Array()[2]! - 1) < 1e-7);
  });

  it("grids images with gaps", () => {
    const one = { width: 2, height: 2, channels: 1 as const, data: new Uint8Array([1, 2, 3, 4]) };
    const g = imageGrid([one, one, one], 2, 1);
    assert.equal(g.width, 5);
    assert.equal(g.height, 5);
    assert.deepEqual(Array.from(g.data.subarray(0, 5)), [1, 2, 0, 1, 2]);
  });

  it("decodes JPEG files to RGB", () => {
    const w = 16;
    const h = 8;
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([200, 100, 50, 255], i * 4);
    const bytes = jpeg.encode({ data: rgba, width: w, height: h }, 95).data;
    const img = decodeImage(bytes, "flat.jpg");
    assert.equal(img.channels, 3);
    assert.equal(img.width, w);
    const [r, g, b] = img.data;
    assert.ok(
      Math.abs(r! - 200) <= 3 && Math.abs(g! - 100) <= 3 && Math.abs(b! - 50) <= 3,
      `got ${r},${g},${b}`,
    );
  });
});
