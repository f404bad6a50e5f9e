// A guidance interval in the Stable Diffusion loop (tiny fixture models): the steps outside it run the conditional
// half of the batch alone (prompt states, and for SDXL the pooled embeddings and time ids), so an interval that
// holds no step reproduces guidance 1 and one that holds every step reproduces plain guidance.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { UNet2DConditionModel } from "../../src/models/index.js";
import {
  type GenerateOptions,
  type StableDiffusionComponents,
  timestepSigma,
} from "../../src/pipelines/index.js";
import { assertClose, skipWithoutFixtures } from "../helpers.js";
import { tinyParts, tinyPipeline } from "./tiny-pipeline.js";

describe("guidance interval (Stable Diffusion loop)", { skip: skipWithoutFixtures() }, () => {
  let parts: Omit<StableDiffusionComponents, "scheduler">;
  before(async () => {
    parts = await tinyParts();
  });

  /** Final latents and the UNet batch of every step. */
  async function run(opts: Partial<GenerateOptions>) {
    const unet: UNet2DConditionModel = parts.unet;
    const batches: number[] = [];
    const forward = unet.forward.bind(unet);
    unet.forward = (sample, t, ehs, o) => {
      batches.push(sample.shape[0]!);
      return forward(sample, t, ehs, o);
    };
    try {
      const r = await tinyPipeline(parts, "EulerDiscreteScheduler").generate({
        prompt: "a red square",
        negativePrompt: "blue",
        steps: 4,
        seed: 5,
        width: 32,
        height: 32,
        ...opts,
      });
      return { latents: r.latents.toFloat32Array(), batches, settings: r.settings };
    } finally {
      unet.forward = forward;
    }
  }

  it("no step inside = the conditional branch alone; every step inside = plain guidance", async () => {
    const plain = await run({ guidanceScale: 7.5 });
    assert.deepEqual(plain.batches, [2, 2, 2, 2]);
    const all = await run({ guidanceScale: 7.5, guidanceInterval: { sigmaMin: 0, sigmaMax: Infinity } });
    assert.deepEqual(all.latents, plain.latents);
    assert.deepEqual(all.settings.guidanceInterval, { sigmaMin: 0, sigmaMax: Infinity });
    const none = await run({ guidanceScale: 7.5, guidanceInterval: { sigmaMin: 1e6, sigmaMax: 2e6 } });
    assert.deepEqual(none.batches, [1, 1, 1, 1]);
    assertClose(none.latents, (await run({ guidanceScale: 1 })).latents, 1e-5);
  });

  it("guides exactly the steps whose sigma is in (lo, hi]; refuses an empty interval", async () => {
    const scheduler = tinyPipeline(parts, "EulerDiscreteScheduler").scheduler;
    scheduler.setTimesteps(4);
    const sigmas = scheduler.timesteps.map((t) => timestepSigma(scheduler, t));
    const mid = await run({
      guidanceScale: 7.5,
      guidanceInterval: { sigmaMin: sigmas[3]!, sigmaMax: sigmas[1]! },
    });
    assert.deepEqual(mid.batches, [1, 2, 2, 1]);
    await assert.rejects(
      run({ guidanceScale: 7.5, guidanceInterval: { sigmaMin: 3, sigmaMax: 3 } }),
      /sigmaMin < sigmaMax/,
    );
  });
});
