import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { Generator } from "../../src/tensor/generator.js";
import { DataLoader } from "../../src/train/data/loader.js";
import { HELD_OUT_PER_CLASS, loadMnist, subsetPerClass } from "../../src/train/data/mnist.js";

const PX = 32 * 32;

/** The package's raw digits of one class (28x28 in [0, 1]). */
function rawDigits(d: number): number[] {
  const pkg = createRequire(import.meta.url).resolve("mnist/package.json");
  return JSON.parse(readFileSync(join(dirname(pkg), "src", "digits", `${d}.json`), "utf8")).data;
}

describe("MNIST data", () => {
  const { train, heldOut } = loadMnist();

  it("splits the 10,000 digits 9,000 / 1,000 with 100 held out per class", () => {
    assert.equal(train.count, 9000);
    assert.equal(heldOut.count, 1000);
    assert.equal(train.images.length, 9000 * PX);
    assert.equal(heldOut.images.length, 1000 * PX);
    const held = new Array(10).fill(0);
    for (const c of heldOut.labels) held[c]++;
    assert.deepEqual(held, new Array(10).fill(HELD_OUT_PER_CLASS));
    const perClass = new Array(10).fill(0);
    for (const c of train.labels) perClass[c]++;
    for (let d = 0; d < 10; d++) assert.equal(perClass[d] + 100, rawDigits(d).length / 784);
  });

  it("pads to 32x32 with a -1 border and scales [0, 1] to [-1, 1]", () => {
    let min = Infinity;
    let max = -Infinity;
    for (const v of train.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.equal(min, -1);
    assert.equal(max, 1);
    // the first training digit is the package's first "0"; the first held-out digit is the 101st-last "0"
    const zeros = rawDigits(0);
    const n0 = zeros.length / 784;
    for (const [set, index] of [
      [train, 0],
      [heldOut, n0 - HELD_OUT_PER_CLASS],
    ] as const) {
      const img = set.images.subarray(0, PX);
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const inside = y >= 2 && y < 30 && x >= 2 && x < 30;
          const want = inside ? Math.fround(zeros[index * 784 + (y - 2) * 28 + (x - 2)] * 2 - 1) : -1;
          assert.equal(img[y * 32 + x], want, `pixel (${y}, ${x})`);
        }
      }
    }
  });

  it("is the same split on every call and train and held-out images do not overlap", () => {
    assert.equal(loadMnist(), loadMnist());
    // held-out digits are the last of each class: the last train "0" is followed by the first held-out "0"
    assert.equal(train.labels[0], 0);
    assert.equal(heldOut.labels[0], 0);
    assert.equal(heldOut.labels[999], 9);
  });

  it("subsetPerClass takes the first n of each class", () => {
    const s = subsetPerClass(train, 3);
    assert.equal(s.count, 30);
    assert.deepEqual(
      [...s.labels],
      [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9],
    );
    assert.deepEqual(s.images.subarray(0, PX), train.images.subarray(0, PX));
  });
});

describe("DataLoader", () => {
  const data = {
    images: Float32Array.from({ length: 10 * 4 }, (_, i) => Math.floor(i / 4)),
    labels: Int32Array.from({ length: 10 }, (_, i) => i),
    count: 10,
  };
  const ids = (l: DataLoader, n: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(...l.next().labels);
    return out;
  };

  it("yields batches [B, 1, side, side] whose images match their labels", () => {
    const l = new DataLoader(data, { batchSize: 3, generator: new Generator(5) });
    const b = l.next();
    assert.deepEqual(b.images.shape, [3, 1, 2, 2]);
    const px = b.images.toFloat32Array();
    b.labels.forEach((c, k) => {
      assert.deepEqual([...px.subarray(k * 4, k * 4 + 4)], [c, c, c, c]);
    });
  });

  it("visits every image once per epoch, in a new order each epoch", () => {
    const l = new DataLoader(data, { batchSize: 5, generator: new Generator(1) });
    const e0 = ids(l, 2);
    const e1 = ids(l, 2);
    assert.deepEqual(
      [...e0].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.deepEqual(
      [...e1].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.notDeepEqual(e0, e1);
    assert.equal(l.epoch, 1);
    l.next();
    assert.equal(l.epoch, 2);
  });

  it("batches span epochs when the batch does not divide the set", () => {
    const l = new DataLoader(data, { batchSize: 4, generator: new Generator(1) });
    const seen = ids(l, 5); // 20 images = exactly two epochs
    assert.deepEqual(
      seen.slice(0, 10).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.deepEqual(
      seen.slice(10).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  });

  it("is deterministic for a seed and differs across seeds", () => {
    const a = ids(new DataLoader(data, { batchSize: 3, generator: new Generator(7) }), 8);
    const b = ids(new DataLoader(data, { batchSize: 3, generator: new Generator(7) }), 8);
    const c = ids(new DataLoader(data, { batchSize: 3, generator: new Generator(8) }), 8);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it("resumes from a saved state (through JSON) with the batches an uninterrupted loader yields", () => {
    const full = ids(new DataLoader(data, { batchSize: 3, generator: new Generator(3) }), 12);
    const first = new DataLoader(data, { batchSize: 3, generator: new Generator(3) });
    const head = ids(first, 5);
    const state = JSON.parse(JSON.stringify(first.stateDict()));
    const resumed = new DataLoader(data, { batchSize: 3, generator: new Generator(999) });
    resumed.loadStateDict(state);
    assert.deepEqual([...head, ...ids(resumed, 7)], full);
  });

  it("rejects bad sizes and foreign states", () => {
    assert.throws(() => new DataLoader(data, { batchSize: 0 }), /batchSize/);
    assert.throws(() => new DataLoader({ ...data, count: 0 }, { batchSize: 1 }), /non-empty/);
    const l = new DataLoader(data, { batchSize: 2 });
    const other = new DataLoader(
      { ...data, images: data.images.subarray(0, 20), labels: data.labels.subarray(0, 5), count: 5 },
      { batchSize: 2 },
    );
    assert.throws(() => l.loadStateDict(other.stateDict()), /loader over 10 images/);
  });
});
