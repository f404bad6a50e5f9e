// Training on WebGPU: the tiny class-conditional UNet trained for a few steps on the GPU gives the CPU run's losses
// (same seed, same batches and noise) within 1e-4 relative, and the device's bytes in use stay flat. A software
// adapter (lavapipe, SwiftShader) takes ~2 s per step here, so the run is short; bench/gpu/ trains longer on a GPU.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memoryReport } from "../../src/backend/index.js";
import { initWebGpu } from "../../src/backend/webgpu/index.js";
import { DDPMScheduler } from "../../src/schedulers/ddpm.js";
import { loadMnist, subsetPerClass } from "../../src/train/data/mnist.js";
import { DiffusionTrainer } from "../../src/train/diffusion-trainer.js";
import { tinyUNet } from "./tiny.js";

let skip: string | false = false;
try {
  await initWebGpu();
} catch (e) {
  skip = `no WebGPU adapter: ${(e as Error).message}`;
}

const digits = subsetPerClass(loadMnist().train, 2);
const options = { steps: 8, batchSize: 2, seed: 3, lr: 2e-3 };
const gpuBytes = (): number => memoryReport().find((r) => r.device === "webgpu")!.bytesInUse!;

describe("DiffusionTrainer on WebGPU", { skip }, () => {
  it("gives the CPU's loss curve within 1e-4 relative, with flat memory", async () => {
    const cpu = new DiffusionTrainer(tinyUNet(), new DDPMScheduler({}), digits, options);
    for (let i = 0; i < options.steps; i++) cpu.trainStep();
    const want = await cpu.readLosses();

    const gpu = new DiffusionTrainer(tinyUNet().toDevice("webgpu"), new DDPMScheduler({}), digits, options);
    gpu.trainStep();
    gpu.trainStep(); // the optimizer's and the EMA's state exist from here on
    const before = gpuBytes();
    for (let i = 2; i < options.steps; i++) gpu.trainStep();
    const got = await gpu.readLosses();
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) {
      assert.ok(
        Math.abs(got[i]! - want[i]!) <= 1e-4 * Math.abs(want[i]!),
        `step ${i}: ${got[i]} vs ${want[i]}`,
      );
    }
    assert.ok(want[want.length - 1]! < want[0]!, "the loss goes down");
    // what stays is what each step returned: its 0-d loss and gradient norm (the caller's, until collected)
    assert.ok(
      gpuBytes() - before <= 2 * 4 * (options.steps - 2),
      `bytes in use grew by ${gpuBytes() - before}`,
    );
  });
});
