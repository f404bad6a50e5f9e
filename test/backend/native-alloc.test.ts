// The native output pool (native/src/pool.cc): large arrays come back to their size class when the GC frees
// them and are handed out again without new memory; small ones are plain arrays; bad counts are refused.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { nativeAddon } from "../../src/backend/native/index.js";
import { skip } from "./native-helpers.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

describe("native output pool", { skip }, () => {
  const addon = nativeAddon!;

  it("recycles large arrays freed by the GC and keeps small ones plain", () => {
    const before = addon.poolStats();
    const n = 1 << 20; // 4 MB
    for (let round = 0; round < 6; round++) {
      let a: Float32Array | null = addon.allocF32(n);
      assert.equal(a.length, n);
      a.fill(round); // the whole block is writable
      assert.equal(a[n - 1], round);
      a = null;
      gc();
    }
    const after = addon.poolStats();
    assert.ok(after.hits - before.hits >= 3, `pool hits ${after.hits - before.hits} of 6 allocations`);
    assert.ok(after.misses - before.misses <= 3, `pool misses ${after.misses - before.misses}`);
    const small = addon.allocF32(10);
    assert.equal(small.length, 10);
    // (the poison test mode pools every size, NaN-filled)
    if (process.env.DIFFUSE_POOL_POISON !== "1")
      assert.deepEqual(Array.from(small), new Array(10).fill(0), "small arrays are ordinary zeroed arrays");
    assert.equal(addon.allocF32(0).length, 0);
    addon.poolTrim();
    assert.equal(addon.poolStats().idleBytes, 0);
  });

  it("refuses counts that are not non-negative integers", () => {
    assert.throws(() => addon.allocF32(-1), /element count must be an integer/);
    assert.throws(() => addon.allocF32(1.5), /element count must be an integer/);
    assert.throws(() => addon.allocF32(Number.NaN), /element count must be an integer/);
  });
});
