import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, DTypeError, Generator, nn, optim, type Tensor, tensor } from "../../src/index.js";
import { assertAllClose } from "../helpers.js";

const { AdamW, SGD, clipGradNorm, warmupCosine, constantWithWarmup } = optim;

const values = (t: Tensor) => Array.from(t.toFloat32Array());

/** A trainable leaf with the given values. */
const param = (v: number[]) => new nn.Parameter(tensor(v));

/** Runs one optimizer step per gradient list. */
function run(opt: optim.Optimizer<object>, p: Tensor, grads: number[][]): void {
  for (const g of grads) {
    p.grad = tensor(g);
    opt.step();
  }
}

describe("AdamW", () => {
  it("matches torch.optim.AdamW over two steps (hand-computed)", () => {
    // lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01; p0 = [1, -2], g1 = [0.5, -1], g2 = [0.1, 0.3].
    // step 1: p·(1 - 0.001) = [0.999, -1.998]; m = 0.1·g1 = [0.05, -0.1]; v = 0.001·g1² = [0.00025, 0.001];
    //   lr/(1-0.9) = 1 and √v/√(1-0.999) = |g1|, so p -= m/(|g1| + eps) ≈ ±0.1 -> [0.899, -1.898]
    // step 2: p·0.999 = [0.898101, -1.896102]; m = 0.9·m + 0.1·g2 = [0.055, -0.06];
    //   v = 0.999·v + 0.001·g2² = [0.00025975, 0.001089]; step size 0.1/(1-0.81) = 0.1/0.19;
    //   p -= (0.1/0.19)·m / (√v/√0.001999 + 1e-8) -> [0.8177969063826517, -1.8533171424282264]
    const p = param([1, -2]);
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.01 });
    p.grad = tensor([0.5, -1]);
    opt.step();
    assertAllClose(values(p), [0.899000002, -1.898000001], 1e-7, 1e-7, "after step 1");
    p.grad = tensor([0.1, 0.3]);
    opt.step();
    assertAllClose(values(p), [0.8177969063826517, -1.8533171424282264], 1e-7, 1e-6, "after step 2");
    const sd = opt.stateDict();
    assert.equal(sd.state["0"]!.step, 2);
    assertAllClose(values(sd.state["0"]!.expAvg as Tensor), [0.055, -0.06], 1e-8, 1e-6);
    assertAllClose(values(sd.state["0"]!.expAvgSq as Tensor), [0.00025975, 0.001089], 1e-10, 1e-6);
  });

  it("AMSGrad divides by the running maximum of v", () => {
    // g = 1 then 0.01: v1 = 0.001, v2 = 0.000999 + 1e-7 = 0.0009991 < v1, so step 2 uses 0.001.
    // step 1: p = 1·0.999 - 0.1·1/(1 + 1e-8) = 0.899000001
    // step 2: p = 0.899·0.999 - (0.1/0.19)·(0.09 + 0.001) / (√0.001/√0.001999 + 1e-8)
    const p = param([1]);
    run(new AdamW([p], { lr: 0.1, weightDecay: 0.01, amsgrad: true }), p, [[1], [0.01]]);
    const want =
      0.899000001 * 0.999 - ((0.1 / 0.19) * 0.091) / (Math.sqrt(0.001) / Math.sqrt(0.001999) + 1e-8);
    assertAllClose(values(p), [want], 1e-7, 1e-6);
  });

  it("skips parameters without gradients and refuses half-precision ones", () => {
    const a = param([1]);
    const b = param([2]);
    const opt = new AdamW([a, b], { lr: 0.1 });
    a.grad = tensor([1]);
    opt.step();
    assert.deepEqual(values(b), [2]);
    assert.notDeepEqual(values(a), [1]);
    const h = new nn.Parameter(tensor([1]).half());
    h.grad = tensor([1]);
    assert.throws(() => new AdamW([h]).step(), DTypeError);
    assert.throws(() => new AdamW([]), ArgumentError);
    assert.throws(() => new AdamW([a], { betas: [1, 0.9] }), /betas/);
  });

  it("uses per-group options; setLr changes every group", () => {
    const a = param([1]);
    const b = param([1]);
    const opt = new AdamW([{ params: [a] }, { params: [b], lr: 0, weightDecay: 0 }], {
      lr: 0.1,
      weightDecay: 0,
    });
    run(opt, a, [[1]]);
    b.grad = tensor([1]);
    opt.step();
    assert.deepEqual(values(b), [1], "lr 0 group unchanged");
    opt.setLr(0.5);
    assert.deepEqual(
      opt.paramGroups.map((g) => g.lr),
      [0.5, 0.5],
    );
  });
});

describe("SGD", () => {
  it("momentum and weight decay as torch.optim.SGD (hand-computed)", () => {
    // lr 0.1, momentum 0.9, wd 0.1, g = 0.5 twice:
    // step 1: d = 0.5 + 0.1·1 = 0.6, b = 0.6, p = 1 - 0.06 = 0.94
    // step 2: d = 0.5 + 0.094 = 0.594, b = 0.9·0.6 + 0.594 = 1.134, p = 0.94 - 0.1134 = 0.8266
    const p = param([1]);
    run(new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 }), p, [[0.5], [0.5]]);
    assertAllClose(values(p), [0.8266], 1e-7, 1e-6);
    // Nesterov: step 1 p = 1 - 0.1·(0.6 + 0.54) = 0.886; step 2 d = 0.5886, b = 0.54 + 0.5886 = 1.1286,
    // p = 0.886 - 0.1·(0.5886 + 0.9·1.1286) = 0.725566
    const q = param([1]);
    run(new SGD([q], { lr: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true }), q, [[0.5], [0.5]]);
    assertAllClose(values(q), [0.725566], 1e-7, 1e-6);
    const r = param([1, 2]);
    run(new SGD([r], { lr: 0.5 }), r, [[1, -2]]);
    assert.deepEqual(values(r), [0.5, 3]);
  });
});

describe("clipGradNorm", () => {
  it("scales all gradients by maxNorm / (norm + 1e-6) and returns the norm", () => {
    const a = param([0, 0]);
    const b = param([0]);
    a.grad = tensor([3, 4]);
    b.grad = tensor([12]);
    assert.equal(clipGradNorm([a, b], 100).item(), 13);
    assert.deepEqual(values(a.grad), [3, 4], "below maxNorm: unchanged");
    assert.equal(clipGradNorm([a, b], 6.5).item(), 13);
    const c = 6.5 / (13 + 1e-6);
    assertAllClose(values(a.grad), [3 * c, 4 * c], 0, 1e-7);
    assertAllClose(values(b.grad), [12 * c], 0, 1e-7);
  });

  it("supports the infinity norm and gradients shared between parameters", () => {
    const a = param([0, 0]);
    const b = param([0, 0]);
    const shared = tensor([-6, 2]);
    a.grad = shared;
    b.grad = shared;
    assert.equal(clipGradNorm([a, b], 3, { normType: Number.POSITIVE_INFINITY }).item(), 6);
    const c = 3 / (6 + 1e-6);
    assertAllClose(values(a.grad), [-6 * c, 2 * c], 0, 1e-7);
    assertAllClose(values(b.grad), [-6 * c, 2 * c], 0, 1e-7, "scaled once, not twice");
    assert.deepEqual(values(shared), [-6, 2], "the original gradient tensor is not modified");
    a.grad = tensor([Number.NaN, 1]);
    assert.throws(() => clipGradNorm([a], 1, { errorIfNonfinite: true }), /non-finite/);
  });
});

describe("learning-rate schedules", () => {
  it("warmupCosine warms up linearly, then follows a half cosine to minLr", () => {
    const o = { lr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1 };
    assert.equal(warmupCosine(0, o), 0);
    assert.equal(warmupCosine(5, o), 0.5);
    assert.equal(warmupCosine(10, o), 1);
    assertAllClose([warmupCosine(60, o)], [0.55], 1e-12, 0);
    assertAllClose([warmupCosine(35, o)], [0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 4))], 1e-12, 0);
    assertAllClose([warmupCosine(110, o)], [0.1], 1e-12, 0);
    assertAllClose([warmupCosine(500, o)], [0.1], 1e-12, 0);
    // without lr: a multiplier
    assert.equal(warmupCosine(5, { warmupSteps: 10, totalSteps: 20 }), 0.5);
  });

  it("constantWithWarmup", () => {
    assert.equal(constantWithWarmup(1, { lr: 2e-4, warmupSteps: 4 }), 5e-5);
    assert.equal(constantWithWarmup(4, { lr: 2e-4, warmupSteps: 4 }), 2e-4);
    assert.equal(constantWithWarmup(0, { warmupSteps: 0 }), 1);
    assert.throws(() => constantWithWarmup(-1, { warmupSteps: 2 }), /step/);
  });
});

describe("optimizer state dicts", () => {
  /** Full-batch regression steps on a fixed toy problem. */
  function trainSteps(model: nn.Linear, opt: optim.Optimizer<object>, steps: number): void {
    const x = tensor([
      [1, 2, 3],
      [-1, 0.5, 2],
      [0, -2, 1],
      [3, 1, -1],
    ]);
    const y = tensor([[1], [0], [-1], [2]]);
    for (let i = 0; i < steps; i++) {
      opt.zeroGrad();
      model.call(x).sub(y).square().mean().backward();
      opt.step();
    }
  }

  for (const kind of ["AdamW", "SGD"] as const) {
    it(`${kind}: save after 3 steps, restore into fresh objects, continue: identical to 6 uninterrupted steps`, () => {
      const make = (seed: number) => {
        const model = new nn.Linear(3, 1, { generator: new Generator().manualSeed(seed) });
        const opt =
          kind === "AdamW"
            ? new AdamW(model.parameters(), { lr: 0.05, amsgrad: true })
            : new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
        return { model, opt };
      };
      const ref = make(1);
      trainSteps(ref.model, ref.opt, 6);

      const first = make(1);
      trainSteps(first.model, first.opt, 3);
      const modelState = new Map([...first.model.stateDict()].map(([k, v]) => [k, v.clone()]));
      const optState = first.opt.stateDict();
      trainSteps(first.model, first.opt, 1); // later steps must not leak into the saved snapshot

      const resumed = make(2);
      resumed.opt.setLr(123);
      resumed.model.loadStateDict(modelState);
      resumed.opt.loadStateDict(optState);
      assert.equal(resumed.opt.paramGroups[0]!.lr, 0.05, "group options restored");
      trainSteps(resumed.model, resumed.opt, 3);
      for (const [name, p] of ref.model.namedParameters()) {
        assert.deepEqual(values(resumed.model.stateDict().get(name)!), values(p), name);
      }
    });
  }

  it("rejects a state dict of another parameter layout", () => {
    const a = new AdamW([param([1, 2])]);
    const b = new AdamW([param([1, 2, 3])]);
    const p = b.paramGroups[0]!.params[0]!;
    p.grad = tensor([1, 1, 1]);
    b.step();
    assert.throws(() => a.loadStateDict(b.stateDict()), /shape/);
    assert.throws(
      () => a.loadStateDict({ state: {}, paramGroups: [] }),
      /1 parameter groups|0 parameter groups/,
    );
  });
});
