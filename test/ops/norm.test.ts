import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, F, noGrad, ShapeError, type Tensor, tensor } from "../../src/index.js";
import { assertAllClose, gradcheck, randomTensor } from "../helpers.js";

/** (x - mean) / sqrt(var + eps) over `dims`, from the generic reduce ops (an independent formula). */
function normalizeOver(x: Tensor, dims: number[], eps: number): Tensor {
  const m = F.mean(x, dims, { keepdim: true });
  const v = F.variance(x, dims, { keepdim: true, correction: 0 });
  return x.sub(m).div(v.add(eps).sqrt());
}

describe("group_norm", () => {
  it("matches hand-computed values", () => {
    // one group of [1, 2, 3, 4]: mean 2.5, var 1.25
    const x = tensor([1, 2, 3, 4], [1, 2, 2]);
    const s = 1 / Math.sqrt(1.25 + 1e-5);
    const want = [-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s].map((v, i) => (i < 2 ? v * 2 + 1 : v * -1 + 0));
    const got = F.group_norm(x, 1, tensor([2, -1]), tensor([1, 0]));
    assertAllClose(got.toFloat32Array(), want, 1e-6, 1e-6);
  });

  it("matches the composition of mean/var ops for several group counts", () => {
    const x = randomTensor([2, 6, 3, 5], 1, -2, 3);
    const w = randomTensor([6], 2);
    const b = randomTensor([6], 3);
    for (const g of [1, 2, 3, 6]) {
      const xg = x.reshape(2, g, -1);
      const want = normalizeOver(xg, [2], 1e-5)
        .reshape(2, 6, 3, 5)
        .mul(w.reshape(1, 6, 1, 1))
        .add(b.reshape(1, 6, 1, 1));
      assertAllClose(
        F.group_norm(x, g, w, b).toFloat32Array(),
        want.toFloat32Array(),
        1e-5,
        1e-5,
        `groups ${g}`,
      );
    }
  });

  it("gradients: affine, odd spatial size", () => {
    gradcheck(
      (x, w, b) => F.group_norm(x, 2, w, b),
      [randomTensor([2, 4, 3, 5], 4, -2, 2), randomTensor([4], 5, 0.5, 1.5), randomTensor([4], 6)],
    );
  });

  it("gradients: no affine, 3-D input, non-contiguous", () => {
    const x = randomTensor([7, 6, 2], 7, -2, 2).permute(2, 1, 0); // [2, 6, 7]
    gradcheck((a) => F.group_norm(a, 3), [x]);
  });

  it("gradients: one channel per group (instance norm) and eps", () => {
    gradcheck(
      (x, w) => F.group_norm(x, 3, w, null, 1e-3),
      [randomTensor([1, 3, 4, 3], 8, -2, 2), randomTensor([3], 9)],
    );
  });

  it("group_norm_silu: fused kernel equals silu(group_norm) and falls back to autograd", () => {
    const x = randomTensor([2, 4, 3, 3], 10, -3, 3);
    const w = randomTensor([4], 11);
    const b = randomTensor([4], 12);
    const want = F.silu(F.group_norm(x, 2, w, b)).toFloat32Array();
    const fused = noGrad(() => F.group_norm_silu(x, 2, w, b));
    assertAllClose(fused.toFloat32Array(), want, 1e-6, 1e-5);
    gradcheck((a, c, d) => F.group_norm_silu(a, 2, c, d), [x, w, b]);
  });

  it("rejects bad groups and affine shapes", () => {
    const x = randomTensor([1, 6, 2], 13);
    assert.throws(() => F.group_norm(x, 4), ArgumentError);
    assert.throws(() => F.group_norm(x, 3, randomTensor([3], 14)), ShapeError);
    assert.throws(() => F.group_norm(randomTensor([6], 15), 3), ShapeError);
  });
});

describe("layer_norm", () => {
  it("matches hand-computed values", () => {
    const x = tensor([
      [1, 3],
      [0, 0],
    ]);
    const s = 1 / Math.sqrt(1 + 1e-5);
    const got = F.layer_norm(x, 2, tensor([1, 2]), tensor([0, 1]));
    assertAllClose(got.toFloat32Array(), [-s, 2 * s + 1, 0, 1], 1e-6, 1e-6);
  });

  it("normalizes over several trailing dims like the composed formula", () => {
    const x = randomTensor([3, 4, 5], 20, -1, 4);
    const w = randomTensor([4, 5], 21);
    const b = randomTensor([4, 5], 22);
    const want = normalizeOver(x, [1, 2], 1e-5).mul(w).add(b);
    assertAllClose(F.layer_norm(x, [4, 5], w, b).toFloat32Array(), want.toFloat32Array(), 1e-5, 1e-5);
    const plain = normalizeOver(x, [2], 1e-6);
    assertAllClose(
      F.layer_norm(x, [5], null, null, 1e-6).toFloat32Array(),
      plain.toFloat32Array(),
      1e-5,
      1e-5,
    );
  });

  it("gradients: affine over the last dim", () => {
    gradcheck(
      (x, w, b) => F.layer_norm(x, [7], w, b),
      [randomTensor([3, 7], 23, -2, 2), randomTensor([7], 24), randomTensor([7], 25)],
    );
  });

  it("gradients: two normalized dims, non-contiguous input, no affine", () => {
    const x = randomTensor([3, 5, 2], 26, -2, 2).transpose(0, 2); // [2, 5, 3]
    gradcheck((a) => F.layer_norm(a, [5, 3]), [x]);
  });

  it("gradients: weight only", () => {
    gradcheck((x, w) => F.layer_norm(x, 4, w), [randomTensor([2, 3, 4], 27, -2, 2), randomTensor([4], 28)]);
  });

  it("rejects a normalizedShape that is not the trailing dims", () => {
    const x = randomTensor([2, 3, 4], 29);
    assert.throws(() => F.layer_norm(x, [3]), ShapeError);
    assert.throws(() => F.layer_norm(x, [4], randomTensor([3], 30)), ShapeError);
  });
});
