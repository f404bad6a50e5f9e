// The vectorised math (AVX-512, AVX2 and scalar) at the edges of the float range: overflow and underflow of exp,
// saturation of sigmoid / SiLU / GELU, huge values, NaN, signed zeros, subnormals. Each element against the
// reference backend: NaN where it gives NaN, infinities exactly, else a relative error below 1e-5 (plus 1e-12
// absolute for the far tails).
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { UnaryOp } from "../../src/backend/index.js";
import { nativeAddon } from "../../src/backend/native/index.js";
import { kernels, nat, ref, skip } from "./native-helpers.js";

const edges = [
  0,
  -0,
  1e-40,
  -1e-40,
  1e-20,
  0.5,
  -0.5,
  1,
  -1,
  3,
  -3,
  5.5,
  -5.5,
  9,
  -9,
  15,
  -15,
  20,
  -20,
  30,
  -30,
  60,
  -60,
  80,
  -80,
  87,
  -87,
  88.5,
  -88.5,
  88.8,
  89,
  -89,
  100,
  -100,
  103,
  -103,
  104,
  -104,
  110,
  -110,
  1e4,
  -1e4,
  3e38,
  -3e38,
  Number.NaN,
];

describe("native vector math at the edges", { skip }, () => {
  const addon = nativeAddon!;
  after(() => addon.setKernel(""));

  for (const kernel of kernels) {
    it(`exp, sigmoid, silu, gelu, gelu_tanh (${kernel})`, (t) => {
      if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} code on this CPU`);
      try {
        // 3 copies so the vector loops and the tails both see every value
        const x = new Float32Array([...edges, ...edges, ...edges]);
        const view = { data: x, offset: 0, strides: [1] };
        for (const op of ["exp", "sigmoid", "silu", "gelu", "gelu_tanh"] as UnaryOp[]) {
          const want = new Float32Array(x.length);
          const got = new Float32Array(x.length);
          ref.unary(op, view, want, [x.length]);
          nat.unary(op, view, got, [x.length]);
          for (let i = 0; i < x.length; i++) {
            const [g, w] = [got[i]!, want[i]!];
            const what = `${op}(${x[i]}) = ${g}, want ${w}`;
            // the reference's own value at +-Infinity (a NaN for gelu) is not a property worth pinning
            if (!Number.isFinite(x[i]!) && !Number.isNaN(x[i]!)) continue;
            if (Number.isNaN(w)) assert.ok(Number.isNaN(g), what);
            else if (!Number.isFinite(w)) assert.equal(g, w, what);
            // 1e-12 absolute: far-tail values below it may differ (the reference's 1 + erf(x) cancels to 0)
            else assert.ok(Math.abs(g - w) <= 1e-5 * Math.abs(w) + 1e-12, what);
          }
        }
      } finally {
        addon.setKernel("");
      }
    });
  }
});
