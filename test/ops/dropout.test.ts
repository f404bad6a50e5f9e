import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, DTypeError, F, Generator, tensor } from "../../src/index.js";
import { gradcheck, randomTensor, testRng } from "../helpers.js";

/** A seeded uniform source (the interface dropout reads: uniform(n)). */
function uniformSource(seed: number) {
  const rng = testRng(seed);
  return { uniform: (n: number) => Float32Array.from({ length: n }, rng) };
}

describe("dropout", () => {
  it("keeps element i exactly when draw i < 1 - p, scaling survivors by 1 / (1 - p)", () => {
    const x = randomTensor([6, 7], 1, 0.5, 2);
    const p = 0.3;
    const draws = uniformSource(9).uniform(42);
    const y = F.dropout(x, p, true, uniformSource(9)).toFloat32Array();
    const xs = x.toFloat32Array();
    const scale = Math.fround(1 / 0.7);
    for (let i = 0; i < 42; i++) {
      assert.equal(y[i], draws[i]! < 0.7 ? Math.fround(xs[i]! * scale) : 0, `element ${i}`);
    }
    // non-contiguous input: the mask follows the logical (row-major) order
    const yt = F.dropout(x.t(), p, true, uniformSource(9)).toFloat32Array();
    const xt = x.t().contiguous().toFloat32Array();
    for (let i = 0; i < 42; i++) assert.equal(yt[i], draws[i]! < 0.7 ? Math.fround(xt[i]! * scale) : 0);
  });

  it("drops about p of a large tensor and keeps the mean", () => {
    const x = tensor(new Float32Array(20000).fill(1));
    const y = F.dropout(x, 0.25, true, uniformSource(3)).toFloat32Array();
    const kept = y.filter((v) => v !== 0).length / y.length;
    assert.ok(Math.abs(kept - 0.75) < 0.02, `kept fraction ${kept}`);
    const mean = y.reduce((s, v) => s + v, 0) / y.length;
    assert.ok(Math.abs(mean - 1) < 0.03, `mean ${mean}`);
  });

  it("p = 0 or eval mode returns the input; p = 1 gives zeros", () => {
    const x = randomTensor([3, 4], 2);
    assert.equal(F.dropout(x, 0), x);
    assert.equal(F.dropout(x, 0.5, false), x);
    const w = randomTensor([3, 4], 3).requiresGrad_();
    const z = F.dropout(w, 1);
    assert.ok(z.toFloat32Array().every((v) => v === 0));
    z.sum().backward();
    assert.ok(w.grad!.toFloat32Array().every((v) => v === 0));
  });

  it("is deterministic for a seeded Generator", () => {
    const x = randomTensor([5, 5], 4);
    const a = F.dropout(x, 0.5, true, new Generator().manualSeed(123)).toFloat32Array();
    const b = F.dropout(x, 0.5, true, new Generator().manualSeed(123)).toFloat32Array();
    assert.deepEqual(a, b);
    const big = F.dropout(tensor(new Float32Array(20000).fill(1)), 0.5, true, new Generator().manualSeed(0));
    const kept = big.toFloat32Array().filter((v) => v !== 0).length / 20000;
    assert.ok(Math.abs(kept - 0.5) < 0.02, `kept fraction ${kept}`);
  });

  it("gradient uses the same mask", () => {
    const x = randomTensor([4, 9], 5).requiresGrad_();
    const y = F.dropout(x, 0.4, true, uniformSource(11));
    y.sum().backward();
    const out = y.toFloat32Array();
    const g = x.grad!.toFloat32Array();
    const scale = Math.fround(1 / 0.6);
    for (let i = 0; i < out.length; i++) assert.equal(g[i], out[i] === 0 ? 0 : scale);
    gradcheck((t) => F.dropout(t, 0.4, true, uniformSource(12)), [randomTensor([9, 5], 6).t()]);
  });

  it("clear errors", () => {
    const x = randomTensor([2], 7);
    assert.throws(() => F.dropout(x, 1.5), /dropout: probability p must be in \[0, 1\], got 1.5/);
    assert.throws(() => F.dropout(x, -0.1), ArgumentError);
    assert.throws(() => F.dropout(x, Number.NaN), ArgumentError);
    assert.throws(() => F.dropout(tensor([1, 2], undefined, { dtype: "int64" }), 0.5), DTypeError);
  });
});
