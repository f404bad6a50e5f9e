import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, DTypeError, F, ShapeError, tensor } from "../../src/index.js";
import { gradcheck, randomTensor } from "../helpers.js";

const int64 = (v: number[], shape?: number[]) => tensor(v, shape, { dtype: "int64" });

describe("cat / stack", () => {
  it("concatenate along any dim", () => {
    const a = tensor([
      [1, 2],
      [3, 4],
    ]);
    const b = tensor([[5, 6]]);
    assert.deepEqual(F.cat([a, b]).tolist(), [
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    assert.deepEqual(F.cat([a, b.t(), a], -1).tolist(), [
      [1, 2, 5, 1, 2],
      [3, 4, 6, 3, 4],
    ]);
    // non-contiguous inputs, int dtype kept exactly
    const big = int64([2 ** 40, 1, 2, 3], [2, 2]);
    const c = F.cat([big.t(), big], 0);
    assert.equal(c.dtype, "int64");
    assert.deepEqual(Array.from(c.dataSync() as BigInt64Array), [
      2n ** 40n,
      2n,
      1n,
      3n,
      2n ** 40n,
      1n,
      2n,
      3n,
    ]);
    // legacy: 1-D empty tensors are skipped
    assert.deepEqual(F.cat([tensor([]), a.reshape(4)]).tolist(), [1, 2, 3, 4]);
    // mixed float dtypes give float32
    assert.deepEqual(F.cat([a.half(), b]).dtype, "float32");
  });

  it("stack adds a new dim", () => {
    const a = tensor([1, 2, 3]);
    const b = tensor([4, 5, 6]);
    assert.deepEqual(F.stack([a, b]).tolist(), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(F.stack([a, b], -1).tolist(), [
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    assert.deepEqual(F.stack([a.reshape(3, 1), b.reshape(3, 1)], 1).shape, [3, 2, 1]);
  });

  it("clear errors", () => {
    assert.throws(() => F.cat([]), ArgumentError);
    assert.throws(
      () => F.cat([tensor([[1, 2]]), tensor([[1, 2, 3]])], 0),
      /cat: tensor 1 has shape \[1, 3\] but tensor 0 has \[1, 2\]; sizes must match except in dim 0/,
    );
    assert.throws(() => F.cat([tensor([[1]]), tensor([1])]), ShapeError);
    assert.throws(() => F.cat([tensor([1]), int64([1])]), DTypeError);
    assert.throws(() => F.cat([tensor(1), tensor(2)]), /zero-dimensional/);
    assert.throws(() => F.cat([tensor([1])], 1), /dim 1 is out of range/);
    assert.throws(
      () => F.stack([tensor([1, 2]), tensor([1, 2, 3])]),
      /stack: all tensors need the same shape; tensor 0 is \[2\], tensor 1 is \[3\]/,
    );
  });

  it("gradients (odd sizes, negative dim, non-contiguous)", () => {
    gradcheck(
      (a, b, c) => F.cat([a, b, c], -2),
      [randomTensor([2, 3, 5], 1), randomTensor([5, 2, 1], 2).permute(1, 2, 0), randomTensor([2, 4, 5], 3)],
    );
    gradcheck(
      (a, b) => F.stack([a, b], 1).mul(F.stack([b, a], 1)),
      [randomTensor([3, 5], 4), randomTensor([5, 3], 5).t()],
    );
  });
});

describe("split / chunk", () => {
  const x = tensor(Array.from({ length: 14 }, (_, i) => i)).reshape(2, 7);
  it("split by size and by sections", () => {
    const parts = x.split(3, 1);
    assert.deepEqual(
      parts.map((p) => p.shape),
      [
        [2, 3],
        [2, 3],
        [2, 1],
      ],
    );
    assert.deepEqual(parts[2]!.tolist(), [[6], [13]]);
    const secs = F.split(x, [2, 0, 5], -1);
    assert.deepEqual(
      secs.map((p) => p.shape[1]),
      [2, 0, 5],
    );
    assert.deepEqual(secs[0]!.tolist(), [
      [0, 1],
      [7, 8],
    ]);
    assert.equal(secs[2]!.storage, x.storage, "split returns views");
    assert.deepEqual(
      F.split(x, 5).map((p) => p.shape),
      [[2, 7]],
    );
  });

  it("chunk follows PyTorch (ceil size; may return fewer chunks)", () => {
    const sizes = (n: number, chunks: number) =>
      tensor(new Float32Array(n))
        .chunk(chunks)
        .map((p) => p.shape[0]);
    assert.deepEqual(sizes(7, 3), [3, 3, 1]);
    assert.deepEqual(sizes(6, 4), [2, 2, 2]);
    assert.deepEqual(sizes(5, 2), [3, 2]);
    assert.deepEqual(sizes(2, 5), [1, 1]);
    assert.deepEqual(x.chunk(2, 0)[1]!.tolist(), [[7, 8, 9, 10, 11, 12, 13]]);
  });

  it("clear errors", () => {
    assert.throws(() => x.split(0, 1), /split size must be a positive integer, got 0/);
    assert.throws(() => x.split([3, 3], 1), /sections \[3, 3\] must be non-negative integers summing to 7/);
    assert.throws(() => x.chunk(0), /chunks must be a positive integer/);
    assert.throws(() => x.split(2, 2), ShapeError);
  });

  it("gradients", () => {
    gradcheck(
      (t) => {
        const [a, b, c] = t.split([2, 3, 2], -1);
        return F.cat([c!.mul(a!), b!.mul(2)], 1);
      },
      [randomTensor([7, 3], 1).t()],
    );
    gradcheck(
      (t) => {
        const [a, b] = t.chunk(2, 0);
        return a!.mul(b!);
      },
      [randomTensor([4, 5], 2)],
    );
  });
});

describe("pad", () => {
  it("constant padding, PyTorch order (last dim first)", () => {
    assert.deepEqual(F.pad(tensor([1, 2, 3]), [2, 1], 9).tolist(), [9, 9, 1, 2, 3, 9]);
    const m = tensor([
      [1, 2],
      [3, 4],
    ]);
    // [left, right, top, bottom]
    assert.deepEqual(F.pad(m, [1, 0, 0, 2]).tolist(), [
      [0, 1, 2],
      [0, 3, 4],
      [0, 0, 0],
      [0, 0, 0],
    ]);
    // negative pads crop; mixed with positive
    assert.deepEqual(F.pad(tensor([1, 2, 3, 4, 5]), [-2, 1]).tolist(), [3, 4, 5, 0]);
    assert.deepEqual(F.pad(m.t(), [-1, 1, 0, -1], 7).tolist(), [[3, 7]]);
    // other dtypes keep their dtype; zero pairs leave a dim alone
    const p = F.pad(int64([1, 2]), [1, 1], -1);
    assert.equal(p.dtype, "int64");
    assert.deepEqual(Array.from(p.dataSync() as BigInt64Array), [-1n, 1n, 2n, -1n]);
    assert.deepEqual(F.pad(randomTensor([2, 3, 4], 1), [0, 0, 1, 1]).shape, [2, 5, 4]);
    assert.deepEqual(F.pad(tensor([1, 2]), [-2, 0]).shape, [0]);
  });

  it("clear errors", () => {
    assert.throws(() => F.pad(tensor([1, 2]), [1]), /even number of values/);
    assert.throws(() => F.pad(tensor([1, 2]), [1, 1, 1, 1]), /at most 2 per dim \(2 for \[2\]\)/);
    assert.throws(() => F.pad(tensor([1, 2]), [-2, -1]), /would have negative size -1/);
    assert.throws(() => F.pad(tensor([1, 2]), [0.5, 0]), /integers/);
  });

  it("gradients (padding, cropping, non-contiguous input)", () => {
    gradcheck((t) => F.pad(t, [1, 2, 0, 1], 0.5), [randomTensor([3, 5], 1)]);
    gradcheck((t) => F.pad(t, [-1, 2, 2, -1]), [randomTensor([3, 4, 5], 2).permute(0, 2, 1)]);
    gradcheck((t) => F.pad(t, [0, 0, 0, 0, 1, 1]), [randomTensor([2, 3, 3], 3)]);
  });
});
