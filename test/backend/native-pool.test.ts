// The native thread pool under resizing: a worker created by setNumThreads must wait for the next parallel call
// (it once took the finished previous job for a new one and could race the next call's setup). Parallel kernels
// right after each resize give the single-threaded result every time.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { nativeAddon } from "../../src/backend/native/index.js";
import { testRng } from "../helpers.js";
import { nat, rowMajorGemm, skip } from "./native-helpers.js";

describe("native thread pool", { skip }, () => {
  const addon = nativeAddon!;
  const initial = addon?.info();
  after(() => addon.setNumThreads(initial.threads));

  it("stays correct when resized between parallel calls", () => {
    const rng = testRng(41);
    const [m, n, k] = [150, 333, 200]; // 20 MFLOP: split over the pool
    const base = rowMajorGemm(m, n, k, rng);
    addon.setNumThreads(1);
    const want = new Float32Array(m * n);
    nat.gemm({ ...base, out: want });
    for (let i = 0; i < 300; i++) {
      assert.equal(addon.setNumThreads(1 + (i % 3)), 1 + (i % 3));
      const got = new Float32Array(m * n);
      nat.gemm({ ...base, out: got });
      assert.deepEqual(got, want, `call ${i} after resizing to ${1 + (i % 3)} threads`);
    }
  });
});
