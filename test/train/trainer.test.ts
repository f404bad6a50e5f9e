import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readPngText } from "../../src/io/image.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { mse_loss } from "../../src/ops/index.js";
import { loadClassConditionalPipeline } from "../../src/pipelines/class-conditional.js";
import { parseParameters } from "../../src/pipelines/params.js";
import { DDPMScheduler } from "../../src/schedulers/ddpm.js";
import { noGrad } from "../../src/tensor/autograd.js";
import { randn, tensor } from "../../src/tensor/create.js";
import { Generator } from "../../src/tensor/generator.js";
import { readTrainerState, saveCheckpoint } from "../../src/train/checkpoint.js";
import { loadMnist, subsetPerClass } from "../../src/train/data/mnist.js";
import { DiffusionTrainer } from "../../src/train/diffusion-trainer.js";
import { lossCurveSvg } from "../../src/train/loss-plot.js";
import { trainDiffusion } from "../../src/train/run.js";
import { TINY_UNET, tinyUNet } from "./tiny.js";

const digits = subsetPerClass(loadMnist().train, 2); // 20 digits
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-train-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every tensor of a safetensors file, as raw float32 arrays by name. */
async function tensorsOf(path: string): Promise<Map<string, Float32Array>> {
  const { tensors } = await loadSafetensors(path);
  return new Map([...tensors].map(([k, t]) => [k, t.toFloat32Array()]));
}

function assertBitwiseEqual(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: keys`);
  for (const [k, v] of a) {
    const w = b.get(k)!;
    const same = v.length === w.length && v.every((x, i) => Object.is(x, w[i]));
    assert.ok(same, `${what}: ${k} differs`);
  }
}

describe("DiffusionTrainer", () => {
  it("lowers the denoising loss of a fixed batch over 20 steps on 20 digits", async () => {
    const unet = tinyUNet(0);
    const scheduler = new DDPMScheduler({});
    const trainer = new DiffusionTrainer(unet, scheduler, digits, {
      steps: 20,
      batchSize: 10,
      lr: 3e-3,
      warmupSteps: 2,
      seed: 1,
    });
    // a fixed evaluation batch: the first 10 digits, fixed noise and timesteps, their true labels
    const g = new Generator(42);
    const x0 = tensor(digits.images.slice(0, 10 * 1024), [10, 1, 32, 32]);
    const noise = randn([10, 1, 32, 32], { generator: g });
    const t = [50, 150, 250, 350, 450, 550, 650, 750, 850, 950];
    const labels = Array.from(digits.labels.subarray(0, 10));
    const evalLoss = () =>
      noGrad(() => mse_loss(unet.call(scheduler.addNoise(x0, noise, t), t, labels), noise).item());
    const before = evalLoss();
    for (let i = 0; i < 20; i++) trainer.trainStep();
    const afterTraining = evalLoss();
    assert.equal(trainer.step, 20);
    assert.equal((await trainer.readLosses()).length, 20);
    assert.ok(before > 0.5, `initial loss ${before}`);
    assert.ok(afterTraining < 0.6 * before, `loss ${before} -> ${afterTraining}`);
  });

  it("follows the warm-up + cosine schedule and rejects bad options", () => {
    const trainer = new DiffusionTrainer(tinyUNet(), new DDPMScheduler({}), digits, {
      steps: 100,
      lr: 1e-3,
      warmupSteps: 10,
      minLr: 1e-4,
    });
    assert.equal(trainer.lrAt(0), 0);
    assert.equal(trainer.lrAt(5), 5e-4);
    assert.equal(trainer.lrAt(10), 1e-3);
    assert.ok(Math.abs(trainer.lrAt(55) - 5.5e-4) < 1e-12); // halfway down the cosine: (lr + minLr) / 2
    assert.equal(trainer.lrAt(100), 1e-4);
    assert.throws(
      () => new DiffusionTrainer(tinyUNet(), new DDPMScheduler({}), digits, { steps: 0 }),
      /steps/,
    );
    assert.throws(
      () => new DiffusionTrainer(tinyUNet(), new DDPMScheduler({}), digits, { steps: 5, condDropout: 2 }),
      /condDropout/,
    );
    assert.throws(
      () =>
        new DiffusionTrainer(tinyUNet(), new DDPMScheduler({ prediction_type: "sample" }), digits, {
          steps: 5,
        }),
      /prediction_type/,
    );
  });

  it("trains on v-prediction targets", () => {
    const trainer = new DiffusionTrainer(
      tinyUNet(),
      new DDPMScheduler({ prediction_type: "v_prediction" }),
      digits,
      {
        steps: 2,
        batchSize: 4,
      },
    );
    const r = trainer.trainStep();
    const loss = r.loss.item();
    assert.ok(Number.isFinite(loss) && loss > 0);
  });
});

describe("trainDiffusion", () => {
  const run = (outDir: string, extra: Partial<Parameters<typeof trainDiffusion>[0]> = {}) =>
    trainDiffusion({
      outDir,
      data: digits,
      unetConfig: TINY_UNET,
      train: { steps: 4, batchSize: 3, lr: 2e-3, warmupSteps: 1, seed: 5 },
      samples: { labels: [0, 1], columns: 2, steps: 2 },
      ...extra,
    });

  it("resuming a stopped run reaches bitwise the same weights, EMA and optimizer state as an uninterrupted run", async () => {
    const full = join(dir, "full");
    const parts = join(dir, "parts");
    await run(full);
    // stop after step 2 (as Ctrl-C does), then resume to step 4
    const controller = new AbortController();
    const stopped = await run(parts, {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.stage === "train" && e.step === 2) controller.abort();
      },
    });
    assert.equal(stopped.stopped, true);
    assert.equal(stopped.trainer.step, 2);
    assert.equal(readTrainerState(join(parts, "checkpoint")).step, 2);
    const resumed = await run(parts, { resumeFrom: parts });
    assert.equal(resumed.resumedAt, 2);
    assert.equal(resumed.trainer.step, 4);
    for (const f of ["model.safetensors", "ema.safetensors", "optimizer.safetensors"]) {
      assertBitwiseEqual(
        await tensorsOf(join(full, "checkpoint", f)),
        await tensorsOf(join(parts, "checkpoint", f)),
        f,
      );
    }
    const a = readTrainerState(join(full, "checkpoint"));
    const b = readTrainerState(join(parts, "checkpoint"));
    assert.deepEqual(b.losses, a.losses);
    assert.equal(b.generator, a.generator);
    assert.deepEqual(b.loader, a.loader);
    assert.deepEqual(b.optimizer, a.optimizer);
    assertBitwiseEqual(
      await tensorsOf(join(full, "unet", "diffusion_pytorch_model.safetensors")),
      await tensorsOf(join(parts, "unet", "diffusion_pytorch_model.safetensors")),
      "pipeline unet",
    );
  });

  it("writes a loadable pipeline folder with the EMA weights, a sample grid and the loss curve", async () => {
    const out = join(dir, "full");
    for (const f of [
      "model_index.json",
      "unet/config.json",
      "unet/diffusion_pytorch_model.safetensors",
      "scheduler/scheduler_config.json",
      "samples/step-000004.png",
      "samples/loss.svg",
    ]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    // the grid's settings in A1111's format, with the training step
    const text = readPngText(readFileSync(join(out, "samples/step-000004.png"))).parameters!;
    const grid = parseParameters(text);
    assert.equal(grid.prompt, "class grid");
    assert.equal(grid.steps, 2);
    assert.equal(grid.sampler, "dpmpp-2m");
    assert.match(text, /, Training step: 4$/);
    const index = JSON.parse(readFileSync(join(out, "model_index.json"), "utf8"));
    assert.deepEqual(index.unet, ["diffusers", "UNet2DModel"]);
    const sched = JSON.parse(readFileSync(join(out, "scheduler", "scheduler_config.json"), "utf8"));
    assert.equal(sched._class_name, "DDPMScheduler");
    assert.equal(sched.prediction_type, "epsilon");
    const { unet } = await loadClassConditionalPipeline(out);
    const ema = await tensorsOf(join(out, "checkpoint", "ema.safetensors"));
    const loaded = new Map([...unet.stateDict()].map(([k, t]) => [k, t.toFloat32Array()]));
    assertBitwiseEqual(loaded, ema, "EMA weights in unet/");
  });

  it("resume errors clearly without a checkpoint", async () => {
    await assert.rejects(run(join(dir, "x"), { resumeFrom: join(dir, "nothing-here") }), /no checkpoint in/);
  });
});

describe("saveCheckpoint", () => {
  it("leaves no partial folder and keeps the previous checkpoint when a save fails", async () => {
    const trainer = new DiffusionTrainer(tinyUNet(), new DDPMScheduler({}), digits, {
      steps: 3,
      batchSize: 2,
    });
    const ckpt = join(dir, "atomic", "checkpoint");
    trainer.trainStep();
    await saveCheckpoint(trainer, ckpt);
    trainer.trainStep();
    await assert.rejects(
      saveCheckpoint(trainer, ckpt, {
        onProgress: (e) => {
          if (e.message === "optimizer.safetensors") throw new Error("disk full");
        },
      }),
      /disk full/,
    );
    assert.deepEqual(readdirSync(join(dir, "atomic")), ["checkpoint"]);
    assert.equal(readTrainerState(ckpt).step, 1);
    await saveCheckpoint(trainer, ckpt);
    assert.deepEqual(readdirSync(join(dir, "atomic")), ["checkpoint"]);
    assert.equal(readTrainerState(ckpt).step, 2);
  });
});

describe("lossCurveSvg", () => {
  it("draws the raw and smoothed curves on a log axis", () => {
    const svg = lossCurveSvg([1, 0.5, 0.25, 0.2, 0.1], { smoothing: 2 });
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const paths = [...svg.matchAll(/<path d="([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(paths.length, 2);
    assert.equal(paths[0]!.split(/[ML]/).filter(Boolean).length, 5);
    // log scale: 1 -> top of [0.1, 1] axis, 0.1 -> bottom; raw curve's first and last points
    const pts = paths[0]!
      .split(/[ML]/)
      .filter(Boolean)
      .map((p) => p.split(",").map(Number));
    assert.equal(pts[0]![1], 28);
    assert.equal(pts[4]![1], 320 - 36);
    assert.match(lossCurveSvg([]), /no data/);
  });
});
