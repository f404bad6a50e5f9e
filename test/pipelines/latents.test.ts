// The latent grid: size checks naming the nearest valid sizes, the seeded initial noise (one draw of the whole
// batch equals diffusers' torch.randn on CPU: the pipeline/cfg fixture's latents were drawn in a row from seed
// 31337), shape and finiteness checks.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Generator, loadSafetensors, tensor } from "../../src/index.js";
import { narrow } from "../../src/ops/index.js";
import {
  assertFinite,
  checkImageSize,
  checkLatentsShape,
  firstNonFinite,
  initialNoise,
  latentShape,
  nearestMultiples,
  PipelineError,
} from "../../src/pipelines/index.js";
import { fixturesDir, skipWithoutFixtures } from "../helpers.js";

describe("latents", () => {
  it("refuses sizes that are not multiples of the VAE factor, naming the nearest valid ones", () => {
    assert.deepEqual(nearestMultiples(500, 8), [496, 504]);
    assert.deepEqual(nearestMultiples(5, 8), [8]);
    checkImageSize(512, 768, 8);
    assert.throws(
      () => checkImageSize(500, 512, 8),
      (e: Error) =>
        e instanceof PipelineError &&
        /width 500 is not a multiple of 8/.test(e.message) &&
        /496 or 504/.test(e.message),
    );
    assert.throws(() => checkImageSize(512, 1001, 8), /nearest valid heights: 1000 or 1008/);
    assert.throws(() => checkImageSize(0, 512, 8), /width must be a positive integer/);
    assert.throws(() => checkImageSize(512.5, 512, 8), /width must be a positive integer/);
    assert.deepEqual(latentShape(2, 4, 512, 768, 8), [2, 4, 96, 64]);
  });

  it("initial noise: the batch drawn at once equals torch's draws (fixture cases drawn in a row)", {
    skip: skipWithoutFixtures(),
  }, async () => {
    const io = (await loadSafetensors(join(fixturesDir()!, "pipeline", "cfg.safetensors"))).tensors;
    const noise = initialNoise([3, 4, 8, 8], new Generator(31337));
    ["ddim_cfg7p5", "dpmpp_2m_cfg7p5", "euler_cfg5_neg"].forEach((id, b) => {
      assert.deepEqual(
        Array.from(narrow(noise, 0, b, 1).toFloat32Array()),
        Array.from(io.get(`${id}.initial_latents`)!.toFloat32Array()),
        id,
      );
    });
  });

  it("checks explicit latents and finiteness", () => {
    checkLatentsShape(tensor(new Float32Array(8), [1, 2, 2, 2]), [1, 2, 2, 2]);
    assert.throws(
      () => checkLatentsShape(tensor(new Float32Array(8), [2, 1, 2, 2]), [1, 2, 2, 2]),
      /latents must have shape \[1, 2, 2, 2\].*got \[2, 1, 2, 2\]/,
    );
    const t = tensor([0, 1, Number.NaN, Number.POSITIVE_INFINITY], [4]);
    assert.equal(firstNonFinite(t.toFloat32Array()), 2);
    assert.equal(firstNonFinite(Float32Array.of(1, 2)), -1);
    assert.throws(() => assertFinite(t, "the x", "try y"), /the x contain NaN \(element 2 of \[4\]\); try y/);
  });
});
