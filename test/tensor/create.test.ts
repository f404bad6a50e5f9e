// tensor() and friends refuse what would otherwise become NaN or a wrong shape: strings, objects, undefined, ragged
// nested arrays; and the inputs validated next to them (gelu's approximate, a sampler name, a large seed).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as F from "../../src/ops/index.js";
import { samplerFromName } from "../../src/schedulers/index.js";
import { randn, tensor } from "../../src/tensor/create.js";
import { ArgumentError } from "../../src/tensor/errors.js";
import { Generator } from "../../src/tensor/generator.js";

describe("tensor() input checks", () => {
  it("refuses strings, objects, null and undefined with what it found", () => {
    assert.throws(() => tensor(["a"] as never), /found "a" at flat index 0/);
    assert.throws(() => tensor({} as never), /found an object/);
    assert.throws(() => tensor(undefined as never), /got undefined/);
    assert.throws(() => tensor([1, null] as never), /found null at flat index 1/);
  });

  it("refuses ragged nested arrays", () => {
    assert.throws(() => tensor([1, [2]] as never), ArgumentError);
    assert.throws(() => tensor([[1, 2], [3]] as never), /expected 2 elements at depth 1, found 1/);
  });

  it("still takes numbers, booleans, bigints and typed arrays", () => {
    assert.deepEqual(
      tensor([
        [1, 2],
        [3, 4],
      ]).shape,
      [2, 2],
    );
    assert.deepEqual(Array.from(tensor([true, false]).toFloat32Array()), [1, 0]);
    assert.deepEqual(tensor(3).shape, []);
    assert.equal(tensor(Float32Array.of(1, 2)).size, 2);
  });
});

describe("inputs validated beside tensor()", () => {
  it("gelu refuses an unknown approximation", () => {
    assert.throws(
      () => F.gelu(randn([2]), "bogus" as never),
      /approximate must be "none" or "tanh", got "bogus"/,
    );
  });

  it("samplerFromName(undefined) names what it expected", () => {
    assert.throws(
      () => samplerFromName(undefined as never),
      /expected a sampler name \(a string\), got undefined/,
    );
  });

  it("manualSeed takes seeds past 2^53 (as PyTorch does) and equals the bigint seed", () => {
    const a = new Generator().manualSeed(2 ** 53);
    const b = new Generator().manualSeed(2n ** 53n);
    assert.deepEqual(
      Array.from(randn([4], { generator: a }).toFloat32Array()),
      Array.from(randn([4], { generator: b }).toFloat32Array()),
    );
    assert.throws(() => new Generator().manualSeed(1.5), /expected an integer seed/);
  });
});
