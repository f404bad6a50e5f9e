// The tiny Stable Diffusion pipeline on the strict test device: every model on a device whose memory the CPU
// cannot read synchronously. A whole text-to-image run reads back once (the image), and its pixels are the
// reference backend's on the CPU.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resetStrictCounters, setBackend, strictCounters } from "../../src/backend/index.js";
import { skipWithoutFixtures } from "../helpers.js";
import { tinyParts, tinyPipeline } from "./tiny-pipeline.js";

const skip = skipWithoutFixtures();

describe("StableDiffusionPipeline on the strict device", { skip }, () => {
  it("text-to-image with guidance reads back once and gives the CPU's pixels", async () => {
    const options = { prompt: "a red apple", negativePrompt: "blurry", steps: 3, seed: 7, guidanceScale: 5 };
    // the strict device runs the reference kernels: the CPU run uses them too
    const previous = setBackend("reference");
    const cpu = await tinyPipeline(await tinyParts(), "DPMSolverMultistepScheduler")
      .generate(options)
      .finally(() => setBackend(previous));
    const parts = await tinyParts();
    parts.unet.toDevice("strict");
    parts.vae.toDevice("strict");
    parts.textEncoder.toDevice("strict");
    const pipe = tinyPipeline(parts, "DPMSolverMultistepScheduler");
    resetStrictCounters();
    const onStrict = await pipe.generate(options);
    const counts = strictCounters();
    assert.equal(counts.readbacks, 1, `readbacks: ${JSON.stringify(counts)}`);
    assert.ok(counts.kernels > 100, `${counts.kernels} kernels ran on the device`);
    assert.equal(onStrict.latents.device, "strict");
    assert.deepEqual(onStrict.images[0]!.data, cpu.images[0]!.data);
  });
});
