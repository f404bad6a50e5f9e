// Training on the strict test device: a step reads nothing back, the logged losses come back in one read, the
// device's bytes in use stay flat, and the numbers are the reference backend's on the CPU.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memoryReport, resetStrictCounters, setBackend, strictCounters } from "../../src/backend/index.js";
import { DDPMScheduler } from "../../src/schedulers/ddpm.js";
import { loadMnist, subsetPerClass } from "../../src/train/data/mnist.js";
import { DiffusionTrainer } from "../../src/train/diffusion-trainer.js";
import { tinyUNet } from "./tiny.js";

const digits = subsetPerClass(loadMnist().train, 1);
const options = { steps: 4, batchSize: 1, seed: 3 };
const strictBytes = (): number => memoryReport().find((r) => r.device === "strict")!.bytesInUse!;

describe("DiffusionTrainer on the strict device", () => {
  it("trains without readbacks but the logged loss, with the CPU's losses and flat memory", async () => {
    const previous = setBackend("reference");
    let cpuLosses: number[];
    try {
      const cpu = new DiffusionTrainer(tinyUNet(), new DDPMScheduler({}), digits, options);
      for (let i = 0; i < options.steps; i++) cpu.trainStep();
      cpuLosses = await cpu.readLosses();
    } finally {
      setBackend(previous);
    }

    const trainer = new DiffusionTrainer(
      tinyUNet().toDevice("strict"),
      new DDPMScheduler({}),
      digits,
      options,
    );
    resetStrictCounters();
    trainer.trainStep();
    trainer.trainStep(); // the optimizer's and the EMA's state exist from here on
    assert.equal(strictCounters().readbacks, 0, "a training step reads nothing back");
    const before = strictBytes();
    for (let i = 2; i < options.steps; i++) trainer.trainStep();
    assert.equal(strictCounters().readbacks, 0);
    const losses = await trainer.readLosses();
    assert.equal(strictCounters().readbacks, 1, "the losses of all steps come back in one read");
    assert.deepEqual(losses, cpuLosses);
    // what stays is what each step returned: its 0-d loss and gradient norm (the caller's, until collected)
    assert.equal(strictBytes() - before, 2 * 4 * (options.steps - 2));
  });
});
