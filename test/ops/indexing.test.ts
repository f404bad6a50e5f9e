import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, DTypeError, F, ShapeError, tensor } from "../../src/index.js";
import { gradcheck, randomTensor } from "../helpers.js";

const int64 = (v: number[] | number[][], shape?: number[]) => tensor(v, shape, { dtype: "int64" });
const int32 = (v: number[] | number[][], shape?: number[]) => tensor(v, shape, { dtype: "int32" });

describe("gather", () => {
  const t = tensor([
    [1, 2],
    [3, 4],
  ]);
  it("matches PyTorch's documented examples", () => {
    // torch.gather(t, 1, [[0, 0], [1, 0]]) = [[1, 1], [4, 3]]
    assert.deepEqual(
      F.gather(
        t,
        1,
        int64([
          [0, 0],
          [1, 0],
        ]),
      ).tolist(),
      [
        [1, 1],
        [4, 3],
      ],
    );
    // dim 0: out[i][j] = t[index[i][j]][j]
    assert.deepEqual(t.gather(0, int32([[1, 0]])).tolist(), [[3, 2]]);
    // index smaller than the input outside dim, negative dim, non-contiguous input and index
    const x = tensor(Array.from({ length: 12 }, (_, i) => i)).reshape(3, 4); // x[i][j] = 4i + j
    const idx = int64([3, 0, 2, 2], [2, 2]).t(); // [[3, 2], [0, 2]]
    assert.deepEqual(x.gather(-1, idx).tolist(), [
      [3, 2],
      [4, 6],
    ]);
    // x.t()[i][j] = 4j + i; a [3, 1] non-contiguous index picks column idx[i] of row i
    const col = int64([2, 0, 1, 5], [1, 4]).t().slice(0, 0, 3);
    assert.deepEqual(x.t().gather(1, col).tolist(), [[8], [1], [6]]);
    // integer inputs are gathered exactly
    const big = int64([2 ** 40, 7]);
    assert.deepEqual(Array.from(big.gather(0, int64([1, 0, 0])).dataSync() as BigInt64Array), [
      7n,
      2n ** 40n,
      2n ** 40n,
    ]);
    assert.equal(
      tensor([5, 6, 7])
        .gather(0, tensor(2, undefined, { dtype: "int64" }))
        .item(),
      7,
    );
  });

  it("clear errors", () => {
    assert.throws(() => t.gather(1, int64([[2, 0]])), /gather: index 2 is out of range for dim 1 of size 2/);
    assert.throws(() => t.gather(1, int64([[-1, 0]])), /index -1 is out of range/);
    assert.throws(() => t.gather(1, int64([0, 1])), /index has 1 dims \(\[2\]\) but input has 2/);
    assert.throws(() => t.gather(1, tensor([[0, 1]])), DTypeError);
    assert.throws(() => t.gather(1, int64([[0], [0], [0]])), /larger than input \[2, 2\] in dim 0/);
    assert.throws(() => t.gather(2, int64([[0]])), ShapeError);
  });

  it("gradient scatter-adds (repeated indices, non-contiguous input)", () => {
    const x = tensor([1, 2, 3]).requiresGrad_();
    x.gather(0, int64([2, 2, 0]))
      .sum()
      .backward();
    assert.deepEqual(x.grad!.tolist(), [1, 0, 2]);
    const index = int64([0, 4, 4, 1, 2, 0, 3, 3, 2, 1, 0, 4], [3, 4]);
    gradcheck((a) => F.gather(a, 1, index), [randomTensor([5, 3], 1).t()]);
    gradcheck(
      (a) => F.gather(a, 0, int64([2, 0, 1, 2, 2, 0], [2, 3])),
      [randomTensor([3, 5, 2], 2).select(2, 1)],
    );
  });
});

describe("indexSelect", () => {
  it("selects along any dim, repeated indices allowed", () => {
    const x = tensor(Array.from({ length: 12 }, (_, i) => i)).reshape(3, 4);
    assert.deepEqual(x.indexSelect(0, int64([2, 0, 2])).tolist(), [
      [8, 9, 10, 11],
      [0, 1, 2, 3],
      [8, 9, 10, 11],
    ]);
    assert.deepEqual(F.indexSelect(x.t(), -1, int32([1])).tolist(), [[4], [5], [6], [7]]);
    assert.deepEqual(x.indexSelect(1, int64([])).shape, [3, 0]);
  });

  it("clear errors and gradients", () => {
    const x = randomTensor([3, 4], 1);
    assert.throws(
      () => x.indexSelect(1, int64([4])),
      /indexSelect: index 4 is out of range for dim 1 of size 4/,
    );
    assert.throws(() => x.indexSelect(0, int64([[0]])), /index must be 1-D/);
    gradcheck((a) => F.indexSelect(a, 2, int64([4, 0, 4, 1])), [randomTensor([2, 5, 3], 2).permute(0, 2, 1)]);
    gradcheck((a) => F.indexSelect(a, -2, int64([2, 2, 0])), [randomTensor([2, 5, 3], 3).permute(0, 2, 1)]);
  });
});

describe("embedding", () => {
  const weight = tensor([
    [0, 0.5],
    [1, 1.5],
    [2, 2.5],
  ]);
  it("looks up rows for ids of any shape (int32 and int64)", () => {
    assert.deepEqual(F.embedding(int64([2, 0]), weight).tolist(), [
      [2, 2.5],
      [0, 0.5],
    ]);
    const ids = int32([
      [1, 1, 2],
      [0, 2, 1],
    ]);
    const out = F.embedding(ids, weight);
    assert.deepEqual(out.shape, [2, 3, 2]);
    assert.deepEqual(out.select(1, 2).tolist(), [
      [2, 2.5],
      [1, 1.5],
    ]);
    assert.deepEqual(F.embedding(int64([1, 2], [2]).select(0, 1), weight).tolist(), [2, 2.5]);
    // a float16 table gives the widened rows (and float32 gradients)
    const w16 = weight.half().requiresGrad_();
    const e16 = F.embedding(ids, w16);
    assert.equal(e16.dtype, "float32");
    assert.deepEqual(e16.tolist(), out.tolist());
    e16.sum().backward();
    assert.deepEqual(w16.grad!.tolist(), [
      [1, 1],
      [3, 3],
      [2, 2],
    ]);
  });

  it("gradient sums rows per id; ids out of range are named", () => {
    const w = weight.clone().detach().requiresGrad_();
    const ids = int64([2, 0, 2, 2]);
    F.embedding(ids, w)
      .mul(tensor([1, 10]))
      .sum()
      .backward();
    assert.deepEqual(w.grad!.tolist(), [
      [1, 10],
      [0, 0],
      [3, 30],
    ]);
    gradcheck((t) => F.embedding(int64([3, 1, 3, 0, 2, 1], [2, 3]), t), [randomTensor([5, 4], 3).t()]);
    assert.throws(
      () => F.embedding(int64([0, 3]), weight),
      /embedding: id 3 \(element 1 of ids \[2\]\) is out of range for a table of 3 rows \(valid ids: 0\.\.2\)/,
    );
    assert.throws(() => F.embedding(int64([-1]), weight), ArgumentError);
    assert.throws(() => F.embedding(tensor([0, 1]), weight), /ids must be int32 or int64, got float32/);
    assert.throws(() => F.embedding(int64([0]), tensor([1, 2])), /weight must be 2-D/);
  });
});
