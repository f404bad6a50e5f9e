import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, DTypeError, F, ShapeError, type Tensor, tensor } from "../../src/index.js";
import { assertAllClose, gradcheck, randomTensor } from "../helpers.js";

const int64 = (v: number[], shape?: number[]) => tensor(v, shape, { dtype: "int64" });

describe("mse_loss", () => {
  const a = tensor([
    [1, 2],
    [3, 4],
  ]);
  const b = tensor([
    [1, 0],
    [5, 1],
  ]);
  it("reductions match hand-computed values", () => {
    // squared errors 0, 4, 4, 9
    assert.equal(F.mse_loss(a, b).item(), 17 / 4);
    assert.equal(F.mse_loss(a, b, "sum").item(), 17);
    assert.deepEqual(F.mse_loss(a, b, "none").tolist(), [
      [0, 4],
      [4, 9],
    ]);
    assert.equal(F.mse_loss(a.t(), b.t()).item(), 17 / 4);
  });
  it("gradients for input and target", () => {
    gradcheck((x, y) => F.mse_loss(x, y), [randomTensor([3, 5], 1), randomTensor([5, 3], 2).t()]);
    gradcheck((x, y) => F.mse_loss(x, y, "sum"), [randomTensor([7], 3), randomTensor([7], 4)]);
    gradcheck((x, y) => F.mse_loss(x, y, "none"), [randomTensor([2, 3], 5), randomTensor([2, 3], 6)]);
  });
  it("clear errors", () => {
    assert.throws(
      () => F.mse_loss(a, tensor([1, 2])),
      /mse_loss: input \[2, 2\] and target \[2\] must have the same shape/,
    );
    assert.throws(
      () => F.mse_loss(a, b, "avg" as "mean"),
      /reduction must be "mean", "sum" or "none", got "avg"/,
    );
    assert.throws(() => F.mse_loss(a, int64([1, 2, 3, 4], [2, 2])), DTypeError);
  });
});

/** Cross entropy from its definition, in float64: rows of logits [M, C] with class ids, per-row losses. */
function referenceCE(logits: number[][], target: number[], eps: number, ignore: number): number[] {
  return logits.map((row, i) => {
    if (target[i] === ignore) return 0;
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    const logp = row.map((v) => v - lse);
    const smooth = -logp.reduce((s, v) => s + v, 0) / row.length;
    return (1 - eps) * -logp[target[i]!]! + eps * smooth;
  });
}

/** [N, C, *] -> rows [N * prod(*), C] in the (n, *) row-major order of the target. */
function rowsOf(t: Tensor): number[][] {
  const c = t.shape[1]!;
  const moved = t.ndim > 2 ? t.permute(0, ...Array.from({ length: t.ndim - 2 }, (_, i) => i + 2), 1) : t;
  const flat = Array.from(moved.contiguous().toFloat32Array());
  return Array.from({ length: flat.length / c }, (_, i) => flat.slice(i * c, (i + 1) * c));
}

describe("cross_entropy", () => {
  it("matches known PyTorch values", () => {
    // F.cross_entropy(tensor([[1., 2., 3.]]), tensor([2])) = 0.4076; ([0], label_smoothing=0.1) = 2.3076
    const x = tensor([[1, 2, 3]]);
    assertAllClose([F.cross_entropy(x, int64([2])).item()], [0.40760596], 1e-6, 1e-6);
    assertAllClose([F.cross_entropy(x, int64([0]), { labelSmoothing: 0.1 }).item()], [2.3076059], 1e-6, 1e-6);
    assertAllClose([F.cross_entropy(tensor([[0, 0]]), int64([1])).item()], [Math.LN2], 1e-7, 1e-6);
    // unbatched [C] logits with a 0-d target
    assertAllClose(
      [F.cross_entropy(tensor([1, 2, 3]), tensor(2, undefined, { dtype: "int32" })).item()],
      [0.40760596],
      1e-6,
      1e-6,
    );
  });

  it("[N, C, *] inputs, ignoreIndex, label smoothing and reductions agree with the definition", () => {
    const logits = randomTensor([2, 5, 3, 4], 1, -3, 3);
    const ids = [0, 4, 1, 2, -100, 3, 3, 0, 1, 4, 2, 2, 0, 1, 4, 3, -100, 2, 1, 0, 0, 3, 4, 1];
    const target = int64(ids, [2, 3, 4]);
    for (const eps of [0, 0.2]) {
      const want = referenceCE(rowsOf(logits), ids, eps, -100);
      const none = F.cross_entropy(logits, target, { reduction: "none", labelSmoothing: eps });
      assert.deepEqual(none.shape, [2, 3, 4]);
      assertAllClose(none.toFloat32Array(), want, 1e-5, 1e-5, `none eps ${eps}`);
      const total = want.reduce((s, v) => s + v, 0);
      assertAllClose(
        [F.cross_entropy(logits, target, { reduction: "sum", labelSmoothing: eps }).item()],
        [total],
        1e-4,
        1e-5,
      );
      // mean over the 22 non-ignored positions
      assertAllClose(
        [F.cross_entropy(logits, target, { labelSmoothing: eps }).item()],
        [total / 22],
        1e-5,
        1e-5,
      );
    }
    // a custom ignoreIndex, non-contiguous [N, C] logits and int32 targets
    const l2 = randomTensor([4, 3], 2, -2, 2).t(); // [3, 4]
    const t2 = [1, 3, 0];
    const want2 = referenceCE(rowsOf(l2), t2, 0, 3);
    assertAllClose(
      [F.cross_entropy(l2, tensor(t2, undefined, { dtype: "int32" }), { ignoreIndex: 3 }).item()],
      [(want2[0]! + want2[2]!) / 2],
      1e-6,
      1e-5,
    );
    // every target ignored: mean is 0/0 = NaN (as PyTorch); sum is 0
    assert.ok(Number.isNaN(F.cross_entropy(l2, int64([-100, -100, -100])).item()));
    assert.equal(F.cross_entropy(l2, int64([-100, -100, -100]), { reduction: "sum" }).item(), 0);
  });

  it("class-probability targets", () => {
    const logits = randomTensor([3, 4, 2], 3, -2, 2);
    const ids = [1, 3, 0, 0, 2, 1];
    // one-hot probabilities give the same loss as class ids
    const onehot = new Float32Array(3 * 4 * 2);
    ids.forEach((c, r) => {
      const n = Math.floor(r / 2);
      const s = r % 2;
      onehot[n * 8 + c * 2 + s] = 1;
    });
    const probs = tensor(onehot, [3, 4, 2]);
    for (const eps of [0, 0.3]) {
      const a = F.cross_entropy(logits, probs, { reduction: "none", labelSmoothing: eps });
      const b = F.cross_entropy(logits, int64(ids, [3, 2]), { reduction: "none", labelSmoothing: eps });
      assertAllClose(a.toFloat32Array(), b.toFloat32Array(), 1e-6, 1e-6, `eps ${eps}`);
    }
    // uniform target over C classes: loss = -mean(logp) per row
    const u = F.cross_entropy(tensor([[1, 2, 3]]), tensor([[1 / 3, 1 / 3, 1 / 3]]));
    assertAllClose([u.item()], [(2.40760596 + 1.40760596 + 0.40760596) / 3], 1e-6, 1e-6);
  });

  it("gradients (class ids with ignore and smoothing, probabilities, non-contiguous logits)", () => {
    gradcheck((x) => F.cross_entropy(x, int64([2, -100, 0, 4])), [randomTensor([5, 4], 1, -2, 2).t()]);
    gradcheck(
      (x) => F.cross_entropy(x, int64([1, 0, 2, 2, 1, 0], [2, 3]), { labelSmoothing: 0.1, reduction: "sum" }),
      [randomTensor([2, 3, 3], 2, -2, 2)],
    );
    gradcheck(
      (x) => F.cross_entropy(x, int64([1, 0, 2, 3], [2, 2]), { reduction: "none" }),
      [randomTensor([2, 2, 5], 3, -2, 2).permute(0, 2, 1)],
    );
    gradcheck(
      (x, p) => F.cross_entropy(x, p.softmax(1), { labelSmoothing: 0.2 }),
      [randomTensor([3, 5], 4, -2, 2), randomTensor([3, 5], 5, -2, 2)],
    );
  });

  it("clear errors", () => {
    const x = randomTensor([4, 3], 1);
    assert.throws(
      () => F.cross_entropy(x, int64([0, 1, 2])),
      /for logits \[4, 3\] the class-id target must have shape \[4\], got \[3\]/,
    );
    assert.throws(
      () => F.cross_entropy(x, int64([0, 1, 3, 0])),
      /target 3 \(element 2\) is out of range for 3 classes \(valid: 0\.\.2, or ignoreIndex -100\)/,
    );
    assert.throws(() => F.cross_entropy(x, int64([0, -1, 0, 0])), ArgumentError);
    assert.throws(
      () => F.cross_entropy(x, randomTensor([4, 2], 2)),
      /class-probability target must have the logits' shape \[4, 3\]/,
    );
    assert.throws(() => F.cross_entropy(x, tensor([1, 0, 1, 1], undefined, { dtype: "bool" })), DTypeError);
    assert.throws(
      () => F.cross_entropy(x, int64([0, 0, 0, 0]), { labelSmoothing: 1.5 }),
      /labelSmoothing must be in \[0, 1\]/,
    );
    assert.throws(() => F.cross_entropy(tensor(1), int64([0])), ShapeError);
    assert.throws(() => F.cross_entropy(int64([1, 2], [1, 2]), int64([0])), DTypeError);
  });
});
