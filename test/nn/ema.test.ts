import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nn, optim, type Tensor, tensor } from "../../src/index.js";
import { assertAllClose } from "../helpers.js";

const values = (t: Tensor) => Array.from(t.toFloat32Array());

/** A Linear(2, 1) with weight [w0, w1] and a frozen bias. */
function model(w: [number, number], b: number): nn.Linear {
  const m = new nn.Linear(2, 1, { skipInit: true });
  m.loadStateDict({ weight: tensor([w], [1, 2]), bias: tensor([b]) });
  m.bias!.requiresGrad_(false);
  return m;
}

function setWeights(m: nn.Linear, w: [number, number], b: number): void {
  (m.weight.dataSync() as Float32Array).set(w);
  (m.bias!.dataSync() as Float32Array).set([b]);
}

describe("EMA", () => {
  it("follows diffusers' EMAModel: decay 0 at step 1, then (1 + t)/(10 + t) capped at decay", () => {
    const m = model([1, 2], 0);
    const ema = new optim.EMA(m, { decay: 0.2 });
    // step 1: t' = 0, decay 0 -> the average becomes the weights
    setWeights(m, [3, 4], 0);
    ema.update();
    assert.equal(ema.curDecay, 0);
    // step 2: t' = 1, decay 2/11: s = 3 - (9/11)(3 - 5) = 51/11
    setWeights(m, [5, 6], 0);
    ema.update();
    assertAllClose([ema.curDecay], [2 / 11], 1e-12, 0);
    const avg = () => values(ema.averagedStateDict().get("weight")!);
    assertAllClose(avg(), [51 / 11, 62 / 11], 1e-6, 1e-6);
    // step 3: t' = 2, (1 + 2)/(10 + 2) = 0.25 is capped at 0.2: s = 51/11 - 0.8(51/11 - 5) = 54.2/11;
    // the frozen bias (requiresGrad false) is copied, not averaged
    setWeights(m, [5, 6], 7);
    ema.update();
    assert.equal(ema.curDecay, 0.2);
    assertAllClose(avg(), [54.2 / 11, 65.2 / 11], 1e-6, 1e-6);
    assert.deepEqual(values(ema.averagedStateDict().get("bias")!), [7]);
    assert.deepEqual(ema.averagedStateDict().get("weight")!.shape, [1, 2]);
    assert.equal(ema.optimizationStep, 3);
  });

  it("warm-up formula 1 - (1 + t/invGamma)^-power, updateAfterStep and minDecay", () => {
    const m = model([0, 0], 0);
    const warm = new optim.EMA(m, { warmup: true, power: 3 / 4 });
    assert.equal(warm.getDecay(1), 0);
    assertAllClose([warm.getDecay(2)], [1 - 2 ** -0.75], 1e-12, 0);
    assertAllClose([warm.getDecay(11)], [1 - 11 ** -0.75], 1e-12, 0);
    assertAllClose(
      [new optim.EMA(m, { warmup: true, invGamma: 2 }).getDecay(5)],
      [1 - 3 ** (-2 / 3)],
      1e-12,
      0,
    );
    assert.equal(warm.getDecay(1e12), 0.9999, "capped at decay");
    const late = new optim.EMA(m, { updateAfterStep: 5 });
    assert.equal(late.getDecay(6), 0);
    assertAllClose([late.getDecay(7)], [2 / 11], 1e-12, 0);
    assert.equal(new optim.EMA(m, { minDecay: 0.5 }).getDecay(2), 0.5);
  });

  it("copyTo, store/restore and state dict round trip", () => {
    const m = model([1, 2], 0);
    const ema = new optim.EMA(m, { decay: 0.5 });
    setWeights(m, [3, 4], 0);
    ema.update();
    setWeights(m, [5, 6], 0);
    ema.update(); // decay 2/11
    const averaged = values(ema.averagedStateDict().get("weight")!);

    ema.store();
    ema.copyTo();
    assert.deepEqual(values(m.weight), averaged);
    ema.restore();
    assert.deepEqual(values(m.weight), [5, 6]);
    assert.throws(() => ema.restore(), /store/);

    const other = new optim.EMA(model([9, 9], 9), { decay: 0.5 });
    other.loadStateDict(ema.stateDict());
    assert.equal(other.optimizationStep, 2);
    assert.deepEqual(values(other.averagedStateDict().get("weight")!), averaged);
    // both continue identically
    ema.update(m);
    other.update(m);
    assert.deepEqual(
      values(other.averagedStateDict().get("weight")!),
      values(ema.averagedStateDict().get("weight")!),
    );
    assert.throws(() => ema.update(new nn.Linear(3, 1)), /has 3 elements/);
  });
});
