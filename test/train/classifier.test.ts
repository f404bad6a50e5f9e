import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DigitClassifier, DigitClassifierConfig } from "../../src/models/classifier/digit-classifier.js";
import { noGrad } from "../../src/tensor/autograd.js";
import { tensor } from "../../src/tensor/create.js";
import { Generator } from "../../src/tensor/generator.js";
import {
  augmentDigits,
  classifierAccuracy,
  classifyDigits,
  trainDigitClassifier,
} from "../../src/train/classifier.js";
import { loadMnist, subsetPerClass } from "../../src/train/data/mnist.js";
import { argmaxRows } from "../../src/train/metrics.js";
import { randomTensor } from "../helpers.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const shipped = join(repoRoot, "models", "mnist-classifier");

/** A 32x32 image, background -1, with a bright 6x6 square whose top-left corner is (x, y). */
function square(x: number, y: number): Float32Array {
  const img = new Float32Array(32 * 32).fill(-1);
  for (let r = y; r < y + 6; r++) for (let c = x; c < x + 6; c++) img[r * 32 + c] = 1;
  return img;
}

/** Sum of (pixel + 1) / 2 and its centroid. */
function ink(img: Float32Array): { mass: number; cx: number; cy: number } {
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < img.length; i++) {
    const w = (img[i]! + 1) / 2;
    mass += w;
    cx += w * (i % 32);
    cy += w * Math.floor(i / 32);
  }
  return { mass, cx: cx / mass, cy: cy / mass };
}

describe("augmentDigits", () => {
  it("is the identity with zero ranges", () => {
    const img = square(10, 12);
    const out = augmentDigits(img, 1, new Generator(0), { rotate: 0, scale: 0, shift: 0 });
    assert.deepEqual(Array.from(out), Array.from(img));
  });

  it("shifts keep the ink and move its centroid by at most the shift range", () => {
    const imgs = new Float32Array(4 * 1024);
    for (let n = 0; n < 4; n++) imgs.set(square(13, 13), n * 1024);
    const out = augmentDigits(imgs, 4, new Generator(1), { rotate: 0, scale: 0, shift: 3 });
    const before = ink(square(13, 13));
    let moved = 0;
    for (let n = 0; n < 4; n++) {
      const after = ink(out.subarray(n * 1024, (n + 1) * 1024));
      assert.ok(Math.abs(after.mass - before.mass) < 1e-3, `ink ${after.mass} vs ${before.mass}`);
      const [dx, dy] = [after.cx - before.cx, after.cy - before.cy];
      assert.ok(Math.abs(dx) <= 3 + 1e-6 && Math.abs(dy) <= 3 + 1e-6, `moved (${dx}, ${dy})`);
      moved += Math.abs(dx) + Math.abs(dy);
    }
    assert.ok(moved > 0.5, "the images did move");
  });

  it("fills uncovered pixels with background, stays in [-1, 1] and repeats for a seed", () => {
    const imgs = randomTensor([3, 1, 32, 32], 4).toFloat32Array();
    const a = augmentDigits(imgs, 3, new Generator(9), { rotate: 30, scale: 0.3, shift: 4 });
    const b = augmentDigits(imgs, 3, new Generator(9), { rotate: 30, scale: 0.3, shift: 4 });
    assert.deepEqual(Array.from(a), Array.from(b));
    assert.ok(a.every((v) => v >= -1 - 1e-6 && v <= 1 + 1e-6));
    const blank = augmentDigits(new Float32Array(1024).fill(-1), 1, new Generator(2), {
      shift: 5,
      rotate: 45,
    });
    assert.ok(blank.every((v) => Math.abs(v + 1) < 1e-6));
    assert.throws(
      () => augmentDigits(new Float32Array(1000), 1, new Generator(0)),
      /not 1 square images of 1 channel/,
    );
  });
});

describe("classifyDigits", () => {
  it("matches the model's own forward pass, whatever the batch size", () => {
    const config = DigitClassifierConfig.from({
      block_out_channels: [4, 8],
      norm_num_groups: 2,
      feature_dim: 6,
    });
    const model = new DigitClassifier(config, { generator: new Generator(0) }).eval();
    const x = randomTensor([5, 1, 32, 32], 3);
    const out = classifyDigits(model, x.toFloat32Array(), 5, 2);
    const logits = noGrad(() => model.call(x)).toFloat32Array();
    const features = noGrad(() => model.features(x)).toFloat32Array();
    assert.equal(out.features.length, 30);
    for (let i = 0; i < 50; i++) assert.ok(Math.abs(out.logits[i]! - logits[i]!) < 1e-5);
    for (let i = 0; i < 30; i++) assert.ok(Math.abs(out.features[i]! - features[i]!) < 1e-5);
    assert.deepEqual(Array.from(out.predicted), Array.from(argmaxRows(logits, 10)));
    assert.throws(() => classifyDigits(model, new Float32Array(10), 1), /expected 1 images of 1x32x32/);
  });
});

describe("trainDigitClassifier", () => {
  it("learns 300 digits well enough to read 200 unseen ones (>= 85%; 91% at seed 0) in 80 steps", async () => {
    const { train, heldOut } = loadMnist();
    const events: number[] = [];
    const result = await trainDigitClassifier({
      train: subsetPerClass(train, 30),
      heldOut: subsetPerClass(heldOut, 20),
      steps: 80,
      batchSize: 16,
      lr: 3e-3,
      augment: false,
      config: { block_out_channels: [8, 16], norm_num_groups: 4, feature_dim: 32 },
      onProgress: (e) => events.push(e.step),
    });
    assert.equal(events.length, 80);
    assert.equal(result.model.training, false);
    assert.ok(result.heldOutAccuracy! >= 0.85, `held-out accuracy ${result.heldOutAccuracy}`);
    assert.ok(result.finalLoss < 1, `final loss ${result.finalLoss}`);
  });

  it("rejects bad step counts and stops when aborted", async () => {
    const train = subsetPerClass(loadMnist().train, 1);
    await assert.rejects(trainDigitClassifier({ train, steps: 0 }), /steps must be a positive integer/);
    const controller = new AbortController();
    controller.abort(new Error("halt"));
    await assert.rejects(trainDigitClassifier({ train, steps: 5, signal: controller.signal }), /halt/);
  });
});

describe("the shipped classifier (models/mnist-classifier)", () => {
  it("reads >= 99% of the 1,000 held-out digits", async () => {
    const model = await DigitClassifier.fromPretrained(shipped);
    const { accuracy, perClass } = classifierAccuracy(model, loadMnist().heldOut);
    assert.ok(accuracy >= 0.99, `held-out accuracy ${accuracy}`);
    assert.ok(
      perClass.every((a) => a >= 0.95),
      `per class ${perClass.join(", ")}`,
    );
    // labels in, logits out: a digit is its own class
    const logits = noGrad(() =>
      model.call(tensor(loadMnist().heldOut.images.slice(0, 1024), [1, 1, 32, 32])),
    );
    assert.equal(argmaxRows(logits.toFloat32Array(), 10)[0], loadMnist().heldOut.labels[0]);
  });
});
