// The tiny Stable Diffusion pipeline on the strict test device: every model on a device whose memory the CPU
// cannot read synchronously. A whole text-to-image run reads back once (the image), and its pixels are the
// reference backend's on the CPU.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { memoryReport, resetStrictCounters, setBackend, strictCounters } from "../../src/backend/index.js";
import { tensorToImages } from "../../src/io/image.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import * as F from "../../src/ops/index.js";
import { generateClassImages, loadClassConditionalPipeline } from "../../src/pipelines/class-conditional.js";
import { denoise } from "../../src/pipelines/denoise.js";
import { SAMPLERS, samplerFromName } from "../../src/schedulers/index.js";
import { noGrad } from "../../src/tensor/autograd.js";
import { randn } from "../../src/tensor/create.js";
import { Generator } from "../../src/tensor/generator.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { assertClose, fixturesDir, skipWithoutFixtures } from "../helpers.js";
import { SD15_CONFIG } from "../schedulers/toy.js";
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

/** A full garbage collection, then a pause for the finalizers it queued (frees of unreferenced buffers). */
async function collectGarbage(): Promise<void> {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
  for (let i = 0; i < 3; i++) await new Promise((done) => setTimeout(done, 5));
}

describe("the denoising loop on the strict device", () => {
  it("keeps the device's bytes in use flat over 100 steps (LCM: 50), for every sampler", async () => {
    for (const spec of SAMPLERS) {
      // what earlier tests left to the garbage collector goes first, so only this run's buffers move the count
      await collectGarbage();
      const scheduler = samplerFromName(spec.name, SD15_CONFIG);
      scheduler.setTimesteps(spec.name === "lcm" ? 50 : 100); // LCM schedules at most its 50 original steps
      const generator = new Generator(1);
      const latents = F.toDevice(randn([1, 4, 8, 8], { generator }), "strict");
      const bytes: number[] = [];
      resetStrictCounters();
      await denoise({
        // a stand-in model: any fixed function of the input
        predict: (input) => F.mul(F.tanh(input), 0.5),
        scheduler,
        timesteps: scheduler.timesteps,
        latents: F.mul(latents, scheduler.initNoiseSigma),
        guided: false,
        guidanceScale: 1,
        guidanceRescale: 0,
        generator,
        onProgress: () => bytes.push(memoryReport().find((r) => r.device === "strict")!.bytesInUse!),
      });
      assert.equal(strictCounters().readbacks, 0, spec.name);
      assert.equal(bytes.length, scheduler.timesteps.length);
      // once the schedulers' histories have filled (two-stage samplers alternate between two levels) nothing
      // accumulates: the second half of the run never holds more than the first 20 steps did
      const early = Math.max(...bytes.slice(0, 20));
      const late = Math.max(...bytes.slice(bytes.length / 2));
      assert.ok(late <= early, `${spec.name}: ${early} bytes in the first 20 steps, ${late} later`);
    }
  });
});

describe("LoRA on the strict device", { skip }, () => {
  it("a fixture LoRA merged or as an adapter gives diffusers' UNet output on the device", async () => {
    const dir = fixturesDir()!;
    const unetIo = (await loadSafetensors(join(dir, "models", "unet_io.safetensors"))).tensors;
    const want = (await loadSafetensors(join(dir, "lora", "lora_io.safetensors"))).tensors.get(
      "out_scale_0p5",
    )!;
    for (const mode of ["merge", "adapter"] as const) {
      const parts = await tinyParts();
      parts.unet.toDevice("strict");
      parts.vae.toDevice("strict");
      parts.textEncoder.toDevice("strict");
      const pipe = tinyPipeline(parts);
      await pipe.loadLora(join(dir, "lora", "lora_peft.safetensors"), { scale: 0.5, mode });
      const out = noGrad(() =>
        pipe.unet.call(
          F.toDevice(unetIo.get("sample")!, "strict"),
          500,
          F.toDevice(unetIo.get("ehs1")!, "strict"),
        ),
      );
      assertClose(await out.toFloat32ArrayAsync(), want.toFloat32Array(), 1e-4, mode);
    }
  });
});
