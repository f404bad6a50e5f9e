import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { GemmParams } from "../../src/backend/index.js";
import { referenceBackend } from "../../src/backend/reference/index.js";
import { F, noGrad, tensor, withBackend } from "../../src/index.js";
import { viewStrides } from "../../src/ops/view.js";
import { assertAllClose, gradcheck, randomTensor } from "../helpers.js";

describe("reductions", () => {
  const x = tensor([
    [1, 2, 3],
    [4, 5, 9],
  ]);
  it("sum/mean/var/max/min/argmax", () => {
    assert.equal(x.sum().item(), 24);
    assert.deepEqual(x.sum(0).tolist(), [5, 7, 12]);
    assert.deepEqual(x.sum(1, { keepdim: true }).shape, [2, 1]);
    assert.deepEqual(x.mean(-1).tolist(), [2, 6]);
    assertAllClose(x.var(1).toFloat32Array(), [1, 7], 1e-6, 1e-6);
    assertAllClose(x.var(1, { correction: 0 }).toFloat32Array(), [2 / 3, 14 / 3], 1e-6, 1e-6);
    assert.deepEqual(x.max(1).tolist(), [3, 9]);
    assert.deepEqual(x.min(0).tolist(), [1, 2, 3]);
    assert.deepEqual(Array.from(x.argmax(1).dataSync() as BigInt64Array), [2n, 2n]);
    assert.equal(Number(x.argmax().item()), 5);
  });
  it("reductions over non-adjacent dims", () => {
    const t = randomTensor([2, 3, 4], 1);
    const s = t.sum([0, 2]);
    const want = [0, 1, 2].map((j) => {
      let acc = 0;
      for (let i = 0; i < 2; i++)
        for (let k = 0; k < 4; k++) acc += t.select(0, i).select(0, j).select(0, k).item();
      return acc;
    });
    assertAllClose(s.toFloat32Array(), want, 1e-5, 1e-5);
  });
  it("gradients", () => {
    gradcheck((t) => t.sum([0, 2]), [randomTensor([2, 3, 4], 1)]);
    gradcheck((t) => t.mean(1, { keepdim: true }), [randomTensor([2, 3, 4], 2)]);
    gradcheck((t) => t.var([1, 2]), [randomTensor([2, 3, 4], 3)]);
    gradcheck((t) => t.max(1), [randomTensor([3, 5], 4)]);
    gradcheck((t) => t.min(), [randomTensor([3, 5], 5)]);
  });
});

describe("views", () => {
  it("reshape is a view wherever the strides allow it (PyTorch's rule), else a copy", () => {
    // [B, C, H, W] -> channels last -> [B, H*W, C]: H and W stay contiguous with each other
    assert.deepEqual(viewStrides([2, 3, 4, 5], [60, 4, 1, 12], [2, 12, 5]), [60, 1, 12]);
    // a transpose cannot be flattened
    assert.equal(viewStrides([3, 4], [1, 3], [12]), null);
    // splitting a dim, size-1 dims anywhere
    assert.deepEqual(viewStrides([6, 4], [1, 6], [2, 3, 1, 4]), [3, 1, 24, 6]);
    assert.deepEqual(viewStrides([1, 6], [99, 2], [3, 2]), [4, 2]);
    const img = randomTensor([2, 5, 3, 4], 3);
    const tokens = F.reshape(F.permute(img, [0, 2, 3, 1]), [2, 12, 5]);
    assert.equal(tokens.storage, img.storage, "a view, no copy");
    assert.deepEqual(
      tokens.contiguous().toFloat32Array(),
      F.permute(img, [0, 2, 3, 1]).contiguous().toFloat32Array(),
    );
    const t = F.transpose(randomTensor([3, 4], 4), 0, 1);
    const flat = F.reshape(t, [12]);
    assert.notEqual(flat.storage, t.storage, "a copy");
    assert.deepEqual(flat.toFloat32Array(), t.contiguous().toFloat32Array());
    gradcheck((x) => F.reshape(F.permute(x, [0, 2, 1]), [2, 6]), [randomTensor([2, 2, 3], 5)]);
  });

  it("reshape/permute/slice/squeeze share storage and index correctly", () => {
    const t = F.reshape(tensor(Array.from({ length: 24 }, (_, i) => i)), [2, 3, 4]);
    const p = t.permute(2, 0, 1);
    assert.deepEqual(p.shape, [4, 2, 3]);
    assert.equal(p.storage, t.storage);
    assert.equal(p.select(0, 1).select(0, 1).select(0, 2).item(), 1 * 12 + 2 * 4 + 1);
    const s = t.slice(2, 1, 4, 2);
    assert.deepEqual(s.shape, [2, 3, 2]);
    assert.deepEqual(s.select(0, 0).select(0, 0).tolist(), [1, 3]);
    assert.deepEqual(t.slice(1, -1).shape, [2, 1, 4]);
    assert.deepEqual(t.slice(1, -1).squeeze(1).shape, [2, 4]);
    assert.deepEqual(t.unsqueeze(-1).shape, [2, 3, 4, 1]);
    assert.deepEqual(t.flatten(1).shape, [2, 12]);
    assert.deepEqual(p.contiguous().reshape(-1).tolist(), p.reshape([24]).tolist());
    assert.deepEqual(tensor([1, 2]).expand(3, 2).tolist(), [
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
  });
  it("bad shapes give clear errors", () => {
    const t = tensor([1, 2, 3, 4, 5, 6]);
    assert.throws(() => t.reshape(4, -1), /cannot reshape 6 elements into \[4, -1\]/);
    assert.throws(() => t.permute(0, 0), /permute/);
    assert.throws(() => t.add(tensor([1, 2])), /cannot be broadcast/);
  });
  it("gradients through views", () => {
    gradcheck((t) => t.permute(2, 0, 1).reshape(4, 6).slice(1, 1, 5, 2), [randomTensor([2, 3, 4], 1)]);
    gradcheck((t) => t.expand(3, 2, 4).mul(t), [randomTensor([2, 4], 2)]);
    gradcheck((t) => t.unsqueeze(0).squeeze().select(1, 2), [randomTensor([2, 3], 3)]);
  });
});

describe("matmul and linear", () => {
  it("matches a hand product and supports batch broadcasting", () => {
    const a = tensor([
      [1, 2],
      [3, 4],
    ]);
    const b = tensor([
      [5, 6],
      [7, 8],
    ]);
    assert.deepEqual(a.matmul(b).tolist(), [
      [19, 22],
      [43, 50],
    ]);
    assert.deepEqual(a.matmul(tensor([1, 1])).tolist(), [3, 7]);
    const batched = randomTensor([3, 1, 2, 5], 1).matmul(randomTensor([4, 5, 6], 2));
    assert.deepEqual(batched.shape, [3, 4, 2, 6]);
  });
  it("gradients (broadcast batch, transposed operands, linear with bias)", () => {
    gradcheck(F.matmul, [randomTensor([2, 3, 4], 1), randomTensor([4, 5], 2)]);
    gradcheck(F.matmul, [randomTensor([4, 3], 3).t(), randomTensor([2, 1, 4, 2], 4)]);
    gradcheck(F.linear, [randomTensor([2, 3, 4], 5), randomTensor([6, 4], 6), randomTensor([6], 7)]);
    gradcheck((x, w) => F.linear(x, w), [randomTensor([4, 5], 8).transpose(0, 1), randomTensor([3, 4], 9)]);
    // a channels-first image read as tokens in place
    gradcheck(
      (x, w, b) => F.linear(x.transpose(1, 2), w, b),
      [randomTensor([2, 4, 5], 10), randomTensor([3, 4], 11), randomTensor([3], 12)],
    );
    gradcheck(
      (t, w, b) => F.linearToChannels(t, w, b),
      [randomTensor([2, 5, 4], 13), randomTensor([3, 4], 14), randomTensor([3], 15)],
    );
    // a residual: with gradients to record it is a separate add, and its gradient flows
    gradcheck(
      (x, w, b, r) => F.linear(x, w, b, r),
      [
        randomTensor([2, 3, 4], 16),
        randomTensor([6, 4], 17),
        randomTensor([6], 18),
        randomTensor([2, 3, 6], 19),
      ],
    );
    gradcheck(
      (t, w, b, r) => F.linearToChannels(t, w, b, r),
      [
        randomTensor([2, 5, 4], 20),
        randomTensor([3, 4], 21),
        randomTensor([3], 22),
        randomTensor([2, 3, 5], 23),
      ],
    );
  });

  it("a residual that does not broadcast to the output is a ShapeError naming the op and both shapes", () => {
    const x = randomTensor([2, 3, 4], 39);
    const w = randomTensor([5, 4], 40);
    assert.throws(
      () => noGrad(() => F.linear(x, w, null, randomTensor([2, 3, 7], 41))),
      /linear: the residual \[2, 3, 7\] does not broadcast to the output \[2, 3, 5\]/,
    );
    // one that would grow the output is refused too (a residual never changes the layer's shape)
    assert.throws(
      () => F.linear(x, w, null, randomTensor([4, 2, 3, 5], 42)),
      /does not broadcast to the output/,
    );
    assert.throws(
      () => noGrad(() => F.linearToChannels(x, w, null, randomTensor([2, 3, 5], 43))),
      /linearToChannels: the residual \[2, 3, 5\] does not broadcast to the output \[2, 5, 3\]/,
    );
  });

  it("a backend that does not fuse residuals (written before the parameter) still gets them added", () => {
    const x = randomTensor([2, 5, 8], 33);
    const w = randomTensor([6, 8], 34);
    const r = randomTensor([2, 5, 6], 35);
    const img = randomTensor([1, 2, 5, 5], 36);
    const k = randomTensor([2, 2, 3, 3], 37);
    const ri = randomTensor([1, 2, 5, 5], 38);
    const want = noGrad(() => [F.add(F.linear(x, w), r), F.add(F.conv2d(img, k, null, { padding: 1 }), ri)]);
    // an older backend: its kernels know nothing of a residual argument
    const older = {
      ...referenceBackend,
      name: "older",
      fusesResidual: undefined,
      gemm: (p: GemmParams) => referenceBackend.gemm({ ...p, residual: null }),
      conv2d: (...args: Parameters<typeof referenceBackend.conv2d>) =>
        referenceBackend.conv2d(args[0], args[1], args[2], args[3], args[4]),
    };
    const got = withBackend(older, () =>
      noGrad(() => [F.linear(x, w, null, r), F.conv2d(img, k, null, { padding: 1, residual: ri })]),
    );
    assertAllClose(got[0]!.toFloat32Array(), want[0]!.toFloat32Array(), 1e-6, 1e-6);
    assertAllClose(got[1]!.toFloat32Array(), want[1]!.toFloat32Array(), 1e-6, 1e-6);
  });

  it("a residual added inside the product gives exactly the product plus the residual", () => {
    const x = randomTensor([2, 7, 33], 24);
    const w = randomTensor([20, 33], 25);
    const b = randomTensor([20], 26);
    const r = randomTensor([2, 7, 20], 27);
    noGrad(() => {
      const want = F.add(F.linear(x, w, b), r).toFloat32Array();
      assert.deepEqual(F.linear(x, w, b, r).toFloat32Array(), want);
      // the residual read in place from an offset view; a broadcast or strided residual is added after
      const big = randomTensor([3, 7, 20], 28);
      const slice = F.reshape(big, [21, 20]).narrow(0, 7, 14).reshape([2, 7, 20]);
      assert.deepEqual(
        F.linear(x, w, b, slice).toFloat32Array(),
        F.add(F.linear(x, w, b), slice).toFloat32Array(),
      );
      const row = randomTensor([20], 29);
      assert.deepEqual(
        F.linear(x, w, b, row).toFloat32Array(),
        F.add(F.linear(x, w, b), row).toFloat32Array(),
      );
      const strided = randomTensor([2, 20, 7], 30).transpose(1, 2);
      assert.deepEqual(
        F.linear(x, w, b, strided).toFloat32Array(),
        F.add(F.linear(x, w, b), strided).toFloat32Array(),
      );
      const tokens = randomTensor([2, 9, 33], 31);
      const rc = randomTensor([2, 20, 9], 32);
      assert.deepEqual(
        F.linearToChannels(tokens, w, b, rc).toFloat32Array(),
        F.add(F.linearToChannels(tokens, w, b), rc).toFloat32Array(),
      );
    });
  });

  it("1x1 convolutions across layouts: image -> tokens (linear on a permuted view), tokens -> image", () => {
    const img = randomTensor([2, 6, 3, 5], 16); // [B, C, H, W]
    const w = randomTensor([4, 6, 1, 1], 17);
    const b = randomTensor([4], 18);
    const conv = F.conv2d(img, w, b); // [2, 4, 3, 5]
    const tokensView = F.reshape(F.permute(img, [0, 2, 3, 1]), [2, 15, 6]);
    assert.equal(tokensView.isContiguous(), false);
    const tokens = noGrad(() => F.linear(tokensView, F.reshape(w, [4, 6]), b));
    const want = F.reshape(F.permute(conv, [0, 2, 3, 1]), [2, 15, 4]);
    assertAllClose(tokens.toFloat32Array(), want.contiguous().toFloat32Array(), 1e-5, 1e-5);
    const back = noGrad(() => F.linearToChannels(tokensView.contiguous(), w, b));
    assert.deepEqual(back.shape, [2, 4, 15]);
    assertAllClose(back.toFloat32Array(), F.reshape(conv, [2, 4, 15]).toFloat32Array(), 1e-5, 1e-5);
    assert.throws(() => F.linearToChannels(randomTensor([2, 3], 1), F.reshape(w, [4, 6])), /\[B, L, C\]/);
    assert.throws(() => F.linearToChannels(tokensView, randomTensor([4, 5], 1)), /weight must be \[O, 6\]/);
    assert.throws(() => F.linearToChannels(tokensView, w, randomTensor([3], 1)), /bias must be \[4\]/);
  });
});
