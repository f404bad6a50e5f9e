import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ArgumentError } from "../../src/tensor/errors.js";
import { defaultGenerator, Generator } from "../../src/tensor/generator.js";
import { fixturesDir, skipWithoutFixtures } from "../helpers.js";

interface RngCase {
  name: string;
  seed: number;
  shape: number[];
  kind?: "rand";
  stream_index?: number;
}

/** Minimal safetensors reader (8-byte LE header length, JSON header, raw data); F32 tensors only. */
function readF32Safetensors(path: string): Map<string, Float32Array> {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString("utf8")) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const out = new Map<string, Float32Array>();
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    assert.equal(info.dtype, "F32", name);
    const [a, b] = info.data_offsets;
    const bytes = buf.subarray(8 + headerLen + a, 8 + headerLen + b);
    out.set(
      name,
      new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
    );
  }
  return out;
}

/** Index of the first element whose bits differ (so -0 vs +0 and NaNs count), or -1. */
function firstBitDifference(got: Float32Array, want: Float32Array): number {
  assert.equal(got.length, want.length);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++) if (g[i] !== w[i]) return i;
  return -1;
}

const product = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

describe("Generator vs PyTorch fixtures", { skip: skipWithoutFixtures() }, () => {
  it("every randn/rand fixture case matches bit for bit", () => {
    const dir = join(fixturesDir()!, "rng");
    const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as { cases: RngCase[] };
    const tensors = readF32Safetensors(join(dir, "randn.safetensors"));
    const streams = new Map<number, Generator>();
    const failures: string[] = [];
    for (const c of index.cases) {
      const n = product(c.shape);
      let got: Float32Array;
      if (c.kind === "rand") {
        got = new Generator().manualSeed(c.seed).uniform(n);
      } else if (c.stream_index !== undefined) {
        // Consecutive draws from one generator: stream_index 0 starts it.
        if (c.stream_index === 0) streams.set(c.seed, new Generator().manualSeed(c.seed));
        got = streams.get(c.seed)!.normal(n);
      } else {
        got = new Generator().manualSeed(c.seed).normal(n);
      }
      const want = tensors.get(c.name)!;
      const i = firstBitDifference(got, want);
      if (i >= 0) failures.push(`${c.name}[${i}]: got ${got[i]}, want ${want[i]}`);
    }
    const matched = index.cases.length - failures.length;
    console.log(`rng fixtures: ${matched}/${index.cases.length} cases bit-identical`);
    assert.ok(index.cases.length >= 56, "fixture index lost cases");
    assert.deepEqual(failures, []);
  });
});

describe("Generator engine", () => {
  it("is MT19937: the 10000th output for seed 5489 is 4123659995 (C++ [rand.predef])", () => {
    const g = new Generator(5489);
    let x = 0;
    for (let i = 0; i < 10000; i++) x = g.nextUint32();
    assert.equal(x, 4123659995);
  });

  it("seeds like torch: default seed, bigint/number equivalence, only the low 32 bits reach the engine", () => {
    assert.equal(new Generator().initialSeed(), 67280421310721);
    assert.equal(new Generator().manualSeed(7).initialSeed(), 7);
    assert.deepEqual(new Generator().manualSeed(42n).normal(40), new Generator().manualSeed(42).normal(40));
    const wrapped = new Generator().manualSeed(-1);
    assert.equal(wrapped.initialSeed(), 2 ** 64);
    assert.deepEqual(wrapped.uniform(8), new Generator().manualSeed(0xffffffff).uniform(8));
    assert.deepEqual(new Generator().manualSeed(2n ** 32n + 3n).uniform(8), new Generator(3).uniform(8));
    assert.throws(() => new Generator().manualSeed(1.5), ArgumentError);
    assert.throws(() => new Generator().manualSeed(2n ** 64n), ArgumentError);
  });

  it("uniform values are k * 2^-24 from the low 24 bits of each output", () => {
    const a = new Generator(123);
    const b = a.clone();
    const u = a.uniform(1000);
    for (let i = 0; i < u.length; i++) {
      assert.equal(u[i], (b.nextUint32() & 0xffffff) / 2 ** 24);
      assert.ok(u[i]! >= 0 && u[i]! < 1);
    }
  });
});

describe("Generator.normal", () => {
  it("small draws share the cached spare normal across calls; manualSeed clears it", () => {
    const pair = new Generator(5).normal(2);
    const g = new Generator(5);
    const first = g.normal(1);
    assert.equal(first[0], pair[0]);
    assert.equal(g.normal(1)[0], pair[1]); // the cached r*sin, no new engine output
    // A 3-element draw leaves a spare; the next small draw starts with it.
    const five = new Generator(9).normal(5);
    const h = new Generator(9);
    const three = h.normal(3);
    const two = h.normal(2);
    assert.deepEqual([...three, ...two], [...five]);
    // Re-seeding drops the spare: the first value comes back, not the cached one.
    g.manualSeed(5);
    assert.equal(g.normal(1)[0], pair[0]);
  });

  it("n >= 16 never touches the scalar spare", () => {
    const g = new Generator(11);
    g.normal(1); // leaves the spare r*sin
    const ref = new Generator(11);
    ref.normal(2); // same engine outputs, spare consumed
    assert.deepEqual(g.normal(32), ref.normal(32));
    // g still holds its spare: its next small draw is the second value of a fresh pair.
    assert.equal(g.normal(1)[0], new Generator(11).normal(2)[1]);
    assert.deepEqual(g.normal(4), ref.normal(4));
  });

  it("a partial last block consumes 16 extra outputs and recomputes the last 16 values", () => {
    const a = new Generator(3);
    a.normal(17);
    const b = new Generator(3);
    for (let i = 0; i < 17 + 16; i++) b.nextUint32();
    assert.deepEqual(a.uniform(4), b.uniform(4));
    // The first full block is unaffected by the recomputation (except values it overwrites).
    assert.deepEqual(new Generator(3).normal(20).subarray(0, 4), new Generator(3).normal(16).subarray(0, 4));
  });

  it("looks standard normal and is fast", () => {
    const g = new Generator(2024);
    g.normal(4 * 128 * 128); // warm-up
    const t0 = performance.now();
    const x = g.normal(4 * 128 * 128);
    const ms = performance.now() - t0;
    console.log(`normal(65536): ${ms.toFixed(2)} ms`);
    assert.ok(ms < 100, `normal(65536) took ${ms} ms`);
    let mean = 0;
    let sq = 0;
    for (const v of x) {
      assert.ok(Number.isFinite(v));
      mean += v;
      sq += v * v;
    }
    mean /= x.length;
    const variance = sq / x.length - mean * mean;
    assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.03, `variance ${variance}`);
  });

  it("rejects bad counts and draws nothing for n = 0", () => {
    const g = new Generator(1);
    assert.equal(g.normal(0).length, 0);
    assert.deepEqual(g.uniform(3), new Generator(1).uniform(3));
    assert.throws(() => g.normal(-1), ArgumentError);
    assert.throws(() => g.uniform(2.5), ArgumentError);
  });
});

describe("Generator.randint", () => {
  it("is (u32 mod range) + low, like torch.randint for ranges below 2^32", () => {
    const g = new Generator(77);
    const ref = g.clone();
    const r = g.randint(-3, 10, 500);
    const seen = new Set<number>();
    for (let i = 0; i < r.length; i++) {
      assert.equal(r[i], (ref.nextUint32() % 13) - 3);
      seen.add(r[i]!);
    }
    assert.equal(seen.size, 13);
    assert.deepEqual(new Generator(1).randint(0, 1000, 3), new Generator(1).randint(0, 1000, 3));
    assert.throws(() => g.randint(5, 5, 1), ArgumentError);
    assert.throws(() => g.randint(-(2 ** 31), 2 ** 31, 1), ArgumentError);
  });
});

describe("Generator state", () => {
  it("getState/setState restore the exact position, including the cached normal", () => {
    const g = new Generator(99);
    g.normal(33);
    g.normal(3); // leaves a spare
    const saved = g.getState();
    assert.equal(saved.length, 5056);
    const first = [g.normal(1), g.normal(50), g.uniform(700), g.normal(5)];
    g.setState(saved);
    const again = [g.normal(1), g.normal(50), g.uniform(700), g.normal(5)];
    assert.deepEqual(again, first);
    // A fresh generator restored from the bytes continues identically too, and keeps the seed.
    const h = new Generator().setState(saved);
    assert.equal(h.initialSeed(), 99);
    assert.deepEqual([h.normal(1), h.normal(50), h.uniform(700), h.normal(5)], first);
  });

  it("uses torch's CPUGeneratorImplState layout", () => {
    const g = new Generator(1234);
    let s = g.getState();
    const v = new DataView(s.buffer);
    assert.equal(v.getBigUint64(0, true), 1234n); // the_initial_seed
    assert.equal(v.getInt32(8, true), 1); // left
    assert.equal(v.getInt32(12, true), 1); // seeded
    assert.equal(v.getBigUint64(16, true), 0n); // next
    assert.equal(v.getUint32(24, true), 1234); // state[0] = seed
    assert.equal(v.getUint32(28, true), 0); // uint64 words
    assert.equal(v.getInt32(5040, true), 0); // no cached double normal
    const spare = new Generator(1234).normal(2)[1]!;
    g.normal(1);
    s = g.getState();
    const w = new DataView(s.buffer);
    assert.equal(w.getInt32(5040, true), 1);
    assert.equal(Math.fround(w.getFloat64(5024, true)), spare);
  });

  it("clone is independent and starts at the same position", () => {
    const g = new Generator(8);
    g.normal(20);
    const c = g.clone();
    assert.deepEqual(c.normal(64), g.normal(64));
    c.uniform(5);
    assert.notDeepEqual(c.uniform(5), g.uniform(5));
  });

  it("setState rejects malformed states", () => {
    const g = new Generator(1);
    assert.throws(() => g.setState(new Uint8Array(10)), ArgumentError);
    const bad = g.getState();
    new DataView(bad.buffer).setInt32(8, 0, true); // left = 0
    assert.throws(() => g.setState(bad), ArgumentError);
  });
});

describe("defaultGenerator", () => {
  it("is a usable generator", () => {
    assert.ok(defaultGenerator instanceof Generator);
    assert.equal(defaultGenerator.normal(4).length, 4);
  });
});
