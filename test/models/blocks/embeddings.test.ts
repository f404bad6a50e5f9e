// Sinusoidal timestep embeddings: hand-computed values, and diffusers' time_proj output of the tiny UNet fixture.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadSafetensors, tensor } from "../../../src/index.js";
import { Timesteps, timestepEmbedding } from "../../../src/models/index.js";
import { assertAllClose, assertClose, fixturesDir, skipWithoutFixtures } from "../../helpers.js";

describe("timestepEmbedding", () => {
  it("is [sin(t f_i)..., cos(t f_i)...] with f_i = 10000^(-i / (half - shift))", () => {
    // dim 4, shift 0: half 2, f = [1, 10000^(-1/2) = 0.01]
    const t = 3;
    const got = timestepEmbedding([t], 4, { downscaleFreqShift: 0 }).toFloat32Array();
    assertAllClose(got, [Math.sin(3), Math.sin(0.03), Math.cos(3), Math.cos(0.03)], 1e-6, 0);
    // shift 1 (diffusers' default): f = [1, 10000^(-1/1)]; flipped puts the cosines first
    const flipped = timestepEmbedding([t], 4, { flipSinToCos: true }).toFloat32Array();
    assertAllClose(flipped, [Math.cos(3), Math.cos(3e-4), Math.sin(3), Math.sin(3e-4)], 1e-6, 0);
    // odd dims get a zero at the end; scale multiplies the arguments
    const odd = timestepEmbedding([t], 5, { downscaleFreqShift: 0, scale: 2 }).toFloat32Array();
    assertAllClose(odd, [Math.sin(6), Math.sin(0.06), Math.cos(6), Math.cos(0.06), 0], 1e-6, 0);
  });

  it("rounds float timesteps to float32 first, as diffusers' .float()", () => {
    const a = timestepEmbedding([623.4567], 32, { flipSinToCos: true, downscaleFreqShift: 0 });
    const b = timestepEmbedding([Math.fround(623.4567)], 32, { flipSinToCos: true, downscaleFreqShift: 0 });
    assert.deepEqual(a.toFloat32Array(), b.toFloat32Array());
  });

  it("Timesteps takes numbers, arrays and tensors of any dtype", () => {
    const proj = new Timesteps(6, true, 0);
    const want = proj.call([4, 9]).toFloat32Array();
    assert.deepEqual(
      proj.call(tensor(BigInt64Array.from([4n, 9n]), [2], { dtype: "int64" })).toFloat32Array(),
      want,
    );
    assert.deepEqual(proj.call(tensor([4, 9], [2])).toFloat32Array(), want);
    assert.deepEqual(proj.call(4).shape, [1, 6]);
    assert.throws(() => proj.call(tensor([1, 2, 3, 4], [2, 2])), /0-d\/1-d tensor/);
  });

  it("matches the tiny UNet's time_proj (diffusers, t = 500)", { skip: skipWithoutFixtures() }, async () => {
    const io = (await loadSafetensors(join(fixturesDir()!, "models", "unet_io.safetensors"))).tensors;
    const want = io.get("a.time_proj")!;
    const got = timestepEmbedding([500, 500], 32, { flipSinToCos: true, downscaleFreqShift: 0 });
    assert.deepEqual(got.shape, want.shape);
    assertClose(got.toFloat32Array(), want.toFloat32Array(), 1e-6, "time_proj");
  });
});
