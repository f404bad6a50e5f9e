// The native GEGLU kernel against the reference at every SIMD level, on 1 and 2 threads, including rows too few
// to split, a half width that is not a multiple of the vector width, and NaN/infinite gates.
import { after, describe, it } from "node:test";
import { nativeAddon } from "../../src/backend/native/index.js";
import { testRng } from "../helpers.js";
import { close, kernels, nat, randArray, ref, skip } from "./native-helpers.js";

describe("native geglu", { skip }, () => {
  const addon = nativeAddon!;
  const initial = addon?.info();
  after(() => {
    addon.setKernel("");
    addon.setNumThreads(initial.threads);
  });
  const rng = testRng(57);
  const shapes: [number, number][] = [
    [1, 1],
    [3, 17],
    [64, 1280],
    [300, 333],
  ];

  for (const kernel of kernels) {
    it(`matches the reference (${kernel})`, (t) => {
      if (!addon.setKernel(kernel)) return t.skip(`no ${kernel} kernel on this CPU`);
      try {
        for (const threads of [1, 2]) {
          addon.setNumThreads(threads);
          for (const [rows, half] of shapes) {
            const x = randArray(rows * 2 * half, rng, -5, 5);
            if (rows * half > 2) {
              x[half] = Number.NaN; // gate of row 0, column 0
              x[half + 1] = Number.POSITIVE_INFINITY;
              x[half + 2] = Number.NEGATIVE_INFINITY;
            }
            const want = new Float32Array(rows * half);
            const got = new Float32Array(rows * half).fill(Number.NaN);
            ref.geglu(x, want, rows, half);
            nat.geglu(x, got, rows, half);
            close(got, want, `${kernel} ${threads} thread(s) rows ${rows} half ${half}`);
          }
        }
      } finally {
        addon.setKernel("");
        addon.setNumThreads(initial.threads);
      }
    });
  }
});
