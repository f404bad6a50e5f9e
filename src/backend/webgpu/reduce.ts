// Reductions over the middle axis of a contiguous [outer, n, inner] array: sum, max, min, argmax, argmin, in one
// pipeline. Each output gets a power of two of threads (about 32 elements each, up to a workgroup: a full sum
// of 1M elements is one workgroup; many outputs along an inner axis get a thread each), which fold every
// lanes-th element and then combine in a fixed order (so sums are deterministic). As in the reference, a NaN wins max/min (the first NaN for argmax/argmin) and ties go to the
// first index; min is max of the negated values, so both share one comparison.
import type { Backend, BufferTypes, ReduceOp } from "../backend.js";
import { MATH } from "./math.js";
import {
  at,
  buf,
  lanesFor,
  segmentFold,
  segmentGrid,
  segmentMain,
  segmentSums,
  segmentVariant,
} from "./nn-common.js";
import { type GpuRuntime, Params } from "./runtime.js";
import { declare } from "./wgsl.js";

const OPS: Record<ReduceOp, number> = { sum: 0, max: 1, min: 2, argmax: 3, argmin: 4 };

// The best of a subgroup's candidates by the rule of better(): the first NaN, else the largest value and the
// lowest index among equal ones (its own value, so -0 and +0 stay apart as in a sequential fold).
const SUBGROUP_BEST = /* wgsl */ `
fn subgroupBest(b: Best) -> Best {
  let bn = isNan(b.v);
  let nanAt = subgroupMin(select(NONE, b.i, bn));
  let m = subgroupMax(select(b.v, negInf(), bn));
  let i = subgroupMin(select(NONE, b.i, !bn && b.v == m));
  let v = subgroupMax(select(negInf(), b.v, !bn && b.i == i));
  var r = Best(v, i);
  if (nanAt != NONE) { r = Best(nan(), nanAt); }
  return r;
}`;

// parameter slots: 0 outputs, 1 n, 2 inner, 3 op, 4 x offset, 5 out offset (and the segment layout)
const source = (subgroups: boolean) => /* wgsl */ `
${declare(1, "x", "array<f32>", false)}
${declare(2, "out", "array<f32>", true)}
${MATH}
${segmentSums(subgroups)}
const NONE = 0xffffffffu;
struct Best { v: f32, i: u32 }

// whether candidate b replaces a: a NaN wins (the lower index among NaNs), then the larger value, then the
// lower index
fn better(a: Best, b: Best) -> bool {
  let an = isNan(a.v);
  let bn = isNan(b.v);
  if (an || bn) { return bn && (!an || b.i < a.i); }
  if (b.v != a.v) { return b.v > a.v; }
  return b.i < a.i;
}

// folds elements j = start, start + step, ... < n of the axis starting at x[base]
fn fold(base: u32, inner: u32, n: u32, start: u32, step: u32, op: u32) -> Best {
  if (op == 0u) {
    var acc = 0.0;
    var part = 0.0;
    var k = 0u;
    for (var j = start; j < n; j += step) {
      part += x[base + j * inner];
      k++;
      if (k == 32u) { acc += part; part = 0.0; k = 0u; }
    }
    return Best(acc + part, 0u);
  }
  let neg = op == 2u || op == 4u;
  var b = Best(negInf(), NONE);
  for (var j = start; j < n; j += step) {
    let v = x[base + j * inner];
    let c = Best(select(v, -v, neg), j);
    if (better(b, c)) { b = c; }
  }
  return b;
}

${subgroups ? SUBGROUP_BEST : ""}
${segmentFold(
  "segBest",
  "Best",
  (a, v) => `{ let c = ${v}; if (better(${a}, c)) { ${a} = c; } }`,
  subgroups ? "subgroupBest" : null,
)}
${segmentMain(subgroups)}
  let op = pu(3u);
  let inner = pu(2u);
  let n = select(0u, pu(1u), live);
  let o = seg / inner;
  let b = fold(pu(4u) + o * pu(1u) * inner + (seg - o * inner), inner, n, lane, lanes, op);
  var r: f32;
  if (op == 0u) {
    r = segSum(lid, lane, b.v);
  } else {
    let w = segBest(lid, lane, b);
    if (op >= 3u) { r = f32(select(w.i, 0u, w.i == NONE)); } else { r = select(w.v, -w.v, op == 2u); }
  }
  if (live && lane == 0u) { out[pu(5u) + seg] = r; }
}
`;

export function reduceKernels(rt: GpuRuntime): Pick<Backend<BufferTypes>, "reduce"> {
  const variant = segmentVariant(rt);
  return {
    reduce(op: ReduceOp, x: unknown, outer: number, n: number, inner: number, out: unknown): void {
      const outputs = outer * inner;
      if (outputs === 0) return;
      // many outputs along a contiguous inner axis: a thread each (neighbours read neighbouring elements)
      const lanes = outputs > 4096 && inner > 1 ? 1 : lanesFor(n);
      const p = new Params().u(outputs).u(n).u(inner).u(OPS[op]).u(at(x)).u(at(out));
      const grid = segmentGrid(p, outputs, lanes);
      rt.dispatch(
        rt.pipeline(`nn:reduce${variant.key}`, () => source(rt.subgroups), variant.enables),
        p,
        [{ buffer: buf(x) }, { buffer: buf(out), write: true }],
        grid,
      );
    },
  };
}
