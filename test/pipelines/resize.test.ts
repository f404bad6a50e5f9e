// Pixel-space resizing of init images and masks (Lanczos-3, support widened when shrinking).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Image } from "../../src/io/image.js";
import { resizeImage } from "../../src/pipelines/index.js";

function image(
  width: number,
  height: number,
  channels: 1 | 3,
  f: (x: number, y: number, c: number) => number,
): Image {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = f(x, y, c);
  return { width, height, channels, data };
}

describe("resizeImage", () => {
  it("returns the image itself at the same size", () => {
    const im = image(4, 3, 3, (x, y, c) => x + y + c);
    assert.equal(resizeImage(im, 4, 3), im);
  });

  it("keeps constant images constant when shrinking and enlarging (weights sum to 1)", () => {
    const flat = image(37, 23, 3, (_x, _y, c) => [10, 128, 250][c]!);
    for (const [w, h] of [
      [8, 8],
      [64, 40],
      [37, 5],
    ] as const) {
      const r = resizeImage(flat, w, h);
      assert.equal(r.data.length, w * h * 3);
      for (let i = 0; i < r.data.length; i++) assert.equal(r.data[i], [10, 128, 250][i % 3]);
    }
  });

  it("a 4x shrink of 4x4 blocks gives the blocks' values; a horizontal ramp stays monotone", () => {
    const blocks = image(8, 8, 1, (x, y) => ((Math.floor(x / 4) + Math.floor(y / 4)) % 2 === 0 ? 0 : 200));
    const small = resizeImage(blocks, 2, 2);
    assert.deepEqual(
      Array.from(small.data).map((v) => (v < 40 ? 0 : v > 160 ? 200 : -1)),
      [0, 200, 200, 0],
    );
    const ramp = resizeImage(
      image(64, 2, 1, (x) => x * 4),
      16,
      2,
    );
    for (let x = 1; x < 16; x++) assert.ok(ramp.data[x]! >= ramp.data[x - 1]!, `monotone at ${x}`);
    assert.throws(() => resizeImage(ramp, 0, 4), /positive integers/);
  });
});
