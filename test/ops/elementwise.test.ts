import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nativeBackend } from "../../src/backend/native/index.js";
import { F, noGrad, tensor, withBackend } from "../../src/index.js";
import { assertAllClose, gradcheck, randomTensor } from "../helpers.js";

describe("elementwise ops", () => {
  it("broadcast add/sub/mul/div match hand-computed values", () => {
    const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const b = tensor([10, 20, 30]);
    assert.deepEqual(a.add(b).tolist(), [
      [11, 22, 33],
      [14, 25, 36],
    ]);
    assert.deepEqual(a.sub(1).tolist(), [
      [0, 1, 2],
      [3, 4, 5],
    ]);
    assert.deepEqual(b.mul(a).shape, [2, 3]);
    assertAllClose(a.div(b).toFloat32Array(), [0.1, 0.1, 0.1, 0.4, 0.25, 0.2], 1e-7, 1e-6);
  });

  it("comparisons and where", () => {
    const a = tensor([1, 5, 3]);
    const m = a.gt(2);
    assert.equal(m.dtype, "bool");
    assert.deepEqual(Array.from(m.dataSync() as Uint8Array), [0, 1, 1]);
    assert.deepEqual(F.where(m, a, 0).tolist(), [0, 5, 3]);
  });

  it("gelu matches PyTorch values (erf and tanh forms)", () => {
    const x = tensor([-3, -1, -0.5, 0, 0.5, 1, 3]);
    // torch.nn.functional.gelu(x) and gelu(x, approximate="tanh"), float32
    assertAllClose(
      F.gelu(x).toFloat32Array(),
      [-0.0040496, -0.15865526, -0.15426877, 0, 0.34573123, 0.84134474, 2.9959502],
      1e-6,
      1e-5,
    );
    assertAllClose(
      F.gelu(x, "tanh").toFloat32Array(),
      [-0.0036373, -0.15880796, -0.15428599, 0, 0.34571401, 0.84119204, 2.9963627],
      1e-6,
      1e-5,
    );
  });

  const unary: [
    string,
    (x: import("../../src/index.js").Tensor) => import("../../src/index.js").Tensor,
    number,
    number,
  ][] = [
    ["neg", F.neg, -1, 1],
    ["exp", F.exp, -1, 1],
    ["log", F.log, 0.5, 2],
    ["sqrt", F.sqrt, 0.5, 2],
    ["rsqrt", F.rsqrt, 0.5, 2],
    ["abs", F.abs, 0.2, 1],
    ["tanh", F.tanh, -2, 2],
    ["sigmoid", F.sigmoid, -3, 3],
    ["silu", F.silu, -3, 3],
    ["gelu", (x) => F.gelu(x), -3, 3],
    ["gelu_tanh", (x) => F.gelu(x, "tanh"), -3, 3],
    ["relu", F.relu, 0.1, 1],
    ["sin", F.sin, -3, 3],
    ["cos", F.cos, -3, 3],
    ["square", F.square, -2, 2],
    ["reciprocal", F.reciprocal, 0.5, 2],
    ["pow 3", (x) => F.pow(x, 3), -2, 2],
    ["clamp", (x) => F.clamp(x, -0.5, 0.5), -0.4, 0.4],
    ["erf", F.erf, -2, 2],
  ];
  for (const [name, fn, lo, hi] of unary) {
    it(`gradient of ${name}`, () => gradcheck(fn, [randomTensor([3, 5], 1, lo, hi)]));
  }

  it("gradients of broadcasting binary ops, on non-contiguous views", () => {
    const a = () => randomTensor([4, 3], 2, 0.5, 2).transpose(0, 1); // [3,4] non-contiguous
    const b = () => randomTensor([1, 4], 3, 0.5, 2);
    gradcheck(F.add, [a(), b()]);
    gradcheck(F.sub, [a(), b()]);
    gradcheck(F.mul, [a(), b()]);
    gradcheck(F.div, [a(), b()]);
    gradcheck(F.pow, [a(), b()]);
    // keep operands apart (|a - b| > 0.1) so finite differences do not straddle the kink
    const apart = () => randomTensor([3, 4], 4, 0.2, 1).mul(tensor([1, -1, 1, -1]));
    gradcheck(F.maximum, [apart(), randomTensor([4], 5, -0.1, 0.1)]);
    gradcheck(F.minimum, [apart(), randomTensor([3, 1], 5, -0.1, 0.1)]);
    gradcheck((c, d) => F.where(c.gt(0), c, d), [randomTensor([3, 4], 6), randomTensor([4], 7)]);
  });
});

describe("addInPlace", () => {
  it("adds into the target's own storage (broadcast operand), on every backend, and returns the target", () => {
    for (const backend of nativeBackend ? ["reference", "native"] : ["reference"]) {
      withBackend(backend, () => {
        const x = randomTensor([2, 3, 40, 40], 1);
        const t = randomTensor([2, 3, 1, 1], 2);
        const want = F.add(x, t).toFloat32Array().slice();
        const storage = x.storage;
        const y = noGrad(() => F.addInPlace(x, t));
        assert.equal(y, x);
        assert.equal(y.storage, storage);
        assert.deepEqual(y.toFloat32Array(), want);
        // a contiguous view at an offset: only its elements change
        const whole = randomTensor([4, 5], 3);
        const before = whole.toFloat32Array().slice();
        const row = F.narrow(whole, 0, 1, 2);
        noGrad(() => F.addInPlace(row, 1));
        const after = whole.toFloat32Array();
        for (let i = 0; i < after.length; i++) {
          assert.equal(after[i], i >= 5 && i < 15 ? Math.fround(before[i]! + 1) : before[i], `element ${i}`);
        }
      });
    }
  });

  it("refuses what it cannot do in place: gradients, a strided or non-float32 target, a shape that grows", () => {
    const w = randomTensor([3, 3], 4);
    w.requiresGrad = true;
    assert.throws(() => F.addInPlace(randomTensor([3, 3], 5), w), /requires grad/);
    assert.throws(() => F.addInPlace(F.transpose(randomTensor([3, 4], 6), 0, 1), 1), /contiguous float32/);
    assert.throws(() => F.addInPlace(randomTensor([3, 1], 7), randomTensor([3, 4], 8)), /gives \[3, 4\]/);
    assert.throws(
      () => F.addInPlace(tensor([1, 2], [2], { dtype: "int32" }), 1),
      /contiguous float32, got int32/,
    );
  });
});
