import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nativeBackend } from "../../src/backend/native/index.js";
import { F, noGrad, ShapeError, tensor, withBackend } from "../../src/index.js";
import { assertAllClose, gradcheck, randomTensor } from "../helpers.js";

describe("geglu", () => {
  it("is hidden * gelu(gate) over the two halves of the last dim", () => {
    const x = tensor([
      [1, -2, 0.5, -1],
      [3, 4, -3, 2],
    ]);
    const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));
    const want = [1 * gelu(0.5), -2 * gelu(-1), 3 * gelu(-3), 4 * gelu(2)];
    assertAllClose(noGrad(() => F.geglu(x)).toFloat32Array(), want, 1e-6, 1e-6);
  });

  it("the fused kernel equals the chunk/gelu/mul composition (non-contiguous input, 3-D)", () => {
    const x = F.transpose(randomTensor([2, 10, 5], 3, -4, 4), 1, 2); // [2, 5, 10], strided
    const [h, g] = F.chunk(x, 2, -1);
    const want = F.mul(h!, F.gelu(g!));
    const got = noGrad(() => F.geglu(x));
    assert.deepEqual(got.shape, [2, 5, 5]);
    assertAllClose(got.toFloat32Array(), want.toFloat32Array(), 1e-6, 1e-5);
  });

  it("has the composition's gradient", () => {
    gradcheck((x) => F.geglu(x), [randomTensor([3, 8], 5, -2, 2)]);
  });

  it("rejects an odd last dim", () => {
    assert.throws(() => F.geglu(randomTensor([2, 3], 1)), ShapeError);
  });

  it("linearGeglu = geglu(linear(x, w, b)) on every backend, float16 weights too, and keeps gradients", () => {
    const x = randomTensor([2, 33, 24], 7, -1, 1);
    const w = randomTensor([40, 24], 8, -0.4, 0.4);
    const b = randomTensor([40], 9, -1, 1);
    const want = noGrad(() => F.geglu(F.linear(x, w, b)));
    for (const backend of nativeBackend ? ["reference", "native"] : ["reference"]) {
      withBackend(backend, () => {
        const got = noGrad(() => F.linearGeglu(x, w, b));
        assert.deepEqual(got.shape, [2, 33, 20]);
        assertAllClose(got.toFloat32Array(), want.toFloat32Array(), 1e-5, 1e-5);
        const w16 = w.to("float16");
        const half = noGrad(() => F.linearGeglu(x, w16, null));
        const halfWant = noGrad(() => F.geglu(F.linear(x, w16.float(), null)));
        assertAllClose(half.toFloat32Array(), halfWant.toFloat32Array(), 1e-5, 1e-5);
      });
    }
    gradcheck(
      (xi, wi, bi) => F.linearGeglu(xi, wi, bi),
      [randomTensor([3, 4], 10, -1, 1), randomTensor([6, 4], 11, -1, 1), randomTensor([6], 12, -1, 1)],
    );
  });
});

/** erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt by Simpson's rule on 2000 panels (~1e-13 for |x| <= 3). */
function erf(x: number): number {
  const n = 2000;
  const h = x / n;
  let s = 0;
  for (let i = 0; i <= n; i++) {
    const w = i === 0 || i === n ? 1 : i % 2 ? 4 : 2;
    s += w * Math.exp(-((i * h) ** 2));
  }
  return ((s * h) / 3) * (2 / Math.sqrt(Math.PI));
}
