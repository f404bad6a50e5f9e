// WebGPU nn kernels against the reference backend: reductions (both the thread-per-output and the workgroup-per-
// output paths, NaN / -Infinity / ties), softmax and log-softmax, group norm and layer norm forward and backward,
// GEGLU, nearest upsampling and its backward, indexSelect and indexAdd. Every device operand is a view at an odd
// element offset inside a larger buffer whose other elements are junk. Tolerance: 1e-5 of the output's scale
// (max(1, max|want|)) for float math, exact for max/min, argmax/argmin, upsampling, indexSelect and indexAdd.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ReduceOp } from "../../src/backend/index.js";
import { featuresDisabledByEnv } from "../../src/backend/webgpu/context.js";
import type { DeviceBuffer } from "../../src/tensor/device.js";
import { testRng } from "../rng.js";
import { adapter, assertClose, down, gpu, randArray, ref, skip, up } from "./webgpu-helpers.js";

const TOL = 1e-5;
const JUNK = 12345.5;
let shift = 0;
// the whole buffers behind the views (a collected handle returns its GPU buffer to the pool)
const keep: DeviceBuffer[] = [];

/** A device view of `data` at an offset of 1-3 elements, inside junk. */
function at(data: Float32Array | Int32Array): DeviceBuffer {
  const pad = 1 + (shift++ % 3);
  const int = data instanceof Int32Array;
  const full = int ? new Int32Array(data.length + pad + 2) : new Float32Array(data.length + pad + 2);
  full.fill(int ? 7777 : JUNK);
  full.set(data, pad);
  const dtype = int ? "int32" : "float32";
  const whole = up(full, dtype);
  keep.push(whole);
  return gpu.memory.subview(whole, dtype, pad, data.length)!;
}
/** A device view of `n` junk elements (outputs the kernel must write in full). */
const out = (n: number) => at(new Float32Array(n).fill(JUNK));

describe(`webgpu nn kernels (${adapter})`, { skip }, () => {
  const rng = testRng(23);

  it("reduce: sum, max, min, argmax, argmin over [outer, n, inner]", async () => {
    // threads per output: 1 ([2, 7, 5], [1, 150, 5000]), 16, 64, 128 ([3, 300, 1], [1, 1025, 3], [2, 3000, 1])
    const shapes: [number, number, number][] = [
      [2, 7, 5],
      [4, 1, 6],
      [2, 0, 3],
      [3, 300, 1],
      [1, 1025, 3],
      [2, 3000, 1],
      [1, 150, 5000],
    ];
    for (const [outer, n, inner] of shapes) {
      const size = outer * n * inner;
      // coarse values make ties; a few NaN and -Infinity entries
      const x = Float32Array.from({ length: size }, () => Math.round(rng() * 16 - 8) / 4);
      if (size > 20) {
        x[3] = Number.NaN;
        x[size - 2] = Number.NaN;
        x[7] = Number.NEGATIVE_INFINITY;
      }
      const gx = at(x);
      for (const op of ["sum", "max", "min", "argmax", "argmin"] as ReduceOp[]) {
        const want = new Float32Array(outer * inner);
        ref.reduce(op, x, outer, n, inner, want);
        const o = out(outer * inner);
        gpu.reduce(op, gx, outer, n, inner, o);
        assertClose(
          await down(o, outer * inner),
          want,
          op === "sum" ? TOL : 0,
          `${op} [${outer}, ${n}, ${inner}]`,
        );
      }
    }
  });

  it("reduce: a full sum and argmax of 1M elements, and a row of -Infinity", async () => {
    const n = 1 << 20;
    const x = randArray(n, rng, -1, 3);
    x[777777] = 5;
    x[900000] = 5;
    const gx = at(x);
    for (const op of ["sum", "argmax", "max"] as ReduceOp[]) {
      const want = new Float32Array(1);
      ref.reduce(op, x, 1, n, 1, want);
      const o = out(1);
      gpu.reduce(op, gx, 1, n, 1, o);
      assertClose(await down(o, 1), want, op === "sum" ? TOL : 0, `${op} of 1M`);
    }
    // the order of the additions is fixed: the same bits every time
    const twice = [out(1), out(1)];
    for (const o of twice) gpu.reduce("sum", gx, 1, n, 1, o);
    assert.deepEqual(await down(twice[0]!, 1), await down(twice[1]!, 1));
    const inf = new Float32Array(400).fill(Number.NEGATIVE_INFINITY);
    for (const op of ["max", "argmax", "min", "argmin"] as ReduceOp[]) {
      const want = new Float32Array(2);
      ref.reduce(op, inf, 1, 200, 2, want);
      const o = out(2);
      gpu.reduce(op, at(inf), 1, 200, 2, o);
      assertClose(await down(o, 2), want, 0, `${op} of -Infinity`);
    }
  });

  it("softmax and log-softmax: rows of 1, 7, 300, 1025, masked and NaN rows", async () => {
    for (const [rows, cols] of [
      [3, 1],
      [5, 7],
      [4, 300],
      [2, 1025],
    ] as [number, number][]) {
      const x = randArray(rows * cols, rng, -20, 20);
      if (rows * cols > 20) {
        x[1] = Number.NEGATIVE_INFINITY; // a masked entry
        x[cols + 2] = Number.NaN; // row 1 becomes NaN
        x.fill(Number.NEGATIVE_INFINITY, 2 * cols, 3 * cols); // row 2 fully masked: NaN
        if (rows > 3) x[3 * cols] = Number.POSITIVE_INFINITY; // row 3: NaN
      }
      const gx = at(x);
      for (const log of [false, true]) {
        const want = new Float32Array(rows * cols);
        ref.softmax(x, want, rows, cols, log);
        const o = out(rows * cols);
        gpu.softmax(gx, o, rows, cols, log);
        assertClose(await down(o, rows * cols), want, TOL, `${log ? "log-" : ""}softmax [${rows}, ${cols}]`);
      }
    }
  });

  it("softmax over 65537 rows (a thread and two threads per row)", async () => {
    for (const cols of [2, 64]) {
      const rows = 65537;
      const x = randArray(rows * cols, rng, -5, 5);
      const want = new Float32Array(rows * cols);
      ref.softmax(x, want, rows, cols, false);
      const o = out(rows * cols);
      gpu.softmax(at(x), o, rows, cols, false);
      assertClose(await down(o, rows * cols), want, TOL, `softmax [${rows}, ${cols}]`);
    }
  });

  it("rows of 1, 7, 33, 300, 1025 and 65537: reduce, softmax, layerNorm and its backward, the same bits twice", async () => {
    // 1 to 256 threads per row: shorter than a subgroup (4 on SwiftShader, 8 on lavapipe, 32-64 on GPUs), one
    // subgroup, many subgroups
    for (const cols of [1, 7, 33, 300, 1025, 65537]) {
      const rows = cols > 5000 ? 2 : 3;
      const size = rows * cols;
      const x = randArray(size, rng, 2, 4);
      // ties for argmax / argmin in different subgroups of the last row, and a NaN in the middle row
      if (cols > 40) {
        x[size - 1] = 9;
        x[size - cols + 33] = 9;
        x[size - 2] = 1;
        x[size - cols + 5] = 1;
        x[cols + (cols >> 1)] = Number.NaN;
      }
      const gx = at(x);
      for (const op of ["sum", "max", "min", "argmax", "argmin"] as ReduceOp[]) {
        const want = new Float32Array(rows);
        ref.reduce(op, x, rows, cols, 1, want);
        const o = out(rows);
        gpu.reduce(op, gx, rows, cols, 1, o);
        assertClose(await down(o, rows), want, op === "sum" ? TOL : 0, `${op} of rows of ${cols}`);
      }
      const clean = x.map((v) => (Number.isNaN(v) ? 0 : v));
      const gc = at(clean);
      const wantSoft = new Float32Array(size);
      ref.softmax(clean, wantSoft, rows, cols, true);
      const soft = out(size);
      gpu.softmax(gc, soft, rows, cols, true);
      assertClose(await down(soft, size), wantSoft, TOL, `log-softmax of rows of ${cols}`);

      const weight = randArray(cols, rng, 0.5, 1.5);
      const dy = randArray(size, rng, -1, 1);
      const want = [new Float32Array(size), new Float32Array(rows), new Float32Array(rows)] as const;
      ref.layerNorm(clean, weight, null, want[0], want[1], want[2], rows, cols, 1e-5);
      const gw = at(weight);
      const runs = [0, 1].map(() => {
        const got = [out(size), out(rows), out(rows), out(size), out(cols)] as const;
        gpu.layerNorm(gc, gw, null, got[0], got[1], got[2], rows, cols, 1e-5);
        gpu.layerNormBackward(at(dy), gc, gw, got[1], got[2], got[3], got[4], null, rows, cols);
        return got;
      });
      const got = runs[0]!;
      assertClose(await down(got[0], size), want[0], TOL, `layerNorm of rows of ${cols}: out`);
      assertClose(await down(got[1], rows), want[1], TOL, `layerNorm of rows of ${cols}: mean`);
      assertClose(await down(got[2], rows), want[2], TOL, `layerNorm of rows of ${cols}: rstd`);
      const grads = [new Float32Array(size), new Float32Array(cols)] as const;
      ref.layerNormBackward(dy, clean, weight, want[1], want[2], grads[0], grads[1], null, rows, cols);
      assertClose(await down(got[3], size), grads[0], TOL, `layerNormBackward of rows of ${cols}: gradX`);
      assertClose(
        await down(got[4], cols),
        grads[1],
        TOL,
        `layerNormBackward of rows of ${cols}: gradWeight`,
      );
      const sizes = [size, rows, rows, size, cols];
      for (let k = 0; k < sizes.length; k++) {
        assert.deepEqual(
          await down(runs[1]![k]!, sizes[k]!),
          await down(got[k]!, sizes[k]!),
          `run twice: ${k}`,
        );
      }
    }
  });

  it("kernels take their paths from the device's features (DIFFUSE_WEBGPU_FEATURES turns them off)", () => {
    for (const f of featuresDisabledByEnv()) assert.ok(!gpu.info.features.includes(f), f);
    assert.equal(gpu.runtime.subgroups, gpu.info.features.includes("subgroups"));
    assert.equal(gpu.runtime.f16, gpu.info.features.includes("shader-f16"));
    const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
    if (!env) return;
    const saved = env.DIFFUSE_WEBGPU_FEATURES;
    try {
      env.DIFFUSE_WEBGPU_FEATURES = " -subgroups, -shader-f16 ";
      assert.deepEqual(featuresDisabledByEnv(), ["subgroups", "shader-f16"]);
      env.DIFFUSE_WEBGPU_FEATURES = "subgroups";
      assert.throws(() => featuresDisabledByEnv(), /DIFFUSE_WEBGPU_FEATURES/);
    } finally {
      if (saved === undefined) delete env.DIFFUSE_WEBGPU_FEATURES;
      else env.DIFFUSE_WEBGPU_FEATURES = saved;
    }
  });

  // [n, c, spatial, groups]; the last is SD's size per group (10 channels x 64 x 64) with a large mean
  const GROUPS: [number, number, number, number][] = [
    [2, 6, 7, 3],
    [1, 4, 1, 4],
    [3, 5, 13, 1],
    [2, 8, 300, 2],
    [1, 20, 4096, 2],
  ];
  const normInput = (size: number, big: boolean) =>
    big ? randArray(size, rng, 2.9, 3.1) : randArray(size, rng, -2, 2);

  it("groupNorm (with and without affine, fused SiLU) writes out, mean and rstd", async () => {
    for (const [n, c, spatial, groups] of GROUPS) {
      const size = n * c * spatial;
      const x = normInput(size, spatial === 4096);
      const weight = randArray(c, rng, 0.5, 1.5);
      const bias = randArray(c, rng, -0.5, 0.5);
      const gx = at(x);
      for (const [affine, silu] of [
        [true, false],
        [false, true],
        [true, true],
      ]) {
        const what = `groupNorm [${n}, ${c}, ${spatial}] / ${groups}${affine ? " affine" : ""}${silu ? " silu" : ""}`;
        const stats = n * groups;
        const want = [new Float32Array(size), new Float32Array(stats), new Float32Array(stats)] as const;
        const w = affine ? weight : null;
        const b = affine ? bias : null;
        ref.groupNorm(x, w, b, want[0], want[1], want[2], n, c, spatial, groups, 1e-5, silu);
        const got = [out(size), out(stats), out(stats)] as const;
        const gw = w && at(w);
        const gb = b && at(b);
        gpu.groupNorm(gx, gw, gb, got[0], got[1], got[2], n, c, spatial, groups, 1e-5, silu);
        assertClose(await down(got[0], size), want[0], TOL, `${what}: out`);
        assertClose(await down(got[1], stats), want[1], TOL, `${what}: mean`);
        assertClose(await down(got[2], stats), want[2], TOL, `${what}: rstd`);
      }
    }
  });

  it("groupNormBackward: gradX, and gradWeight / gradBias when asked", async () => {
    for (const [n, c, spatial, groups] of GROUPS) {
      const size = n * c * spatial;
      const x = normInput(size, spatial === 4096);
      const dy = randArray(size, rng, -1, 1);
      const weight = randArray(c, rng, 0.5, 1.5);
      const stats = n * groups;
      const mean = new Float32Array(stats);
      const rstd = new Float32Array(stats);
      ref.groupNorm(x, null, null, new Float32Array(size), mean, rstd, n, c, spatial, groups, 1e-5, false);
      const [gdy, gx, gm, gr] = [at(dy), at(x), at(mean), at(rstd)];
      for (const [affine, wantW, wantB] of [
        [true, true, true],
        [false, false, false],
        [true, true, false],
        [false, false, true],
      ]) {
        const what = `groupNormBackward [${n}, ${c}, ${spatial}] / ${groups} ${affine}/${wantW}/${wantB}`;
        const w = affine ? weight : null;
        const want = [new Float32Array(size), new Float32Array(c), new Float32Array(c)] as const;
        ref.groupNormBackward(
          dy,
          x,
          w,
          mean,
          rstd,
          want[0],
          wantW ? want[1] : null,
          wantB ? want[2] : null,
          n,
          c,
          spatial,
          groups,
        );
        const got = [out(size), out(c), out(c)] as const;
        gpu.groupNormBackward(
          gdy,
          gx,
          w && at(w),
          gm,
          gr,
          got[0],
          wantW ? got[1] : null,
          wantB ? got[2] : null,
          n,
          c,
          spatial,
          groups,
        );
        assertClose(await down(got[0], size), want[0], TOL, `${what}: gradX`);
        if (wantW) assertClose(await down(got[1], c), want[1], TOL, `${what}: gradWeight`);
        if (wantB) assertClose(await down(got[2], c), want[2], TOL, `${what}: gradBias`);
      }
    }
  });

  it("layerNorm and layerNormBackward: rows of 1, 7, 300, 1025", async () => {
    for (const [rows, cols] of [
      [4, 1],
      [5, 7],
      [70, 9],
      [3, 300],
      [2, 1025],
    ] as [number, number][]) {
      const size = rows * cols;
      const x = normInput(size, cols === 1025);
      const dy = randArray(size, rng, -1, 1);
      const weight = randArray(cols, rng, 0.5, 1.5);
      const bias = randArray(cols, rng, -0.5, 0.5);
      for (const affine of [true, false]) {
        const what = `layerNorm [${rows}, ${cols}]${affine ? " affine" : ""}`;
        const w = affine ? weight : null;
        const b = affine ? bias : null;
        const want = [new Float32Array(size), new Float32Array(rows), new Float32Array(rows)] as const;
        ref.layerNorm(x, w, b, want[0], want[1], want[2], rows, cols, 1e-5);
        const got = [out(size), out(rows), out(rows)] as const;
        gpu.layerNorm(at(x), w && at(w), b && at(b), got[0], got[1], got[2], rows, cols, 1e-5);
        assertClose(await down(got[0], size), want[0], TOL, `${what}: out`);
        assertClose(await down(got[1], rows), want[1], TOL, `${what}: mean`);
        assertClose(await down(got[2], rows), want[2], TOL, `${what}: rstd`);

        const grads = [new Float32Array(size), new Float32Array(cols), new Float32Array(cols)] as const;
        ref.layerNormBackward(
          dy,
          x,
          w,
          want[1],
          want[2],
          grads[0],
          grads[1],
          affine ? grads[2] : null,
          rows,
          cols,
        );
        const g = [out(size), out(cols), out(cols)] as const;
        gpu.layerNormBackward(
          at(dy),
          at(x),
          w && at(w),
          at(want[1]),
          at(want[2]),
          g[0],
          g[1],
          affine ? g[2] : null,
          rows,
          cols,
        );
        assertClose(await down(g[0], size), grads[0], TOL, `${what}: gradX`);
        assertClose(await down(g[1], cols), grads[1], TOL, `${what}: gradWeight`);
        if (affine) assertClose(await down(g[2], cols), grads[2], TOL, `${what}: gradBias`);
      }
    }
  });

  it("geglu", async () => {
    for (const [rows, half] of [
      [1, 1],
      [3, 7],
      [5, 300],
    ] as [number, number][]) {
      const x = randArray(rows * 2 * half, rng, -4, 4);
      const want = new Float32Array(rows * half);
      ref.geglu(x, want, rows, half);
      const o = out(rows * half);
      gpu.geglu(at(x), o, rows, half);
      assertClose(await down(o, rows * half), want, TOL, `geglu [${rows}, ${half}]`);
    }
  });

  it("upsampleNearest and its backward (integer, fractional and downsampling scales), exact", async () => {
    for (const [planes, h, w, oh, ow] of [
      [3, 5, 7, 10, 14],
      [2, 5, 7, 8, 11],
      [2, 6, 9, 4, 5],
      [1, 3, 3, 7, 7],
      [2, 1, 4, 3, 4],
      [1, 13, 17, 31, 29],
    ] as [number, number, number, number, number][]) {
      const what = `[${planes}, ${h}, ${w}] -> [${oh}, ${ow}]`;
      const x = randArray(planes * h * w, rng);
      const want = new Float32Array(planes * oh * ow);
      ref.upsampleNearest(x, want, planes, h, w, oh, ow);
      const o = out(planes * oh * ow);
      gpu.upsampleNearest(at(x), o, planes, h, w, oh, ow);
      assertClose(await down(o, want.length), want, 0, `upsampleNearest ${what}`);

      const dy = randArray(planes * oh * ow, rng);
      const wantGrad = new Float32Array(planes * h * w);
      ref.upsampleNearestBackward(dy, wantGrad, planes, h, w, oh, ow);
      const g = out(planes * h * w);
      gpu.upsampleNearestBackward(at(dy), g, planes, h, w, oh, ow);
      assertClose(await down(g, wantGrad.length), wantGrad, 0, `upsampleNearestBackward ${what}`);
    }
  });

  it("indexSelect and indexAdd with duplicate ids, exact", async () => {
    for (const [rows, cols, ids] of [
      [10, 7, [3, 0, 9, 3, 3, 1]],
      [4, 1, [2, 2, 0, 3, 2]],
      [6, 300, [5, 5, 0]],
    ] as [number, number, number[]][]) {
      const what = `[${rows}, ${cols}] by ${ids.length} ids`;
      const table = randArray(rows * cols, rng);
      const id = Int32Array.from(ids);
      const want = new Float32Array(ids.length * cols);
      ref.indexSelect(table, cols, id, want);
      const o = out(ids.length * cols);
      const gid = at(id);
      gpu.indexSelect(at(table), cols, gid, o);
      assertClose(await down(o, want.length), want, 0, `indexSelect ${what}`);

      // values of mixed magnitude, so that the order of the additions shows in the bits
      const dy = Float32Array.from(
        { length: ids.length * cols },
        () => (rng() - 0.5) * 10 ** Math.floor(rng() * 8),
      );
      const start = randArray(rows * cols, rng);
      const wantGrad = start.slice();
      ref.indexAdd(dy, cols, id, wantGrad);
      const g = at(start);
      gpu.indexAdd(at(dy), cols, gid, g);
      assertClose(await down(g, wantGrad.length), wantGrad, 0, `indexAdd ${what}`);
    }
  });

  it("ids out of range (the reference throws): a row of NaN from indexSelect, nothing added by indexAdd", async () => {
    const table = randArray(6, rng);
    const ids = at(Int32Array.from([2, 3, -1, 0]));
    const o = out(8);
    gpu.indexSelect(at(table), 2, ids, o);
    const got = await down(o, 8);
    assert.deepEqual(
      [...got.subarray(0, 2), ...got.subarray(6)],
      [...table.subarray(4), ...table.subarray(0, 2)],
    );
    assert.ok(got.subarray(2, 6).every(Number.isNaN));
    const g = at(new Float32Array(6));
    gpu.indexAdd(at(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8])), 2, ids, g);
    assert.deepEqual([...(await down(g, 6))], [7, 8, 0, 0, 1, 2]);
  });
});
