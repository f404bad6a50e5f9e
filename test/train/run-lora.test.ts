// A whole LoRA run (trainLora, what `diffuse train lora` runs): the file written in kohya and in PEFT layout,
// applied by the package's own loader (pipelines/lora.ts, merged into the weights), gives the same UNet and text
// encoder outputs as the trainer's adapted models (tiny fixture pipeline); a run stopped at a checkpoint and resumed
// writes the same LoRA bit for bit as an uninterrupted one (shipped emoji model).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { writePng } from "../../src/io/image.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { applyLora, loadLora } from "../../src/pipelines/lora.js";
import { noGrad } from "../../src/tensor/autograd.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { trainLora } from "../../src/train/run-lora.js";
import { fixturesDir, maxNormalizedError, randomTensor, skipWithoutFixtures, testRng } from "../helpers.js";
import { SD15_SCHEDULER } from "../pipelines/tiny-pipeline.js";
import { assembleTinySd } from "../server/helpers.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-run-lora-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** `n` random RGB images of `size` with captions in a new folder. */
function dataset(name: string, n: number, size: number): string {
  const d = join(dir, name);
  mkdirSync(d);
  const rng = testRng(n);
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(size * size * 3).map(() => Math.floor(rng() * 256));
    writePng(join(d, `img${i}.png`), { width: size, height: size, channels: 3, data });
    writeFileSync(join(d, `img${i}.txt`), `a pattern number ${i}`);
  }
  return d;
}

describe("trainLora on the tiny SD pipeline", { skip: skipWithoutFixtures() }, () => {
  for (const format of ["kohya", "peft"] as const) {
    it(`${format}: the loader's UNet and text encoder outputs equal the trainer's (<= 1e-5)`, async () => {
      const base = join(dir, `tiny-${format}`);
      assembleTinySd(base, fixturesDir()!, SD15_SCHEDULER);
      const out = join(dir, `tiny-${format}.safetensors`);
      const r = await trainLora({
        base,
        data: dataset(`tiny-data-${format}`, 4, 20),
        out,
        runDir: join(dir, `tiny-${format}.run`),
        format,
        layout: { targets: "all-linear+conv", rank: 4, alpha: 2, textEncoder: true },
        train: { steps: 3, batchSize: 2, lr: 5e-2, warmupSteps: 0, emaDecay: 0 },
        samplePrompts: [],
      });
      const { unet, textEncoder, tokenizer } = r.pipeline;
      const ids = tokenizer.encodeBatch(["a pattern number 2", "something else"], {
        padding: "max_length",
      }).inputIds;
      const sample = randomTensor([2, 4, 8, 8], 3);
      const run = (): [Float32Array, Float32Array] =>
        noGrad(() => {
          const context = textEncoder.call(ids).lastHiddenState as Tensor;
          return [context.toFloat32Array(), unet.call(sample, [10, 700], context).toFloat32Array()];
        });
      const [trainedText, trainedUnet] = run();
      r.lora.remove();
      const [baseText, baseUnet] = run();
      const file = await loadLora(out);
      assert.equal(file.format, format);
      assert.equal(file.metadata?.diffuse_lora_format, format);
      assert.equal(file.entries.length, r.lora.parameters().length / 2);
      const handle = applyLora({ unet, textEncoder }, file);
      const [loadedText, loadedUnet] = run();
      handle.remove();
      assert.ok(maxNormalizedError(trainedUnet, baseUnet) > 1e-3, "the LoRA changes the UNet output");
      assert.ok(maxNormalizedError(trainedText, baseText) > 1e-3, "the LoRA changes the text encoder output");
      assert.ok(maxNormalizedError(loadedUnet, trainedUnet) <= 1e-5, "UNet output");
      assert.ok(maxNormalizedError(loadedText, trainedText) <= 1e-5, "text encoder output");
    });
  }
});

describe("trainLora on the shipped emoji model", () => {
  it("a run stopped at step 2 and resumed writes the same LoRA as an uninterrupted run", async () => {
    const data = dataset("emoji-data", 3, 32);
    const common = {
      base: "models/emoji",
      data,
      format: "kohya" as const,
      layout: { targets: "attn" as const, rank: 2 },
      train: { steps: 4, batchSize: 2, lr: 1e-2, emaDecay: 0.9 },
      samplePrompts: [],
    };
    const whole = join(dir, "whole.safetensors");
    const w = await trainLora({ ...common, out: whole, runDir: join(dir, "whole.run") });
    const parts = join(dir, "parts.safetensors");
    const controller = new AbortController();
    const first = await trainLora({
      ...common,
      out: parts,
      runDir: join(dir, "parts.run"),
      signal: controller.signal,
      onProgress: (e) => {
        if (e.stage === "train" && e.step === 2) controller.abort();
      },
    });
    assert.deepEqual([first.stopped, first.trainer.step], [true, 2]);
    const second = await trainLora({ ...common, out: parts, runDir: join(dir, "parts.run"), resume: true });
    assert.deepEqual([second.stopped, second.trainer.step], [false, 4]);
    const a = await loadSafetensors(whole);
    const b = await loadSafetensors(parts);
    assert.equal(a.tensors.size, 56 * 3, "7 transformer blocks x 8 attention projections");
    assert.equal(b.tensors.size, a.tensors.size);
    for (const [key, t] of a.tensors) {
      assert.deepEqual(Array.from(b.tensors.get(key)!.toFloat32Array()), Array.from(t.toFloat32Array()), key);
    }
    assert.equal(a.metadata?.ss_steps, "4");
    assert.deepEqual(await second.trainer.readLosses(), await w.trainer.readLosses());
  });

  it("a resume with another layout is refused", async () => {
    const data = dataset("emoji-data-2", 2, 32);
    const runDir = join(dir, "other.run");
    const common = {
      base: "models/emoji",
      data,
      out: join(dir, "other.safetensors"),
      runDir,
      format: "peft" as const,
    };
    await trainLora({
      ...common,
      layout: { targets: "attn", rank: 2 },
      train: { steps: 1 },
      samplePrompts: [],
    });
    await assert.rejects(
      trainLora({ ...common, layout: { targets: "attn", rank: 4 }, train: { steps: 2 }, resume: true }),
      /made with another setup: rank 2 \(now 4\)/,
    );
  });
});
