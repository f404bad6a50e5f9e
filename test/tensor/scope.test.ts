// Memory scopes: tidy() frees what a step made on a device with its own memory, keeps what it returns or keep()s,
// and leaves CPU tensors to the garbage collector.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memoryReport } from "../../src/backend/index.js";
import { Linear } from "../../src/nn/index.js";
import { AdamW } from "../../src/nn/optim/index.js";
import * as F from "../../src/ops/index.js";
import { randn, zeros } from "../../src/tensor/create.js";
import { Generator } from "../../src/tensor/generator.js";
import { keep, tidy } from "../../src/tensor/scope.js";

const strictBytes = (): number => memoryReport().find((r) => r.device === "strict")!.bytesInUse!;

describe("tidy", () => {
  it("disposes the tensors a scope made on the device, except its result and what was kept", () => {
    const x = F.toDevice(zeros([8]), "strict");
    let inner: ReturnType<typeof F.add> | null = null;
    let kept: ReturnType<typeof F.add> | null = null;
    const out = tidy(() => {
      inner = F.add(x, 1);
      kept = keep(F.mul(x, 3));
      return { y: F.mul(inner, 2) };
    });
    assert.equal(inner!.isDisposed, true);
    assert.equal(kept!.isDisposed, false);
    assert.equal(out.y.isDisposed, false);
    assert.equal(x.isDisposed, false);
  });

  it("moves a nested scope's result to the enclosing scope", () => {
    const x = F.toDevice(zeros([4]), "strict");
    let middle: ReturnType<typeof F.add> | null = null;
    const out = tidy(() => {
      middle = tidy(() => F.add(x, 1));
      return F.mul(middle, 2);
    });
    assert.equal(middle!.isDisposed, true);
    assert.equal(out.isDisposed, false);
  });

  it("disposes everything when the function throws, and refuses async functions", async () => {
    const x = F.toDevice(zeros([4]), "strict");
    let made: ReturnType<typeof F.add> | null = null;
    assert.throws(() =>
      tidy(() => {
        made = F.add(x, 1);
        throw new Error("boom");
      }),
    );
    assert.equal(made!.isDisposed, true);
    assert.throws(() => tidy(async () => 1), /synchronous/);
  });

  it("leaves CPU tensors to the garbage collector", () => {
    let cpu: ReturnType<typeof F.add> | null = null;
    tidy(() => {
      cpu = F.add(zeros([4]), 1);
    });
    assert.equal(cpu!.isDisposed, false);
    assert.deepEqual(Array.from(cpu!.toFloat32Array()), [1, 1, 1, 1]);
  });

  it("keeps the bytes in use flat over 100 training steps (forward, backward, AdamW) on the device", () => {
    const g = new Generator(0);
    const layer = new Linear(16, 16, { generator: g }).toDevice("strict");
    const opt = new AdamW(layer.parameters(), { lr: 1e-3 });
    const x = F.toDevice(randn([4, 16], { generator: g }), "strict");
    const step = (): void =>
      tidy(() => {
        opt.zeroGrad();
        F.mean(F.square(layer.call(x))).backward();
        opt.step();
        opt.zeroGrad();
      });
    step(); // the optimizer's state is made once
    const before = strictBytes();
    for (let i = 0; i < 100; i++) step();
    assert.equal(strictBytes(), before);
  });
});
