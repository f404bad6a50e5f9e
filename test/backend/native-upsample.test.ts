// The native nearest-neighbour resize against the reference backend, bit for bit: the UNet's 2x upsample (the
// doubled-columns path), fractional, shrinking and uneven scales (the index path), on 1 and 2 threads; and the
// checks on its arguments (sizes, lengths, overlap).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nativeAddon } from "../../src/backend/native/index.js";
import { testRng } from "../helpers.js";
import { nat, randArray, ref, restoreKernelAndThreadsAfter, skip } from "./native-helpers.js";

describe("native upsampleNearest", { skip }, () => {
  const addon = nativeAddon!;
  const initial = restoreKernelAndThreadsAfter();
  const rng = testRng(91);

  it("gives the reference's pixels exactly", () => {
    // planes, h, w, oh, ow
    const cases: [number, number, number, number, number][] = [
      [40, 16, 16, 32, 32],
      [3, 5, 7, 10, 14],
      [2, 5, 7, 13, 9],
      [4, 9, 6, 4, 3],
      [1, 1, 1, 3, 5],
      [130, 8, 8, 24, 16],
      [2, 1024, 1024, 2048, 2048], // large enough to split over the threads
    ];
    for (const threads of [1, 2]) {
      addon.setNumThreads(threads);
      for (const [planes, h, w, oh, ow] of cases) {
        const x = randArray(planes * h * w, rng);
        const want = new Float32Array(planes * oh * ow);
        ref.upsampleNearest(x, want, planes, h, w, oh, ow);
        const got = new Float32Array(want.length).fill(Number.NaN);
        nat.upsampleNearest(x, got, planes, h, w, oh, ow);
        assert.deepEqual(got, want, `${planes} planes ${h}x${w} -> ${oh}x${ow}, ${threads} thread(s)`);
      }
    }
    addon.setNumThreads(initial.threads);
  });

  it("rejects impossible sizes, arrays too short or shared", () => {
    const x = new Float32Array(2 * 4 * 4);
    assert.throws(
      () => addon.upsampleNearest(x, new Float32Array(128), 2, 0, 4, 8, 8),
      /expected planes >= 0, h and w >= 1, oh and ow >= 0; got planes 2, 0x4 -> 8x8/,
    );
    assert.throws(
      () => addon.upsampleNearest(x, new Float32Array(10), 2, 4, 4, 8, 8),
      /out: needs 128 elements/,
    );
    assert.throws(
      () => addon.upsampleNearest(x.subarray(1), new Float32Array(128), 2, 4, 4, 8, 8),
      /x: needs 32/,
    );
    const shared = new Float32Array(200);
    assert.throws(
      () => addon.upsampleNearest(shared.subarray(0, 32), shared.subarray(16, 144), 2, 4, 4, 8, 8),
      /share memory/,
    );
  });
});
