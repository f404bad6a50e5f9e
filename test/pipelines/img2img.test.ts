// Image-to-image: the schedule truncated by strength as diffusers' get_timesteps (DDIM, Heun's doubled steps), and
// the starting latents rebuilt by hand in diffusers' order of draws (posterior sample of the init image, then the
// noise) for a VP scheduler (DDIM) and a sigma scheduler (Euler, begin index).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Generator, noGrad, randn, type Tensor } from "../../src/index.js";
import type { Image } from "../../src/io/image.js";
import { add, div, mul, narrow } from "../../src/ops/index.js";
import {
  PipelineError,
  preprocessImage,
  type StableDiffusionComponents,
  strengthTimesteps,
} from "../../src/pipelines/index.js";
import { schedulerFromConfig } from "../../src/schedulers/index.js";
import { assertClose, skipWithoutFixtures } from "../helpers.js";
import { SD15_SCHEDULER, testImage, tinyParts, tinyPipeline } from "./tiny-pipeline.js";

describe("strength truncation (diffusers get_timesteps)", () => {
  it("DDIM, 10 steps, strength 0.75: starts at index 3 (t = 601), 7 steps", () => {
    const s = schedulerFromConfig({ ...SD15_SCHEDULER, _class_name: "DDIMScheduler" });
    s.setTimesteps(10);
    const r = strengthTimesteps(s, 10, 0.75);
    assert.deepEqual(r.timesteps, [601, 501, 401, 301, 201, 101, 1]);
    assert.equal(r.startIndex, 3);
    assert.equal(r.numSteps, 7);
    assert.equal(s.beginIndex, 3);
    // int(10 * 0.3) = 3 in float arithmetic (10 * 0.3 = 3.0000000000000004)
    s.setTimesteps(10);
    assert.equal(strengthTimesteps(s, 10, 0.3).numSteps, 3);
  });

  it("Heun (two entries per step): t_start * order", () => {
    const s = schedulerFromConfig({ ...SD15_SCHEDULER, _class_name: "HeunDiscreteScheduler" });
    s.setTimesteps(4);
    const all = [...s.timesteps];
    const r = strengthTimesteps(s, 4, 0.5);
    assert.equal(r.startIndex, 2 * s.order);
    assert.deepEqual(r.timesteps, all.slice(2 * s.order));
  });

  it("refuses a strength that leaves no step, and strengths outside [0, 1]", () => {
    const s = schedulerFromConfig({ ...SD15_SCHEDULER, _class_name: "DDIMScheduler" });
    s.setTimesteps(10);
    assert.throws(
      () => strengthTimesteps(s, 10, 0.05),
      (e: Error) => {
        assert.ok(e instanceof PipelineError);
        assert.match(e.message, /leaves no denoising step/);
        assert.match(e.message, /at least 20 steps/);
        return true;
      },
    );
    assert.throws(() => strengthTimesteps(s, 10, 1.5), /strength must be in \[0, 1\]/);
  });
});

describe("image-to-image starting latents", { skip: skipWithoutFixtures() }, () => {
  let parts: Omit<StableDiffusionComponents, "scheduler">;
  before(async () => {
    parts = await tinyParts();
  });

  /** Runs the pipeline and returns the UNet's first input. */
  async function firstUNetInput(className: string, opts: Record<string, unknown>): Promise<Tensor> {
    const pipe = tinyPipeline(parts, className);
    let first: Tensor | null = null;
    const forward = pipe.unet.forward.bind(pipe.unet);
    pipe.unet.forward = (...args) => {
      first ??= args[0];
      return forward(...args);
    };
    try {
      await pipe.generate({ prompt: "a red car", ...opts });
    } finally {
      pipe.unet.forward = forward;
    }
    return first!;
  }

  /** The init image's scaled posterior sample and the noise, drawn in diffusers' order from `seed`. */
  function expectedDraws(image: Image, seed: number, batch = 1): { latents: Tensor; noise: Tensor } {
    const g = new Generator(seed);
    return noGrad(() => {
      const dist = parts.vae.encode(preprocessImage(image, image.width, image.height)).latentDist;
      const latents = mul(dist.sample(g), 0.18215);
      const noise = randn([batch, 4, image.height / 2, image.width / 2], { generator: g });
      return { latents, noise };
    });
  }

  it("DDIM: x = sqrt(abar_601) z + sqrt(1 - abar_601) noise", async () => {
    const image = testImage(16, 16);
    const input = await firstUNetInput("DDIMScheduler", {
      initImage: image,
      strength: 0.75,
      steps: 10,
      seed: 5,
    });
    assert.deepEqual(input.shape, [2, 4, 8, 8]);
    const { latents, noise } = expectedDraws(image, 5);
    const s = schedulerFromConfig({ ...SD15_SCHEDULER, _class_name: "DDIMScheduler" });
    const abar = s.alphasCumprod[601]!;
    const want = add(
      mul(latents, Math.fround(Math.sqrt(abar))),
      mul(noise, Math.fround(Math.sqrt(1 - abar))),
    );
    assertClose(narrow(input, 0, 0, 1).toFloat32Array(), want.toFloat32Array(), 1e-5, "uncond half");
    assertClose(narrow(input, 0, 1, 1).toFloat32Array(), want.toFloat32Array(), 1e-5, "cond half");
  });

  it("Euler, strength 0.5: x = z + sigma[5] noise (begin index), input scaled by 1/sqrt(sigma^2 + 1)", async () => {
    const image = testImage(16, 16, 2);
    const input = await firstUNetInput("EulerDiscreteScheduler", {
      initImage: image,
      strength: 0.5,
      steps: 10,
      seed: 11,
      guidanceScale: 1,
    });
    assert.deepEqual(input.shape, [1, 4, 8, 8], "guidance 1: one branch");
    const { latents, noise } = expectedDraws(image, 11);
    const s = schedulerFromConfig({ ...SD15_SCHEDULER, _class_name: "EulerDiscreteScheduler" });
    s.setTimesteps(10);
    const sigma = s.sigmas![5]!;
    const want = div(add(latents, mul(noise, sigma)), Math.sqrt(sigma * sigma + 1));
    assertClose(input.toFloat32Array(), want.toFloat32Array(), 1e-5);
  });

  it("two images from one init image share its latents (tiled) and get their own noise", async () => {
    const image = testImage(16, 16, 3);
    const input = await firstUNetInput("DDIMScheduler", {
      initImage: image,
      strength: 0.75,
      steps: 10,
      seed: 9,
      numImages: 2,
      guidanceScale: 1,
    });
    assert.deepEqual(input.shape, [2, 4, 8, 8]);
    const { latents, noise } = expectedDraws(image, 9, 2);
    const abar = schedulerFromConfig({ ...SD15_SCHEDULER, _class_name: "DDIMScheduler" }).alphasCumprod[601]!;
    for (let b = 0; b < 2; b++) {
      const want = add(
        mul(latents, Math.fround(Math.sqrt(abar))),
        mul(narrow(noise, 0, b, 1), Math.fround(Math.sqrt(1 - abar))),
      );
      assertClose(narrow(input, 0, b, 1).toFloat32Array(), want.toFloat32Array(), 1e-5, `image ${b}`);
    }
  });

  it("an init image of another size is resized; sizes default to the init image's", async () => {
    const pipe = tinyPipeline(parts);
    const big = await pipe.generate({ prompt: "x", initImage: testImage(24, 20), steps: 2, seed: 1 });
    assert.deepEqual([big.images[0]!.width, big.images[0]!.height], [24, 20]);
    const resized = await pipe.generate({
      prompt: "x",
      initImage: testImage(24, 20),
      width: 16,
      height: 16,
      steps: 2,
      seed: 1,
    });
    assert.deepEqual([resized.images[0]!.width, resized.images[0]!.height], [16, 16]);
    assert.equal(resized.settings.strength, 0.8, "default strength (diffusers)");
    await assert.rejects(
      pipe.generate({ prompt: "x", initImage: randn([1, 3, 12, 12]), width: 16, height: 16, steps: 2 }),
      /initImage tensor must be \[B, 3, 16, 16\]/,
    );
  });
});
