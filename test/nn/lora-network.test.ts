// LoraNetwork: trainable LoRA factors on chosen layers of a frozen model — only the factors are parameters, a fresh
// network leaves the model's output unchanged, gradients reach the factors (finite differences) and never the
// frozen base weights, remove() gives back the base model, and bad layouts are refused.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { noGrad, type Tensor } from "../../src/index.js";
import { Conv2d } from "../../src/nn/conv.js";
import { Linear } from "../../src/nn/linear.js";
import { freezeParameters, LoraNetwork } from "../../src/nn/lora-network.js";
import { Module } from "../../src/nn/module.js";
import { GroupNorm } from "../../src/nn/norm.js";
import { copy_ } from "../../src/ops/index.js";
import { ArgumentError } from "../../src/tensor/errors.js";
import { Generator } from "../../src/tensor/generator.js";
import { gradcheck, randomTensor } from "../helpers.js";

/** conv (3x3) -> norm -> 1x1 conv -> linear over the channels. */
class Toy extends Module<[Tensor], Tensor> {
  conv = new Conv2d(3, 4, 3, { padding: 1, generator: new Generator(1) });
  norm = new GroupNorm(2, 4);
  proj = new Conv2d(4, 4, 1, { generator: new Generator(2) });
  head = new Linear(4, 5, { generator: new Generator(3) });

  override forward(x: Tensor): Tensor {
    const h = this.proj.call(this.norm.call(this.conv.call(x)));
    return this.head.call(h.permute([0, 2, 3, 1]));
  }
}

const PATHS = ["conv", "proj", "head"];

describe("LoraNetwork", () => {
  it("holds only the factors, shaped per layer, and starts as the base model", () => {
    const toy = new Toy();
    const x = randomTensor([2, 3, 5, 5], 4);
    const before = noGrad(() => toy.call(x)).toFloat32Array();
    const net = new LoraNetwork(toy, PATHS, { rank: 2, alpha: 4, generator: new Generator(0) });
    assert.deepEqual(
      net.namedParameters().map(([n, p]) => [n, p.shape]),
      [
        ["conv.down", [2, 3, 3, 3]],
        ["conv.up", [4, 2, 1, 1]],
        ["proj.down", [2, 4, 1, 1]],
        ["proj.up", [4, 2, 1, 1]],
        ["head.down", [2, 4]],
        ["head.up", [5, 2]],
      ],
    );
    // kaiming-uniform (a = √5) down: |A| <= 1 / sqrt(fan_in); up = 0
    const bound = 1 / Math.sqrt(27);
    assert.ok(net.layers[0]!.factors.down.toFloat32Array().every((v) => Math.abs(v) <= bound));
    assert.ok(net.layers[0]!.factors.down.toFloat32Array().some((v) => v !== 0));
    assert.ok(net.layers.every((l) => l.factors.up.toFloat32Array().every((v) => v === 0)));
    assert.deepEqual(noGrad(() => toy.call(x)).toFloat32Array(), before);
    assert.equal(
      net.weights().every((w) => w.alpha === 4),
      true,
    );
  });

  it("gradients reach every factor (finite differences), not the frozen base weights", () => {
    const toy = new Toy();
    assert.equal(freezeParameters(toy), 8);
    const net = new LoraNetwork(toy, PATHS, { rank: 2, alpha: 3, generator: new Generator(0) });
    net.parameters().forEach((p, i) => {
      copy_(p, randomTensor([...p.shape], 20 + i, -0.5, 0.5));
    });
    const x = randomTensor([1, 3, 4, 4], 5);
    const factors = net.parameters();
    gradcheck(() => toy.call(x), factors, { maxElements: 12 });
    for (const p of toy.parameters()) assert.equal(p.grad, null, "a frozen weight got a gradient");
  });

  it("setScale(0) and remove() give back the base model exactly", () => {
    const toy = new Toy();
    const x = randomTensor([1, 3, 4, 4], 6);
    const base = noGrad(() => toy.call(x)).toFloat32Array();
    const net = new LoraNetwork(toy, PATHS, { rank: 3 });
    for (const p of net.parameters()) copy_(p, randomTensor([...p.shape], 7));
    const adapted = noGrad(() => toy.call(x)).toFloat32Array();
    assert.notDeepEqual(adapted, base);
    net.setScale(0);
    assert.deepEqual(noGrad(() => toy.call(x)).toFloat32Array(), base);
    net.setScale(1);
    assert.deepEqual(noGrad(() => toy.call(x)).toFloat32Array(), adapted);
    assert.equal(net.attached, true);
    net.remove();
    net.remove();
    assert.equal(net.attached, false);
    assert.deepEqual(noGrad(() => toy.call(x)).toFloat32Array(), base);
    assert.equal(toy.conv.forwardIsHooked, false);
  });

  it("refuses a bad rank or alpha, unknown or unsupported layers, and duplicates (attaching nothing)", () => {
    const toy = new Toy();
    assert.throws(() => new LoraNetwork(toy, PATHS, { rank: 0 }), /rank must be a positive integer/);
    assert.throws(() => new LoraNetwork(toy, PATHS, { rank: 1.5 }), ArgumentError);
    assert.throws(() => new LoraNetwork(toy, PATHS, { rank: 2, alpha: 0 }), /alpha must be a positive/);
    assert.throws(() => new LoraNetwork(toy, [], { rank: 2 }), /no layers/);
    assert.throws(() => new LoraNetwork(toy, ["conv", "nope"], { rank: 2 }), /no module nope/);
    assert.throws(
      () => new LoraNetwork(toy, ["norm"], { rank: 2 }),
      /GroupNorm; LoRA adapts Linear and Conv2d/,
    );
    assert.throws(() => new LoraNetwork(toy, ["head", "head"], { rank: 2 }), /listed twice/);
    assert.equal(toy.conv.forwardIsHooked || toy.head.forwardIsHooked, false);
  });
});
