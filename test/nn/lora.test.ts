// LoRA adapters on Linear and Conv2d: on-the-fly and merged updates against hand-built weights, several adapters,
// scales, exact removal, half-precision merging, shape errors and gradients of the factors.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { F, noGrad, type Tensor, tensor } from "../../src/index.js";
import { Conv2d } from "../../src/nn/conv.js";
import { Linear } from "../../src/nn/linear.js";
import { addLoraAdapter, loraAdaptersOf, loraShapeProblem, mergedWeight } from "../../src/nn/lora.js";
import { LayerNorm } from "../../src/nn/norm.js";
import { Parameter } from "../../src/nn/parameter.js";
import { ArgumentError } from "../../src/tensor/errors.js";
import { Generator } from "../../src/tensor/generator.js";
import { assertAllClose, gradcheck, randomTensor } from "../helpers.js";

const values = (t: Tensor): number[] => Array.from(t.toFloat32Array());
const run = (m: { call(x: Tensor): Tensor }, x: Tensor): Float32Array =>
  noGrad(() => m.call(x)).toFloat32Array();

/** W + f · B A for row-major W [out, k], B [out, r], A [r, k], in float64. */
function handMerge(w: number[], b: number[], a: number[], out: number, r: number, f: number): number[] {
  const k = w.length / out;
  return w.map((v, i) => {
    const o = Math.floor(i / k);
    const c = i % k;
    let s = 0;
    for (let j = 0; j < r; j++) s += b[o * r + j]! * a[j * k + c]!;
    return v + f * s;
  });
}

function linearWith(weight: number[], bias: number[]): Linear {
  const lin = new Linear(3, 2, { skipInit: true });
  lin.weight = new Parameter(tensor(weight, [2, 3]));
  lin.bias = new Parameter(tensor(bias, [2]));
  return lin;
}

describe("LoRA on Linear", () => {
  // W [2, 3], A [1, 3], B [2, 1], alpha 2, rank 1, scale 0.5: factor 1
  const W = [1, 2, 3, -1, 0, 1];
  const A = [1, -1, 2];
  const B = [3, -2];
  const x = tensor([1, 2, 3, 0.5, -1, 2], [2, 3]);
  // by hand: x Wᵀ + b + (x Aᵀ) Bᵀ; x A = [5, 5.5]
  const want = [14 + 0.1 + 15, 2 - 0.2 - 10, 4.5 + 0.1 + 16.5, 1.5 - 0.2 - 11];

  it("adapter mode: y = base(x) + s (α/r) up(down(x)), weight untouched", () => {
    const lin = linearWith(W, [0.1, -0.2]);
    const w0 = lin.weight;
    const a = addLoraAdapter(
      lin,
      { down: tensor(A, [1, 3]), up: tensor(B, [2, 1]), alpha: 2 },
      { scale: 0.5 },
    );
    assert.equal(a.factor, 1);
    assert.equal(lin.forwardIsHooked, true, "fused callers must go through call()");
    assertAllClose(run(lin, x), want, 1e-6, 0, "adapter output");
    // a residual handed to the adapted forward is added after the update
    const r = tensor([1, 2, 3, 4], [2, 2]);
    const withSkip = noGrad(() => lin.call(x, r)).toFloat32Array();
    assertAllClose(
      withSkip,
      want.map((v, i) => v + i + 1),
      1e-6,
      0,
      "adapter output + residual",
    );
    assert.equal(lin.weight, w0);
    a.remove();
    assert.ok(!Object.hasOwn(lin, "forward"), "forward patch removed");
    assert.equal(lin.forwardIsHooked, false);
    assertAllClose(run(lin, x), [14.1, 1.8, 4.6, 1.3], 1e-6, 0, "base output");
  });

  it("merge mode: W' = W + s (α/r) B A; removal gives back the original tensor", () => {
    const lin = linearWith(W, [0.1, -0.2]);
    const w0 = lin.weight;
    const a = addLoraAdapter(
      lin,
      { down: tensor(A, [1, 3, 1, 1]), up: tensor(B, [2, 1, 1, 1]), alpha: 2 },
      { scale: 0.5, mode: "merge" },
    );
    assert.deepEqual(values(lin.weight), handMerge(W, B, A, 2, 1, 1));
    assertAllClose(run(lin, x), want, 1e-6, 0, "merged output");
    assert.deepEqual(values(w0), W, "original weight not modified");
    a.setScale(1);
    assert.deepEqual(values(lin.weight), handMerge(W, B, A, 2, 1, 2));
    a.remove();
    assert.equal(lin.weight, w0);
    assert.deepEqual(loraAdaptersOf(lin), []);
  });

  it("several adapters at once: merged and on-the-fly updates add up; removal in any order is exact", () => {
    const lin = new Linear(5, 4);
    const x2 = randomTensor([3, 5], 1);
    const base = run(lin, x2);
    const w0 = lin.weight;
    const f1 = { down: randomTensor([2, 5], 2), up: randomTensor([4, 2], 3), alpha: 1 };
    const f2 = { down: randomTensor([3, 5], 4), up: randomTensor([4, 3], 5) };
    const a1 = addLoraAdapter(lin, f1, { scale: 0.7, mode: "merge", name: "one" });
    const a2 = addLoraAdapter(lin, f2, { scale: -1.5, mode: "merge", name: "two" });
    const a3 = addLoraAdapter(lin, f2, { scale: 0.25, mode: "adapter", name: "three" });
    assert.deepEqual(
      loraAdaptersOf(lin).map((a) => a.name),
      ["one", "two", "three"],
    );
    const w = handMerge(values(w0), values(f1.up), values(f1.down), 4, 2, 0.7 * 0.5);
    const wAll = handMerge(w, values(f2.up), values(f2.down), 4, 3, -1.5 + 0.25);
    const want = noGrad(() => F.linear(x2, tensor(wAll, [4, 5]), lin.bias)).toFloat32Array();
    assertAllClose(run(lin, x2), want, 1e-5, 1e-5, "three adapters");
    a2.remove();
    a2.remove(); // twice is a no-op
    a3.setScale(-1.25);
    assertAllClose(run(lin, x2), want, 1e-5, 1e-5, "one merged + one adapter at the same total");
    a1.remove();
    a3.remove();
    assert.equal(lin.weight, w0);
    assert.deepEqual(run(lin, x2), base, "bit-exact after removing everything");
    assert.throws(() => a3.setScale(1), /after remove/);
  });

  it("merges half-precision weights in float32 and stores them as float16", () => {
    // seeded: the exact float16 comparison below depends on the values (an unseeded init made it flaky)
    const lin = new Linear(6, 3, { dtype: "float16", generator: new Generator().manualSeed(5) });
    const w0 = lin.weight;
    const f = { down: randomTensor([2, 6], 7), up: randomTensor([3, 2], 8), alpha: 4 };
    const a = addLoraAdapter(lin, f, { scale: 0.3, mode: "merge" });
    assert.equal(lin.weight.dtype, "float16");
    const want = tensor(handMerge(values(w0), values(f.up), values(f.down), 3, 2, 0.6), [3, 6]).to("float16");
    assert.deepEqual(values(lin.weight), values(want));
    a.remove();
    assert.equal(lin.weight, w0);
  });

  it("refuses factors that do not fit, touching nothing", () => {
    const lin = new Linear(4, 3);
    const w0 = lin.weight;
    assert.throws(
      () => addLoraAdapter(lin, { down: randomTensor([2, 5], 1), up: randomTensor([3, 2], 2) }),
      (e: Error) =>
        e instanceof ArgumentError &&
        /down \[2, 5\] does not fit Linear\(4 -> 3\): expected \[r, 4\]/.test(e.message),
    );
    assert.match(
      loraShapeProblem(lin, { down: randomTensor([2, 4], 1), up: randomTensor([3, 3], 2) })!,
      /up \[3, 3\] does not fit Linear\(4 -> 3\) with rank 2: expected \[3, 2\]/,
    );
    assert.match(
      loraShapeProblem(new LayerNorm(4), { down: randomTensor([2, 4], 1), up: randomTensor([4, 2], 2) })!,
      /is a LayerNorm, LoRA supports Linear and Conv2d only/,
    );
    assert.equal(lin.weight, w0);
    assert.ok(!Object.hasOwn(lin, "forward"));
    assert.deepEqual(loraAdaptersOf(lin), []);
  });

  it("refuses to remerge after the weight was replaced behind its back", () => {
    const lin = new Linear(4, 3);
    const a = addLoraAdapter(
      lin,
      { down: randomTensor([1, 4], 1), up: randomTensor([3, 1], 2) },
      { mode: "merge" },
    );
    lin.weight = new Parameter(randomTensor([3, 4], 3));
    assert.throws(() => a.setScale(0.5), /weight was replaced/);
  });

  it("adapter mode passes gradients to down and up", () => {
    const lin = new Linear(4, 3);
    const x2 = randomTensor([2, 4], 9);
    const down = randomTensor([2, 4], 10);
    const up = randomTensor([3, 2], 11);
    gradcheck(
      (d, u) => {
        const a = addLoraAdapter(lin, { down: d!, up: u!, alpha: 3 }, { scale: 0.8 });
        const y = lin.call(x2);
        a.remove();
        return y;
      },
      [down, up],
    );
  });
});

describe("LoRA on Conv2d", () => {
  it("kxk kohya conv LoRA (down [r, in, kh, kw], up [out, r, 1, 1]): adapter = merged = hand-merged conv", () => {
    const conv = new Conv2d(3, 4, 3, { stride: 2, padding: 1 });
    const x = randomTensor([2, 3, 7, 6], 1);
    const base = run(conv, x);
    const w0 = conv.weight;
    const f = { down: randomTensor([2, 3, 3, 3], 2), up: randomTensor([4, 2, 1, 1], 3), alpha: 1 };
    const wHand = tensor(handMerge(values(w0), values(f.up), values(f.down), 4, 2, 1.5 * 0.5), [4, 3, 3, 3]);
    const want = noGrad(() => F.conv2d(x, wHand, conv.bias, { stride: 2, padding: 1 })).toFloat32Array();

    const a = addLoraAdapter(conv, f, { scale: 1.5 });
    assertAllClose(run(conv, x), want, 1e-5, 1e-5, "adapter");
    // a residual handed to the adapted forward is kept
    const r = randomTensor([2, 4, 4, 3], 4);
    const withSkip = noGrad(() => conv.call(x, r)).toFloat32Array();
    assertAllClose(withSkip, noGrad(() => F.add(conv.call(x), r)).toFloat32Array(), 1e-6, 1e-6, "residual");
    a.remove();
    const m = addLoraAdapter(conv, f, { scale: 1.5, mode: "merge" });
    assertAllClose(values(conv.weight), values(wHand), 1e-6, 1e-6, "merged weight");
    assertAllClose(run(conv, x), want, 1e-5, 1e-5, "merged");
    m.remove();
    assert.equal(conv.weight, w0);
    assert.deepEqual(run(conv, x), base);
  });

  it("1x1 conv accepts 2-D factors; shape errors name the kernel", () => {
    const conv = new Conv2d(5, 2, 1);
    const x = randomTensor([1, 5, 3, 3], 4);
    const f = { down: randomTensor([3, 5], 5), up: randomTensor([2, 3], 6) };
    const wHand = tensor(handMerge(values(conv.weight), values(f.up), values(f.down), 2, 3, 1), [2, 5, 1, 1]);
    const want = noGrad(() => F.conv2d(x, wHand, conv.bias)).toFloat32Array();
    const a = addLoraAdapter(conv, f);
    assertAllClose(run(conv, x), want, 1e-5, 1e-5, "1x1 adapter");
    a.remove();
    assert.match(
      loraShapeProblem(new Conv2d(3, 4, 3), { down: randomTensor([2, 3], 1), up: randomTensor([4, 2], 2) })!,
      /does not fit Conv2d\(3 -> 4, 3x3\): expected \[r, 3, 3, 3\]/,
    );
  });

  it("mergedWeight leaves its input alone", () => {
    const conv = new Conv2d(2, 2, 1);
    const before = values(conv.weight);
    const a = addLoraAdapter(conv, { down: randomTensor([1, 2], 1), up: randomTensor([2, 1], 2) });
    mergedWeight(conv.weight, [a]);
    assert.deepEqual(values(conv.weight), before);
    a.remove();
  });
});
