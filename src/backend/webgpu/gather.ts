// Kernels that move or combine elements by index, one pipeline with a mode each: GEGLU, nearest upsampling and
// its backward, indexSelect and indexAdd. Sums are deterministic without atomics: the upsampling backward gives
// a thread to each input element, which adds its window of outputs in order; indexAdd gives a thread to each
// column, which walks the ids in order (so duplicate ids add up in the reference's order, bit for bit).
import type { Backend, BufferTypes } from "../backend.js";
import { MATH } from "./math.js";
import { gpuBuffer } from "./memory.js";
import { at, buf, placeholder } from "./nn-common.js";
import { entry1d, type GpuRuntime, Params } from "./runtime.js";
import { declare } from "./wgsl.js";

const MODE = { geglu: 0, upsample: 1, upsampleBackward: 2, select: 3, add: 4 } as const;

// Parameter slots: 0 threads, 1 mode, 2 src, 3 ids, 4 dst (offsets), then per mode: geglu 5 half; upsampling
// 5 h, 6 w, 7 oh, 8 ow, 9 h / oh, 10 w / ow (float32, as PyTorch computes them); index 5 cols, 6 table rows,
// 7 ids.
const SOURCE = /* wgsl */ `
${declare(1, "src", "array<f32>", false)}
${declare(2, "ids", "array<i32>", false)}
${declare(3, "dst", "array<f32>", true)}
${MATH}
// PyTorch's legacy "nearest": the source of output i is min(floor(i * scale), size - 1), in float32
fn near(i: u32, scale: f32, size: u32) -> u32 { return min(u32(floor(f32(i) * scale)), size - 1u); }
// the first output whose source is >= r (sources never decrease): a guess, then steps to the exact answer
fn firstOut(r: u32, scale: f32, size: u32, osize: u32) -> u32 {
  if (r == 0u) { return 0u; }
  if (r >= size) { return osize; }
  var i = u32(clamp(f32(r) / scale - 1.0, 0.0, f32(osize)));
  while (i < osize && near(i, scale, size) < r) { i++; }
  while (i > 0u && near(i - 1u, scale, size) >= r) { i--; }
  return i;
}

fn geglu(t: u32) {
  let hw = pu(5u);
  let r = t / hw;
  let a = pu(2u) + r * 2u * hw + (t - r * hw);
  let g = src[a + hw];
  dst[pu(4u) + t] = src[a] * (0.5 * g * (1.0 + erf(g * 0.7071067811865476)));
}

fn upsample(t: u32) {
  let h = pu(5u); let w = pu(6u); let oh = pu(7u); let ow = pu(8u);
  let plane = t / (oh * ow);
  let rem = t - plane * oh * ow;
  let i = rem / ow;
  let j = rem - i * ow;
  dst[pu(4u) + t] = src[pu(2u) + plane * h * w + near(i, pf(9u), h) * w + near(j, pf(10u), w)];
}

fn upsampleBackward(t: u32) {
  let h = pu(5u); let w = pu(6u); let oh = pu(7u); let ow = pu(8u);
  let plane = t / (h * w);
  let rem = t - plane * h * w;
  let r = rem / w;
  let c = rem - r * w;
  let i1 = firstOut(r + 1u, pf(9u), h, oh);
  let j0 = firstOut(c, pf(10u), w, ow);
  let j1 = firstOut(c + 1u, pf(10u), w, ow);
  let base = pu(2u) + plane * oh * ow;
  var s = 0.0;
  for (var i = firstOut(r, pf(9u), h, oh); i < i1; i++) {
    for (var j = j0; j < j1; j++) { s += src[base + i * ow + j]; }
  }
  dst[pu(4u) + t] = s;
}

// an id out of range (the reference throws) gives a row of NaN, visible downstream
fn indexSelect(t: u32) {
  let cols = pu(5u);
  let k = t / cols;
  let id = ids[pu(3u) + k];
  var v = nan();
  if (id >= 0 && u32(id) < pu(6u)) { v = src[pu(2u) + u32(id) * cols + (t - k * cols)]; }
  dst[pu(4u) + t] = v;
}

// an id out of range adds nothing
fn indexAdd(col: u32) {
  let cols = pu(5u);
  for (var k = 0u; k < pu(7u); k++) {
    let id = ids[pu(3u) + k];
    if (id >= 0 && u32(id) < pu(6u)) {
      let o = pu(4u) + u32(id) * cols + col;
      dst[o] = dst[o] + src[pu(2u) + k * cols + col];
    }
  }
}
${entry1d(`  if (gid >= pu(0u)) { return; }
  switch pu(1u) {
    case ${MODE.geglu}u: { geglu(gid); }
    case ${MODE.upsample}u: { upsample(gid); }
    case ${MODE.upsampleBackward}u: { upsampleBackward(gid); }
    case ${MODE.select}u: { indexSelect(gid); }
    default: { indexAdd(gid); }
  }`)}
`;

type Gather = Pick<
  Backend<BufferTypes>,
  "geglu" | "upsampleNearest" | "upsampleNearestBackward" | "indexSelect" | "indexAdd"
>;

export function gatherKernels(rt: GpuRuntime): Gather {
  const run = (threads: number, p: Params, src: unknown, ids: unknown, dst: unknown) => {
    if (threads === 0) return;
    rt.dispatch(
      rt.pipeline("nn:gather", () => SOURCE),
      p,
      [
        { buffer: buf(src) },
        { buffer: ids === null ? placeholder(rt, 2) : buf(ids) },
        { buffer: buf(dst), write: true },
      ],
      { threads },
    );
  };
  const head = (threads: number, mode: number, src: unknown, ids: unknown, dst: unknown) =>
    new Params()
      .u(threads)
      .u(mode)
      .u(at(src))
      .u(ids === null ? 0 : at(ids))
      .u(at(dst));
  const resize = (mode: number, threads: number, src: unknown, dst: unknown, dims: number[]) => {
    const [h, w, oh, ow] = dims as [number, number, number, number];
    const p = head(threads, mode, src, null, dst)
      .u(h)
      .u(w)
      .u(oh)
      .u(ow)
      .f(h / oh)
      .f(w / ow);
    run(threads, p, src, null, dst);
  };
  // the ids and the table's rows come from the handles' lengths (the contract passes only cols)
  const count = (handle: unknown, cols: number) =>
    Math.floor(gpuBuffer(handle).byteLength / 4 / Math.max(cols, 1));

  return {
    geglu(x: unknown, out: unknown, rows: number, half: number): void {
      const threads = rows * half;
      run(threads, head(threads, MODE.geglu, x, null, out).u(half), x, null, out);
    },
    upsampleNearest(x, out, planes, h, w, oh, ow): void {
      resize(MODE.upsample, planes * oh * ow, x, out, [h, w, oh, ow]);
    },
    upsampleNearestBackward(gradOut, gradIn, planes, h, w, oh, ow): void {
      resize(MODE.upsampleBackward, planes * h * w, gradOut, gradIn, [h, w, oh, ow]);
    },
    indexSelect(table: unknown, cols: number, ids: unknown, out: unknown): void {
      const n = count(ids, 1);
      const threads = n * cols;
      const p = head(threads, MODE.select, table, ids, out).u(cols).u(count(table, cols)).u(n);
      run(threads, p, table, ids, out);
    },
    indexAdd(gradOut: unknown, cols: number, ids: unknown, gradTable: unknown): void {
      const n = count(ids, 1);
      if (n === 0) return;
      const p = head(cols, MODE.add, gradOut, ids, gradTable).u(cols).u(count(gradTable, cols)).u(n);
      run(cols, p, gradOut, ids, gradTable);
    },
  };
}
