// Tiled VAE decoding: tiles that cover the latent give the untiled decode exactly, tiles reassemble a
// position-wise decoder exactly, and seams are linear blends of the neighbouring tiles (diffusers' blend_v/_h).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { F, Generator, noGrad, randn, type Tensor, zeros } from "../../../src/index.js";
import { AutoencoderKL } from "../../../src/models/index.js";
import { tiledDecode } from "../../../src/models/vae/tiling.js";

const nearest = (z: Tensor, f: number) => F.interpolate(z, { scaleFactor: f, mode: "nearest" });

describe("tiled VAE decode", () => {
  it("reassembles a position-wise decoder exactly, for any overlap and ragged edges", () => {
    const g = new Generator().manualSeed(3);
    for (const [h, w, tile, overlap] of [
      [20, 13, 32, 0.25],
      [17, 30, 24, 0.5],
      [9, 9, 16, 0],
    ] as const) {
      const z = randn([2, 3, h, w], { generator: g });
      const want = nearest(z, 4).toFloat32Array();
      const got = tiledDecode(z, 4, (t) => nearest(t, 4), { tileSize: tile, overlap });
      assert.deepEqual(got.shape, [2, 3, 4 * h, 4 * w]);
      assert.deepEqual(got.toFloat32Array(), want, `${h}x${w} tile ${tile} overlap ${overlap}`);
    }
  });

  it("blends each seam linearly from the left/upper tile to the right/lower one", () => {
    // each decoded tile is its own constant k (k = 0, 1, 2, ... in decode order): the seams must be ramps
    const z = zeros([1, 1, 8, 14]);
    let k = 0;
    const decode = (t: Tensor) => F.add(nearest(t, 2), k++);
    // latent tile 8, stride 6: tiles at x = 0, 6, 12 (k = 0, 1, 2) and a second row at y = 6 (k = 3, 4, 5);
    // blend extent 16 - 12 = 4 pixels; the first row of tiles gives output rows 0..11
    const out = tiledDecode(z, 2, decode, { tileSize: 16, overlap: 0.25 }).toFloat32Array();
    const W = 28;
    assert.equal(k, 6);
    for (let y = 0; y < 12; y++) {
      const row = Array.from(out.subarray(y * W, (y + 1) * W));
      // tile 0 alone, then 4-pixel ramps 0 -> 1 at x = 12..15 and 1 -> 2 at x = 24..27
      const want = [
        ...new Array(12).fill(0),
        0,
        0.25,
        0.5,
        0.75,
        ...new Array(8).fill(1),
        1,
        1.25,
        1.5,
        1.75,
      ];
      assert.deepEqual(row, want, `row ${y}`);
    }
    // vertical seams blend the same way: down column x = 5 the tiles are k = 0, 2, 4 (rows of two tiles)
    k = 0;
    const zt = zeros([1, 1, 14, 8]);
    const outT = tiledDecode(zt, 2, decode, { tileSize: 16, overlap: 0.25 }).toFloat32Array();
    const col = Array.from({ length: 28 }, (_, y) => outT[y * 16 + 5]);
    const ramp = (a: number, b: number) => [0, 0.25, 0.5, 0.75].map((t) => a * (1 - t) + b * t);
    assert.deepEqual(col, [...new Array(12).fill(0), ...ramp(0, 2), ...new Array(8).fill(2), ...ramp(2, 4)]);
  });

  it("AutoencoderKL: a tile covering the latent gives the untiled decode; small tiles give a full image", () => {
    const vae = new AutoencoderKL(
      {
        block_out_channels: [8, 16],
        down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D"],
        norm_num_groups: 4,
        layers_per_block: 1,
        sample_size: 32,
      },
      { generator: new Generator().manualSeed(1) },
    ).eval();
    const z = randn([1, 4, 12, 10], { generator: new Generator().manualSeed(2) });
    noGrad(() => {
      const whole = vae.decode(z).toFloat32Array();
      assert.deepEqual(vae.decode(z, { tiled: true, tileSize: 32 }).toFloat32Array(), whole);
      const tiled = vae.decode(z, { tiled: true, tileSize: 8 });
      assert.deepEqual(tiled.shape, [1, 3, 24, 20]);
      assert.ok(tiled.toFloat32Array().every(Number.isFinite));
      // enableTiling() is the same as passing the options
      vae.enableTiling({ tileSize: 8 });
      assert.deepEqual(vae.decode(z).toFloat32Array(), tiled.toFloat32Array());
      assert.deepEqual(vae.decode(z, { tiled: false }).toFloat32Array(), whole);
      vae.disableTiling();
    });
  });
});
