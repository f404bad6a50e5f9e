// The Winograd convolution's output-channel chunks: with tiny budgets for the transformed filters and inputs
// (set before the first convolution of this process), the filters of a conv go in several chunks, with all tiles
// in one block or, when the inputs exceed their budget too, in several blocks that each prepare every chunk.
// Both tile sizes, float and float16 weights, 1 and 2 threads, against the reference direct convolution.
// C = O = 40: 3 chunks of at most 14 output channels (the AVX-512 panel height) for both tile sizes; the inputs of
// up to ~70 F(4x4) tiles (~150 F(2x2) tiles) fit their budget
process.env.DIFFUSE_WINOGRAD_UBUDGET = String(16 * 14 * 40);
process.env.DIFFUSE_WINOGRAD_VBUDGET = String(100000);

import { after, describe, it } from "node:test";
import { nativeAddon } from "../../src/backend/native/index.js";
import { float32ArrayToHalf, halfArrayToFloat32 } from "../../src/tensor/dtype.js";
import { testRng } from "../helpers.js";
import { close, conv3x3Params, nat, randArray, ref, skip } from "./native-helpers.js";

describe("native conv2d: Winograd with chunked filters", { skip }, () => {
  const addon = nativeAddon!;
  const initial = addon?.info();
  after(() => addon.setNumThreads(initial.threads));
  const rng = testRng(77);
  // [n, c, o, h, w]: F(2x2), 120 tiles in one block; F(4x4), 25 tiles in one block; F(4x4), 324 tiles, more
  // than the input budget holds: two blocks
  const cases: [number, number, number, number, number][] = [
    [4, 40, 40, 9, 11],
    [1, 40, 40, 19, 17],
    [4, 40, 40, 33, 34],
  ];
  for (const threads of [1, 2]) {
    it(`matches the direct convolution (${threads} thread(s))`, () => {
      addon.setNumThreads(threads);
      for (const [n, c, o, h, w] of cases) {
        const p = conv3x3Params(n, c, o, h, w, 1);
        const x = randArray(n * c * h * w, rng);
        const wt = randArray(o * c * 9, rng, -0.2, 0.2);
        const bias = randArray(o, rng);
        const want = new Float32Array(n * o * h * w);
        ref.conv2d(x, wt, bias, want, p);
        const got = new Float32Array(want.length).fill(Number.NaN);
        nat.conv2d(x, wt, bias, got, p);
        close(got, want, `N${n} C${c} O${o} ${h}x${w}`, 1e-5);
        const bits = float32ArrayToHalf(wt);
        ref.conv2d(x, halfArrayToFloat32(bits), bias, want, p);
        nat.halfWeights!.conv2dHalfW(x, bits, bias, got.fill(Number.NaN), p);
        close(got, want, `N${n} C${c} O${o} ${h}x${w} float16`, 1e-5);
      }
    });
  }
});
