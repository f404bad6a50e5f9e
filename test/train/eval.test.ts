import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DigitClassifier, DigitClassifierConfig } from "../../src/models/classifier/digit-classifier.js";
import { UNet2DModel } from "../../src/models/unet/unet-2d.js";
import { schedulerFromConfig } from "../../src/schedulers/registry.js";
import { Generator } from "../../src/tensor/generator.js";
import type { ProgressEvent } from "../../src/tensor/progress.js";
import { loadMnist, subsetPerClass } from "../../src/train/data/mnist.js";
import {
  type EvalResult,
  evaluateClassConditional,
  evaluateSweep,
  realBaselineFd,
  realDigitStats,
  sweepMarkdown,
  sweepSettings,
} from "../../src/train/eval.js";

/** A tiny random class-conditional pixel UNet (10 digits + the null class). */
function tinyUnet(): UNet2DModel {
  return new UNet2DModel(
    {
      sample_size: 32,
      in_channels: 1,
      out_channels: 1,
      block_out_channels: [8, 16],
      down_block_types: ["DownBlock2D", "DownBlock2D"],
      up_block_types: ["UpBlock2D", "UpBlock2D"],
      layers_per_block: 1,
      norm_num_groups: 4,
      add_attention: false,
      num_class_embeds: 11,
    },
    { generator: new Generator(0) },
  ).eval();
}

function tinyClassifier(): DigitClassifier {
  const config = DigitClassifierConfig.from({
    block_out_channels: [4, 8],
    norm_num_groups: 2,
    feature_dim: 6,
  });
  return new DigitClassifier(config, { generator: new Generator(1) }).eval();
}

const scheduler = schedulerFromConfig({ _class_name: "DDPMScheduler", num_train_timesteps: 1000 });
const heldOut = subsetPerClass(loadMnist().heldOut, 4);

describe("realDigitStats", () => {
  it("splits the held-out digits into two class-balanced halves and fits all of them", () => {
    const classifier = tinyClassifier();
    const real = realDigitStats(classifier, heldOut);
    assert.equal(real.halfCount, 20);
    assert.equal(real.stats.count, 40);
    assert.equal(real.stats.dim, 6);
    assert.ok(Number.isFinite(real.referenceFd) && real.referenceFd > 0, `reference FD ${real.referenceFd}`);
    assert.ok(real.classifierAccuracy >= 0 && real.classifierAccuracy <= 1);
  });
});

describe("realBaselineFd", () => {
  it("is 0 for the held-out digits themselves and positive for other real digits", () => {
    const classifier = tinyClassifier();
    const real = realDigitStats(classifier, heldOut);
    assert.ok(realBaselineFd(classifier, heldOut, 4, real) < 1e-9);
    const other = realBaselineFd(classifier, loadMnist().train, 4, real);
    assert.ok(Number.isFinite(other) && other > 0, `baseline ${other}`);
  });
});

describe("evaluateClassConditional on a tiny random model", () => {
  const unet = tinyUnet();
  const classifier = tinyClassifier();

  it("generates, classifies and scores end to end with numbers in range and progress to the total", async () => {
    const events: ProgressEvent[] = [];
    const streamed: EvalResult[] = [];
    const settings = [
      { sampler: "ddim", steps: 2, guidance: 1 },
      { sampler: "euler-a", steps: 3, guidance: 3 },
    ];
    const results = await evaluateSweep({
      unet,
      scheduler,
      classifier,
      heldOut,
      numPerClass: 2,
      batchSize: 8,
      settings,
      onProgress: (e) => events.push(e),
      onResult: (r) => streamed.push(r),
    });
    assert.deepEqual(streamed, results);
    assert.equal(results.length, 2);
    results.forEach((r, i) => {
      assert.deepEqual({ sampler: r.sampler, steps: r.steps, guidance: r.guidance }, settings[i]);
      assert.equal(r.count, 20);
      assert.equal(r.numPerClass, 2);
      assert.ok(r.accuracy >= 0 && r.accuracy <= 1);
      assert.ok(Number.isInteger(r.accuracy * 20), "accuracy counts whole images");
      assert.equal(r.perClassAccuracy.length, 10);
      assert.ok(
        r.perClassAccuracy.every((a) => [0, 0.5, 1].includes(a)),
        "2 images per class",
      );
      assert.ok(Number.isFinite(r.fd) && r.fd >= 0, `fd ${r.fd}`);
      assert.ok(r.referenceFd > 0);
      assert.equal(r.fdRatio, r.fd / r.referenceFd);
    });
    // progress: image-steps, monotone, ending at 20 x (2 + 3)
    assert.ok(events.every((e) => e.stage === "eval" && e.total === 100));
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.step >= events[i - 1]!.step);
    assert.equal(events.at(-1)!.step, 100);
    assert.equal(events.at(-1)!.message, "euler-a 3 steps g3");
  });

  it("is deterministic for a seed", async () => {
    const run = () =>
      evaluateClassConditional({
        unet,
        scheduler,
        classifier,
        heldOut,
        numPerClass: 1,
        sampler: "dpmpp-2m",
        steps: 2,
        guidance: 3,
        seed: 7,
      });
    const [a, b] = [await run(), await run()];
    assert.equal(a.fd, b.fd);
    assert.equal(a.accuracy, b.accuracy);
  });

  it("rejects unknown samplers, a classifier with other classes and bad counts before generating", async () => {
    const base = { unet, scheduler, classifier, heldOut, numPerClass: 1, steps: 2, guidance: 3 };
    await assert.rejects(evaluateClassConditional({ ...base, sampler: "nope" }), /unknown sampler "nope"/);
    await assert.rejects(
      evaluateClassConditional({ ...base, sampler: "ddim", numPerClass: 0 }),
      /numPerClass/,
    );
    await assert.rejects(evaluateClassConditional({ ...base, sampler: "ddim", steps: 0 }), /steps must be/);
    const five = new DigitClassifier(
      DigitClassifierConfig.from({ block_out_channels: [4], norm_num_groups: 2, num_classes: 5 }),
    );
    await assert.rejects(
      evaluateClassConditional({ ...base, sampler: "ddim", classifier: five }),
      /classifier has 5 classes but the model generates 10/,
    );
  });

  it("stops when the signal aborts", async () => {
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(
      evaluateClassConditional({
        unet,
        scheduler,
        classifier,
        heldOut,
        numPerClass: 1,
        sampler: "ddim",
        steps: 2,
        guidance: 1,
        signal: controller.signal,
      }),
      /stop/,
    );
  });
});

describe("sweep settings and table", () => {
  it("covers 5 samplers x 4 step counts x 3 guidance scales", () => {
    const all = sweepSettings();
    assert.equal(all.length, 60);
    assert.deepEqual(all[0], { sampler: "ddim", steps: 5, guidance: 1 });
    assert.deepEqual(all.at(-1), { sampler: "unipc", steps: 50, guidance: 7 });
  });

  it("formats one row per sampler and steps, one column per guidance", () => {
    const r = (
      sampler: string,
      steps: number,
      guidance: number,
      accuracy: number,
      fd: number,
    ): EvalResult => ({
      sampler,
      steps,
      guidance,
      accuracy,
      fd,
      numPerClass: 1,
      count: 10,
      perClassAccuracy: [],
      referenceFd: 1,
      fdRatio: fd,
      seconds: 0,
    });
    const table = sweepMarkdown([
      r("ddim", 5, 1, 0.9, 1.23456),
      r("ddim", 5, 3, 1, 2),
      r("euler", 10, 3, 0.975, 12.5),
    ]);
    assert.equal(
      table,
      [
        "| sampler | steps | guidance 1: accuracy / FD | guidance 3: accuracy / FD |",
        "| --- | ---: | ---: | ---: |",
        "| ddim | 5 | 90.0% / 1.23 | 100.0% / 2.00 |",
        "| euler | 10 | - | 97.5% / 12.50 |",
      ].join("\n"),
    );
  });
});
