// End-to-end training checks: layers + autograd + optimizers learn small seeded problems on the reference backend.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { F, Generator, nn, noGrad, optim, type Tensor, tensor } from "../../src/index.js";
import { testRng } from "../helpers.js";

describe("training", () => {
  it("an MLP fits sin(1.5x) on [-2, 2] to MSE < 1e-3 in 300 AdamW steps", () => {
    const g = new Generator().manualSeed(0);
    const mlp = new nn.Sequential(
      new nn.Linear(1, 32, { generator: g }),
      new nn.SiLU(),
      new nn.Linear(32, 32, { generator: g }),
      new nn.SiLU(),
      new nn.Linear(32, 1, { generator: g }),
    );
    const n = 64;
    const xs = Array.from({ length: n }, (_, i) => -2 + (4 * i) / (n - 1));
    const x = tensor(xs, [n, 1]);
    const y = tensor(
      xs.map((v) => Math.sin(1.5 * v)),
      [n, 1],
    );
    const steps = 300;
    const opt = new optim.AdamW(mlp.parameters(), { lr: 1e-2, weightDecay: 0 });
    const initial = noGrad(() => F.mse_loss(mlp.call(x), y).item());
    for (let s = 0; s < steps; s++) {
      opt.setLr(optim.warmupCosine(s, { lr: 1e-2, warmupSteps: 10, totalSteps: steps, minLr: 1e-3 }));
      opt.zeroGrad();
      F.mse_loss(mlp.call(x), y).backward();
      opt.step();
    }
    const final = noGrad(() => F.mse_loss(mlp.call(x), y).item());
    assert.ok(initial > 0.1, `initial loss ${initial}`);
    assert.ok(final < 1e-3, `final MSE ${final} (initial ${initial})`);
  });

  it("a CNN (Conv2d + GroupNorm + SiLU + Linear) tells horizontal from vertical bars: held-out accuracy 100%", () => {
    const g = new Generator().manualSeed(0);
    class BarNet extends nn.Module<[Tensor], Tensor> {
      conv1 = new nn.Conv2d(1, 8, 3, { padding: 1, generator: g });
      norm1 = new nn.GroupNorm(4, 8);
      conv2 = new nn.Conv2d(8, 16, 3, { stride: 2, padding: 1, generator: g });
      norm2 = new nn.GroupNorm(4, 16);
      act = new nn.SiLU();
      head = new nn.Linear(16, 2, { generator: g });

      override forward(x: Tensor): Tensor {
        let h = this.act.call(this.norm1.call(this.conv1.call(x)));
        h = this.act.call(this.norm2.call(this.conv2.call(h)));
        return this.head.call(h.mean([2, 3]));
      }
    }
    /** n noisy 8x8 images: even samples a horizontal bar (class 0), odd ones a vertical bar, at random rows/cols. */
    function bars(n: number, seed: number): { x: Tensor; y: Tensor; labels: number[] } {
      const rng = testRng(seed);
      const S = 8;
      const img = new Float32Array(n * S * S);
      const labels: number[] = [];
      for (let k = 0; k < n; k++) {
        const c = k % 2;
        labels.push(c);
        const pos = Math.floor(rng() * S);
        for (let i = 0; i < S; i++) {
          for (let j = 0; j < S; j++) {
            const on = c === 0 ? i === pos : j === pos;
            img[k * S * S + i * S + j] = (on ? 1 : 0) + 0.3 * (2 * rng() - 1);
          }
        }
      }
      return { x: tensor(img, [n, 1, S, S]), y: tensor(labels, [n], { dtype: "int64" }), labels };
    }
    const train = bars(64, 1);
    const test = bars(64, 2);
    const net = new BarNet();
    assert.equal(net.numParameters(), 8 * 9 + 8 + 16 + 16 * 8 * 9 + 16 + 32 + 16 * 2 + 2);
    const opt = new optim.AdamW(net.parameters(), { lr: 2e-2, weightDecay: 0 });
    for (let s = 0; s < 40; s++) {
      opt.zeroGrad();
      F.cross_entropy(net.call(train.x), train.y).backward();
      optim.clipGradNorm(net.parameters(), 1);
      opt.step();
    }
    net.eval();
    const { loss, correct } = noGrad(() => {
      const logits = net.call(test.x);
      const pred = logits.argmax(1).toFloat32Array();
      return {
        loss: F.cross_entropy(logits, test.y).item(),
        correct: test.labels.filter((c, i) => pred[i] === c).length,
      };
    });
    assert.equal(correct, 64, `held-out accuracy ${correct}/64`);
    assert.ok(loss < 0.01, `held-out cross entropy ${loss}`);
  });
});
