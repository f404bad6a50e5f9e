import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DTypeError, F, ShapeError, tensor } from "../../src/index.js";
import {
  assertAllClose,
  assertClose,
  fixturesDir,
  gradcheck,
  randomTensor,
  skipWithoutFixtures,
} from "../helpers.js";

/** Reads the float32 entries of a safetensors file (enough for the op fixtures). */
function readF32Safetensors(path: string): Map<string, { shape: number[]; data: Float32Array }> {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString("utf8")) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLen;
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, e] of Object.entries(header)) {
    if (name === "__metadata__" || e.dtype !== "F32") continue;
    const bytes = buf.subarray(base + e.data_offsets[0], base + e.data_offsets[1]);
    const data = new Float32Array(bytes.length / 4);
    for (let i = 0; i < data.length; i++) data[i] = bytes.readFloatLE(i * 4);
    out.set(name, { shape: e.shape, data });
  }
  return out;
}

describe("softmax / log_softmax", () => {
  it("match hand-computed values", () => {
    const x = tensor([
      [1, 2, 3],
      [0, 0, 0],
    ]);
    // softmax([1, 2, 3]) = exp(x) / sum(exp(x))
    assertAllClose(
      F.softmax(x).toFloat32Array(),
      [0.09003057, 0.24472847, 0.66524096, 1 / 3, 1 / 3, 1 / 3],
      1e-7,
      1e-6,
    );
    assertAllClose(
      x.log_softmax(1).toFloat32Array(),
      [-2.40760596, -1.40760596, -0.40760596, -Math.log(3), -Math.log(3), -Math.log(3)],
      1e-6,
      1e-6,
    );
    // along dim 0: columns (1, 0), (2, 0), (3, 0)
    const s = 1 / (1 + Math.E);
    assertAllClose(
      x.softmax(0).toFloat32Array(),
      [1 - s, 0.88079708, 0.95257413, s, 0.11920292, 0.04742587],
      1e-7,
      1e-6,
    );
    // large values are stable (max subtracted)
    assertAllClose(F.softmax(tensor([1000, 1000])).toFloat32Array(), [0.5, 0.5], 0, 0);
  });

  it("masked entries and scalars behave as in PyTorch", () => {
    const inf = Number.POSITIVE_INFINITY;
    assert.deepEqual(F.softmax(tensor([0, -inf, 0])).tolist(), [0.5, 0, 0.5]);
    assert.deepEqual(F.log_softmax(tensor([0, -inf])).tolist(), [0, -inf]);
    // a fully masked row is 0/0 = NaN in PyTorch too
    assert.ok((F.softmax(tensor([-inf, -inf])).tolist() as number[]).every(Number.isNaN));
    assert.equal(F.softmax(tensor(3)).item(), 1);
    assert.equal(F.log_softmax(tensor(3), 0).item(), 0);
  });

  it("any dim of a non-contiguous input equals the last-dim result of a permuted copy", () => {
    const base = randomTensor([4, 3, 5], 1, -3, 3);
    const x = base.permute(2, 0, 1); // [5, 4, 3], non-contiguous
    for (const dim of [0, 1, 2, -1, -2, -3]) {
      const d = dim < 0 ? dim + 3 : dim;
      const order = [0, 1, 2].filter((i) => i !== d).concat([d]);
      const inverse = order.map((_, i) => order.indexOf(i));
      const want = x.permute(order).contiguous().softmax(-1).permute(inverse).contiguous();
      const got = x.softmax(dim);
      assert.deepEqual(got.shape, [5, 4, 3]);
      assert.ok(got.isContiguous());
      assertAllClose(got.toFloat32Array(), want.toFloat32Array(), 1e-7, 1e-6, `softmax dim ${dim}`);
      const sums = got.sum(d).toFloat32Array();
      assertAllClose(sums, new Float32Array(sums.length).fill(1), 1e-6, 0, `sums dim ${dim}`);
      assertAllClose(
        x.log_softmax(dim).toFloat32Array(),
        Float32Array.from(got.toFloat32Array(), Math.log),
        1e-5,
        1e-5,
        `log_softmax dim ${dim}`,
      );
    }
  });

  it("matches the PyTorch fixtures (values and gradients)", { skip: skipWithoutFixtures() }, () => {
    const fx = readF32Safetensors(join(fixturesDir()!, "ops", "ops.safetensors"));
    for (const [name, fn] of [
      ["softmax_last", F.softmax],
      ["log_softmax_last", F.log_softmax],
    ] as const) {
      const get = (k: string) => {
        const e = fx.get(`${name}.${k}`);
        assert.ok(e, `fixture ${name}.${k} missing`);
        return tensor(e.data.slice(), e.shape);
      };
      const x = get("in0").requiresGrad_();
      const out = fn(x, -1);
      assertClose(out.toFloat32Array(), get("out").toFloat32Array(), 1e-6, `${name} out`);
      out.mul(get("w_out")).sum().backward();
      assertClose(x.grad!.toFloat32Array(), get("grad0").toFloat32Array(), 1e-5, `${name} grad`);
    }
  });

  it("gradients (odd sizes, negative dims, non-contiguous inputs)", () => {
    gradcheck((x) => F.softmax(x, 1), [randomTensor([3, 5, 7], 1, -2, 2)]);
    gradcheck((x) => F.softmax(x, -1), [randomTensor([7, 3], 2, -2, 2).t()]);
    gradcheck((x) => F.log_softmax(x, -2), [randomTensor([3, 5, 7], 3, -2, 2).permute(2, 0, 1)]);
    gradcheck((x) => x.log_softmax(0), [randomTensor([5], 4, -2, 2)]);
    // softmax feeding further ops (gradient through the output used twice)
    gradcheck((x) => x.softmax(-1).mul(x.log_softmax(-1)), [randomTensor([2, 9], 5, -2, 2)]);
  });

  it("rejects integer tensors and bad dims", () => {
    assert.throws(() => F.softmax(tensor([1, 2], undefined, { dtype: "int32" })), DTypeError);
    assert.throws(() => F.softmax(tensor([1, 2]), 1), ShapeError);
    assert.throws(() => F.log_softmax(tensor([[1, 2]]), -3), /dim -3 is out of range/);
  });
});
