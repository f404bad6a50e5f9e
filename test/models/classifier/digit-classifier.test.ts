import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CheckpointError, ModelConfigError } from "../../../src/models/blocks/errors.js";
import { DigitClassifier, DigitClassifierConfig } from "../../../src/models/classifier/digit-classifier.js";
import { cross_entropy } from "../../../src/ops/index.js";
import { tensor } from "../../../src/tensor/create.js";
import { Generator } from "../../../src/tensor/generator.js";
import { randomTensor } from "../../helpers.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const small = DigitClassifierConfig.from({ block_out_channels: [4, 8], norm_num_groups: 2, feature_dim: 6 });

describe("DigitClassifier", () => {
  it("maps [N, 1, 32, 32] to features [N, feature_dim] and logits [N, 10] (default config)", () => {
    const model = new DigitClassifier(DigitClassifierConfig.from(), { generator: new Generator(0) }).eval();
    const x = randomTensor([3, 1, 32, 32], 1);
    assert.deepEqual(model.features(x).shape, [3, model.config.feature_dim]);
    assert.deepEqual(model.call(x).shape, [3, 10]);
    // the parameter names are the state-dict names
    const names = [...model.stateDict().keys()];
    assert.ok(names.includes("blocks.0.conv1.weight"));
    assert.ok(names.includes("blocks.2.norm2.bias"));
    assert.deepEqual(names.slice(-4), ["feature.weight", "feature.bias", "head.weight", "head.bias"]);
    // feature layer: 64 channels x 4 x 4 after three halvings
    assert.deepEqual(model.feature.weight.shape, [model.config.feature_dim, 64 * 4 * 4]);
  });

  it("forward is the head applied to the features", () => {
    const model = new DigitClassifier(small, { generator: new Generator(1) }).eval();
    const x = randomTensor([2, 1, 32, 32], 2);
    assert.deepEqual(
      Array.from(model.call(x).toFloat32Array()),
      Array.from(model.classify(model.features(x)).toFloat32Array()),
    );
  });

  it("rejects inputs of the wrong shape and bad configs", () => {
    const model = new DigitClassifier(small);
    assert.throws(
      () => model.call(randomTensor([2, 1, 28, 28], 1)),
      /expected images \[N, 1, 32, 32\], got \[2, 1, 28, 28\]/,
    );
    assert.throws(() => model.call(randomTensor([2, 3, 32, 32], 1)), /expected images/);
    assert.throws(
      () => DigitClassifierConfig.from({ block_out_channels: [6], norm_num_groups: 4 }),
      (e: unknown) =>
        e instanceof ModelConfigError && /block_out_channels\[0\] = 6 is not divisible/.test(e.message),
    );
    assert.throws(
      () => DigitClassifierConfig.from({ sample_size: 20, block_out_channels: [8, 8, 8] }),
      /divisible by 2\^3/,
    );
    assert.throws(
      () => DigitClassifierConfig.from({ num_classes: 1 }),
      /num_classes must be an integer >= 2/,
    );
  });

  it("gets a gradient for every parameter", () => {
    const model = new DigitClassifier(small, { generator: new Generator(3) });
    const loss = cross_entropy(
      model.call(randomTensor([4, 1, 32, 32], 4)),
      tensor(new Int32Array([0, 3, 7, 9]), [4]),
    );
    loss.backward();
    for (const [name, p] of model.namedParameters()) {
      assert.ok(p.grad, `${name} has a gradient`);
      assert.ok(
        p.grad.toFloat32Array().some((g) => g !== 0),
        `${name} gradient is not all zero`,
      );
    }
  });

  it("saves config.json + model.safetensors and loads them back with the same outputs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "diffuse-classifier-"));
    dirs.push(dir);
    const model = new DigitClassifier(small, { generator: new Generator(5) }).eval();
    await model.save(dir, { note: "test" });
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    assert.equal(config._class_name, "DigitClassifier");
    assert.deepEqual(config.block_out_channels, [4, 8]);
    const loaded = await DigitClassifier.fromPretrained(dir);
    assert.equal(loaded.training, false);
    const x = randomTensor([2, 1, 32, 32], 6);
    assert.deepEqual(Array.from(loaded.call(x).toFloat32Array()), Array.from(model.call(x).toFloat32Array()));
  });

  it("fromPretrained names the missing file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "diffuse-classifier-"));
    dirs.push(dir);
    await assert.rejects(
      DigitClassifier.fromPretrained(join(dir, "nope")),
      (e: unknown) => e instanceof CheckpointError && /config\.json not found/.test(e.message),
    );
  });
});
