import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, F, noGrad, ShapeError, Tensor, tensor } from "../../src/index.js";
import { assertAllClose, gradcheck, randomTensor, testRng } from "../helpers.js";

/** A random bool mask with at least one kept key per row. */
function randomBoolMask(shape: number[], seed: number): Tensor {
  const rng = testRng(seed);
  const lk = shape[shape.length - 1]!;
  const data = new Uint8Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng() < 0.6 ? 1 : 0;
  for (let r = 0; r < data.length; r += lk) data[r + Math.floor(rng() * lk)] = 1;
  return Tensor.fromStorage(data, shape, "bool");
}

/** The fused kernel (no grad) and the matmul/softmax composition (forced by requiresGrad) on the same inputs. */
function bothPaths(q: Tensor, k: Tensor, v: Tensor, opts: F.AttentionOptions = {}): [Tensor, Tensor] {
  const fusedOut = noGrad(() => F.scaled_dot_product_attention(q, k, v, opts));
  const qg = q.detach().requiresGrad_();
  const composedOut = F.scaled_dot_product_attention(qg, k, v, opts);
  assert.ok(composedOut.gradFn, "composed path records a graph");
  assert.equal(fusedOut.gradFn, null);
  return [fusedOut, composedOut];
}

describe("scaled_dot_product_attention", () => {
  it("matches a hand-computed example", () => {
    const q = tensor([[1, 0]]);
    const k = tensor([
      [1, 0],
      [0, 1],
    ]);
    const v = tensor([
      [1, 2],
      [3, 4],
    ]);
    const e = Math.exp(1 / Math.SQRT2); // default scale 1/sqrt(2): scores [1/sqrt(2), 0]
    const p0 = e / (e + 1);
    const want = [p0 * 1 + (1 - p0) * 3, p0 * 2 + (1 - p0) * 4];
    const [fusedOut, composedOut] = bothPaths(q, k, v);
    assertAllClose(fusedOut.toFloat32Array(), want, 1e-6, 1e-6);
    assertAllClose(composedOut.toFloat32Array(), want, 1e-6, 1e-6);
  });

  const cases: [string, () => [Tensor, Tensor, Tensor, F.AttentionOptions]][] = [
    [
      "plain 4-D",
      () => [randomTensor([2, 3, 5, 4], 1), randomTensor([2, 3, 6, 4], 2), randomTensor([2, 3, 6, 3], 3), {}],
    ],
    [
      "broadcast batch/head dims and a custom scale",
      () => [
        randomTensor([2, 3, 5, 4], 4),
        randomTensor([2, 1, 6, 4], 5),
        randomTensor([6, 3], 6),
        { scale: 0.3 },
      ],
    ],
    [
      "bool mask [Lq, Lk]",
      () => [
        randomTensor([2, 3, 5, 4], 7),
        randomTensor([2, 3, 6, 4], 8),
        randomTensor([2, 3, 6, 4], 9),
        { attnMask: randomBoolMask([5, 6], 10) },
      ],
    ],
    [
      "bool mask per batch and head",
      () => [
        randomTensor([2, 3, 5, 4], 11),
        randomTensor([2, 3, 6, 4], 12),
        randomTensor([2, 3, 6, 2], 13),
        { attnMask: randomBoolMask([2, 3, 5, 6], 14) },
      ],
    ],
    [
      "float mask broadcast over batch and query rows",
      () => [
        randomTensor([2, 3, 5, 4], 15),
        randomTensor([2, 3, 6, 4], 16),
        randomTensor([2, 3, 6, 3], 17),
        { attnMask: randomTensor([3, 1, 6], 18, -2, 2) },
      ],
    ],
    [
      "float mask per batch, broadcast over heads",
      () => [
        randomTensor([2, 3, 5, 4], 19),
        randomTensor([2, 3, 6, 4], 20),
        randomTensor([2, 3, 6, 3], 21),
        { attnMask: randomTensor([2, 1, 5, 6], 22, -2, 2) },
      ],
    ],
    [
      "causal, Lq < Lk",
      () => [
        randomTensor([3, 5, 4], 23),
        randomTensor([3, 6, 4], 24),
        randomTensor([3, 6, 3], 25),
        { isCausal: true },
      ],
    ],
    [
      "causal, Lq > Lk",
      () => [
        randomTensor([6, 4], 26),
        randomTensor([4, 4], 27),
        randomTensor([4, 5], 28),
        { isCausal: true },
      ],
    ],
    [
      "non-contiguous q, k, v",
      () => [
        randomTensor([2, 5, 3, 4], 29).transpose(1, 2),
        randomTensor([4, 6, 3], 30).permute(2, 1, 0),
        randomTensor([3, 2, 6], 31).transpose(1, 2),
        {},
      ],
    ],
  ];
  for (const [name, make] of cases) {
    it(`fused kernel and composed ops agree: ${name}`, () => {
      const [q, k, v, opts] = make();
      const [fusedOut, composedOut] = bothPaths(q, k, v, opts);
      assert.deepEqual(fusedOut.shape, composedOut.shape);
      assertAllClose(fusedOut.toFloat32Array(), composedOut.toFloat32Array(), 1e-6, 1e-5, name);
    });
  }

  it("isCausal equals an explicit lower-triangular bool mask", () => {
    const q = randomTensor([2, 4, 3], 40);
    const k = randomTensor([2, 5, 3], 41);
    const v = randomTensor([2, 5, 2], 42);
    const tril = Tensor.fromStorage(
      Uint8Array.from({ length: 20 }, (_, i) => (i % 5 <= Math.floor(i / 5) ? 1 : 0)),
      [4, 5],
      "bool",
    );
    const a = F.scaled_dot_product_attention(q, k, v, { isCausal: true });
    const b = F.scaled_dot_product_attention(q, k, v, { attnMask: tril });
    assertAllClose(a.toFloat32Array(), b.toFloat32Array(), 0, 0);
    // the first query sees only the first key, so its output is v[0]
    assertAllClose(a.select(1, 0).toFloat32Array(), v.select(1, 0).toFloat32Array(), 1e-7, 0);
  });

  it("masked-out keys have no influence", () => {
    const q = randomTensor([3, 4], 43);
    const k = randomTensor([5, 4], 44);
    const v = randomTensor([5, 2], 45);
    const mask = Tensor.fromStorage(Uint8Array.from([1, 0, 1, 1, 0]), [5], "bool");
    const v2 = v.clone();
    const d = v2.dataSync() as Float32Array;
    d[2] = 100; // key 1
    d[9] = -100; // key 4
    const a = F.scaled_dot_product_attention(q, k, v, { attnMask: mask });
    const b = F.scaled_dot_product_attention(q, k, v2, { attnMask: mask });
    assertAllClose(a.toFloat32Array(), b.toFloat32Array(), 0, 0);
  });

  it("the fused kernel gives zeros for a fully masked query row", () => {
    const mask = Tensor.fromStorage(Uint8Array.from([0, 0, 0, 1, 0, 1]), [2, 3], "bool");
    const out = F.scaled_dot_product_attention(
      randomTensor([2, 2], 46),
      randomTensor([3, 2], 47),
      randomTensor([3, 2], 48),
      {
        attnMask: mask,
      },
    );
    assert.deepEqual(Array.from(out.select(0, 0).toFloat32Array()), [0, 0]);
    assert.ok(out.select(0, 1).toFloat32Array().every(Number.isFinite));
    // the differentiable composition (taken when gradients are needed) agrees, and its gradients stay finite
    const [q, k, v] = [randomTensor([2, 2], 46), randomTensor([3, 2], 47), randomTensor([3, 2], 48)];
    for (const t of [q, k, v]) t.requiresGrad = true;
    const composed = F.scaled_dot_product_attention(q, k, v, { attnMask: mask });
    assertAllClose(composed.toFloat32Array(), out.toFloat32Array(), 1e-6, 1e-6);
    composed.sum().backward();
    for (const t of [q, k, v]) assert.ok(t.grad!.toFloat32Array().every(Number.isFinite));
    assert.deepEqual(
      Array.from(q.grad!.select(0, 0).toFloat32Array()),
      [0, 0],
      "no gradient from a masked row",
    );
  });

  it("gradients of q, k, v through the composition (with bool mask, causal, float mask)", () => {
    const q = randomTensor([2, 3, 4], 50);
    const k = randomTensor([2, 5, 4], 51);
    const v = randomTensor([2, 5, 3], 52);
    gradcheck((a, b, c) => F.scaled_dot_product_attention(a, b, c), [q, k, v]);
    const mask = randomBoolMask([3, 5], 53);
    gradcheck(
      (a, b, c) => F.scaled_dot_product_attention(a, b, c, { attnMask: mask, scale: 0.7 }),
      [randomTensor([2, 3, 4], 54), randomTensor([2, 5, 4], 55), randomTensor([2, 5, 3], 56)],
    );
    gradcheck(
      (a, b, c) => F.scaled_dot_product_attention(a, b, c, { isCausal: true }),
      [
        randomTensor([4, 3], 57),
        randomTensor([4, 3], 58),
        randomTensor([4, 2], 59).transpose(0, 1).contiguous().transpose(0, 1),
      ],
    );
    gradcheck(
      (a, m) =>
        F.scaled_dot_product_attention(a, randomTensor([5, 4], 60), randomTensor([5, 3], 61), {
          attnMask: m,
        }),
      [randomTensor([3, 4], 62), randomTensor([3, 5], 63)],
    );
  });

  it("reads head-split views in place and returns the heads interleaved as q had them", () => {
    const [b, l, h, d] = [2, 9, 3, 5];
    const split = (t: Tensor) => F.permute(F.reshape(t, [b, -1, h, d]), [0, 2, 1, 3]);
    const q = split(randomTensor([b, l, h * d], 41));
    const k = split(randomTensor([b, 4, h * d], 42));
    const v = split(randomTensor([b, 4, h * d], 43));
    const [fusedOut, composedOut] = bothPaths(q, k, v);
    assertAllClose(fusedOut.toFloat32Array(), composedOut.toFloat32Array(), 1e-6, 1e-5);
    // [b, h, l, d] whose memory is [b, l, h, d]: merging the heads back is a view
    assert.deepEqual(fusedOut.shape, [b, h, l, d]);
    assert.ok(F.permute(fusedOut, [0, 2, 1, 3]).isContiguous());
    // k shared by every head through a broadcast (stride 0) view
    const kShared = F.expand(randomTensor([b, 1, 4, d], 44), [b, h, 4, d]);
    const [f2, c2] = bothPaths(q, kShared, v);
    assertAllClose(f2.toFloat32Array(), c2.toFloat32Array(), 1e-6, 1e-5);
  });

  it("rejects mismatched shapes and conflicting options", () => {
    const q = randomTensor([2, 3, 4], 70);
    assert.throws(
      () => F.scaled_dot_product_attention(q, randomTensor([2, 5, 3], 71), randomTensor([2, 5, 3], 72)),
      ShapeError,
    );
    assert.throws(
      () => F.scaled_dot_product_attention(q, randomTensor([2, 5, 4], 73), randomTensor([2, 4, 3], 74)),
      ShapeError,
    );
    assert.throws(
      () => F.scaled_dot_product_attention(q, randomTensor([3, 5, 4], 75), randomTensor([3, 5, 3], 76)),
      ShapeError,
    );
    const k = randomTensor([2, 5, 4], 77);
    const v = randomTensor([2, 5, 3], 78);
    assert.throws(
      () => F.scaled_dot_product_attention(q, k, v, { attnMask: randomTensor([4, 5], 79) }),
      ShapeError,
    );
    assert.throws(
      () => F.scaled_dot_product_attention(q, k, v, { attnMask: randomBoolMask([3, 5], 80), isCausal: true }),
      ArgumentError,
    );
  });
});
