// The tiny Stable Diffusion pipeline on the strict test device: every model on a device whose memory the CPU
// cannot read synchronously. A whole text-to-image run reads back once (the image), and its pixels are the
// reference backend's on the CPU.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resetStrictCounters, setBackend, strictCounters } from "../../src/backend/index.js";
import { tensorToImages } from "../../src/io/image.js";
import { generateClassImages, loadClassConditionalPipeline } from "../../src/pipelines/class-conditional.js";
import { Tensor } from "../../src/tensor/tensor.js";
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

describe("class-conditional sampling on the strict device", () => {
  it("a digit from the shipped MNIST model: no readback until the image, the CPU's pixels", async () => {
    const options = { classLabels: [3], steps: 4, seed: 7, guidanceScale: 3 };
    const previous = setBackend("reference");
    let cpu: Float32Array;
    try {
      const p = await loadClassConditionalPipeline("models/mnist");
      cpu = (await generateClassImages(p.unet, p.scheduler, options)).toFloat32Array();
    } finally {
      setBackend(previous);
    }
    const p = await loadClassConditionalPipeline("models/mnist");
    p.unet.toDevice("strict");
    resetStrictCounters();
    const x = await generateClassImages(p.unet, p.scheduler, options);
    assert.equal(strictCounters().readbacks, 0);
    const [image] = await tensorToImages(x);
    assert.equal(strictCounters().readbacks, 1);
    assert.deepEqual(
      image!.data,
      (await tensorToImages(Tensor.fromStorage(cpu, x.shape, "float32")))[0]!.data,
    );
  });
});
