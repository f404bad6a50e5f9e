// Strided copies the native backend runs as tiled transposes (destination contiguous along a source dim of
// stride != 1, another dim contiguous in the source): every permutation of a 3-D view, ragged tile edges,
// offsets, several storage types, against the reference copy.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StridedAny } from "../../src/backend/index.js";
import { nat, ref, skip } from "./native-helpers.js";

function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

describe("native copy: transposes", { skip }, () => {
  it("matches the reference for every permutation of a 3-D view and several element sizes", () => {
    const base = [3, 37, 20];
    const perms = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    const n = 3 * 37 * 20;
    const sources = [
      new Float32Array(n + 3).map((_, i) => i * 0.5),
      new Int32Array(n + 3).map((_, i) => i * 7 - 50),
      new Uint16Array(n + 3).map((_, i) => i * 31),
      new BigInt64Array(n + 3).map((_, i) => BigInt(i) * 1000000007n),
    ];
    const srcStrides = contiguousStrides(base);
    for (const src of sources) {
      for (const p of perms) {
        const shape = p.map((d) => base[d]!);
        const from: StridedAny = { data: src, offset: 3, strides: p.map((d) => srcStrides[d]!) };
        const Ctor = src.constructor as new (n: number) => typeof src;
        const want = new Ctor(n + 1);
        const got = new Ctor(n + 1);
        const to = (data: typeof src) => ({ data, offset: 1, strides: contiguousStrides(shape) });
        ref.copy(from, to(want), shape);
        nat.copy(from, to(got), shape);
        assert.deepEqual(got, want, `${src.constructor.name} permutation ${p}`);
      }
    }
  });

  it("large transposes (the multi-threaded tiles) match too", () => {
    const [b, c, hw] = [2, 70, 1001];
    const x = new Float32Array(b * c * hw).map((_, i) => i);
    const shape = [b, hw, c];
    const from = { data: x, offset: 0, strides: [c * hw, 1, hw] };
    const want = new Float32Array(x.length);
    const got = new Float32Array(x.length);
    ref.copy(from, { data: want, offset: 0, strides: contiguousStrides(shape) }, shape);
    nat.copy(from, { data: got, offset: 0, strides: contiguousStrides(shape) }, shape);
    assert.deepEqual(got, want);
  });
});
