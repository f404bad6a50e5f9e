// Row kernels: softmax / log-softmax, group norm and layer norm, and the norms' backward. A power of two of
// threads (lanesFor: one for short rows, a workgroup for long ones) owns one contiguous segment (a softmax row,
// one (sample, group) of group norm, one layer-norm row) and reduces it in two passes: the centre (row max, or
// mean), then the spread (sum of exp(x - max), or of (x - mean)^2, so the variance stays accurate for large
// groups), then writes the segment. Layer norm is group norm with one group per row, c = cols and spatial = 1
// (a "channel" is then a column). Two pipelines: forward and backward.
import type { Backend, BufferTypes } from "../backend.js";
import { MATH } from "./math.js";
import {
  at,
  buf,
  lanesFor,
  placeholder,
  segmentFold,
  segmentGrid,
  segmentMain,
  segmentSums,
  segmentVariant,
} from "./nn-common.js";
import { type GpuRuntime, Params } from "./runtime.js";
import { declare } from "./wgsl.js";

// One thread's running sum over the segment in blocks of 32 (less rounding than one long running sum).
const BLOCKED = (name: string, init: string, term: string) => /* wgsl */ `
  var ${name} = ${init};
  {
    var part = ${init};
    var k = 0u;
    for (var e = lane; e < m; e += lanes) {
      part += ${term};
      k++;
      if (k == 32u) { ${name} += part; part = ${init}; k = 0u; }
    }
    ${name} += part;
  }`;

// Forward parameter slots: 0 segments, 1 mode (0 softmax, 1 log-softmax, 2 norm, 3 norm + SiLU), 2 segment
// length m, 3 x, 4 out, 5 weight, 6 bias, 7 mean, 8 rstd (offsets), 9 flags (1 weight, 2 bias), 10 groups,
// 11 spatial, 12 channels per group, 13 eps.
const forwardSource = (subgroups: boolean) => /* wgsl */ `
${declare(1, "x", "array<f32>", false)}
${declare(2, "weight", "array<f32>", false)}
${declare(3, "bias", "array<f32>", false)}
${declare(4, "out", "array<f32>", true)}
${declare(5, "meanOut", "array<f32>", true)}
${declare(6, "rstdOut", "array<f32>", true)}
${MATH}
${segmentSums(subgroups)}
// the maximum over a segment's threads (of values that are not NaN)
${segmentFold("segMax", "f32", (a, v) => `${a} = max(${a}, ${v});`, subgroups ? "subgroupMax" : null)}
// exp of d <= 0 that is exactly 0 for d = -Infinity whatever the exp builtin does there
fn expNeg(d: f32) -> f32 { return select(exp(d), 0.0, d < -104.0); }

fn segmentNorm(seg: u32, lid: u32, lane: u32, lanes: u32, live: bool) {
  let m = select(0u, pu(2u), live);
  let base = pu(3u) + seg * m;
  let mf = f32(max(m, 1u));
  // the sum of x - x0 (x0 the first element) loses less to rounding when the mean is large against the spread
  let x0 = select(x[base], 0.0, m == 0u);
  let mean = x0 + segSum(lid, lane, sumX(base, m, lane, lanes, x0)) / mf;
  let sq = segSum(lid, lane, sumSq(base, m, lane, lanes, mean));
  let rstd = 1.0 / sqrt(sq / mf + pf(13u));
  if (live && lane == 0u) {
    meanOut[pu(7u) + seg] = mean;
    rstdOut[pu(8u) + seg] = rstd;
  }
  let flags = pu(9u);
  let spatial = pu(11u);
  let ch0 = (seg % pu(10u)) * pu(12u);
  let silu = pu(1u) == 3u;
  for (var e = lane; e < m; e += lanes) {
    let ch = ch0 + e / spatial;
    var a = rstd;
    if ((flags & 1u) != 0u) { a *= weight[pu(5u) + ch]; }
    var y = (x[base + e] - mean) * a;
    if ((flags & 2u) != 0u) { y += bias[pu(6u) + ch]; }
    if (silu) { y = y / (1.0 + exp(-y)); }
    out[pu(4u) + seg * m + e] = y;
  }
}

fn sumX(base: u32, m: u32, lane: u32, lanes: u32, x0: f32) -> f32 {
  ${BLOCKED("acc", "0.0", "(x[base + e] - x0)")}
  return acc;
}
fn sumSq(base: u32, m: u32, lane: u32, lanes: u32, mean: f32) -> f32 {
  ${BLOCKED("acc", "0.0", "(x[base + e] - mean) * (x[base + e] - mean)")}
  return acc;
}
fn sumExp(base: u32, m: u32, lane: u32, lanes: u32, mx: f32) -> f32 {
  ${BLOCKED("acc", "0.0", "expNeg(x[base + e] - mx)")}
  return acc;
}

fn segmentSoftmax(seg: u32, lid: u32, lane: u32, lanes: u32, live: bool) {
  let m = select(0u, pu(2u), live);
  let base = pu(3u) + seg * m;
  // NaN counts as +Infinity: both make the whole row NaN, as in the reference (so does a row of -Infinity)
  var mx = negInf();
  for (var e = lane; e < m; e += lanes) {
    let v = x[base + e];
    mx = max(mx, select(v, posInf(), isNan(v)));
  }
  mx = segMax(lid, lane, mx);
  let s = segSum(lid, lane, sumExp(base, m, lane, lanes, mx));
  let ok = isFinite(mx);
  let logSum = log(s);
  let o = pu(4u) + seg * m;
  for (var e = lane; e < m; e += lanes) {
    let d = x[base + e] - mx;
    let y = select(expNeg(d) / s, d - logSum, pu(1u) == 1u);
    out[o + e] = select(nan(), y, ok);
  }
}
${segmentMain(subgroups)}
  if (pu(1u) >= 2u) {
    segmentNorm(seg, lid, lane, lanes, live);
  } else {
    segmentSoftmax(seg, lid, lane, lanes, live);
  }
}
`;

// Backward parameter slots: 0 segments, 1 mode (0: gradX, segments are (sample, group) slices; 1: gradWeight /
// gradBias, segments are channels), 2 slice length m, 3 gradOut, 4 x, 5 weight, 6 mean, 7 rstd, 8 gradX,
// 9 gradWeight, 10 gradBias (offsets), 11 flags (1 weight, 2 write gradWeight, 4 write gradBias), 12 groups,
// 13 spatial, 14 channels per group, 15 channels, 16 samples.
const backwardSource = (subgroups: boolean) => /* wgsl */ `
${declare(1, "gy", "array<f32>", false)}
${declare(2, "x", "array<f32>", false)}
${declare(3, "weight", "array<f32>", false)}
${declare(4, "mean", "array<f32>", false)}
${declare(5, "rstd", "array<f32>", false)}
${declare(6, "gx", "array<f32>", true)}
${declare(7, "gw", "array<f32>", true)}
${declare(8, "gb", "array<f32>", true)}
${segmentSums(subgroups)}
fn w(ch: u32) -> f32 {
  if ((pu(11u) & 1u) != 0u) { return weight[pu(5u) + ch]; }
  return 1.0;
}

// dx = rstd * (dy w - mean(dy w) - xhat * mean(dy w xhat)) over one segment
fn segmentGrad(seg: u32, lid: u32, lane: u32, lanes: u32, live: bool) {
  let m = select(0u, pu(2u), live);
  let base = seg * m;
  let mu = mean[pu(6u) + seg];
  let r = rstd[pu(7u) + seg];
  let spatial = pu(13u);
  let ch0 = (seg % pu(12u)) * pu(14u);
  ${BLOCKED("acc", "vec2<f32>(0.0)", "dywTerms(base + e, ch0 + e / spatial, mu, r)")}
  let s = segSum2(lid, lane, acc) / f32(max(m, 1u));
  for (var e = lane; e < m; e += lanes) {
    let i = base + e;
    let xhat = (x[pu(4u) + i] - mu) * r;
    gx[pu(8u) + i] = r * (gy[pu(3u) + i] * w(ch0 + e / spatial) - s.x - xhat * s.y);
  }
}
fn dywTerms(i: u32, ch: u32, mu: f32, r: f32) -> vec2<f32> {
  let dyw = gy[pu(3u) + i] * w(ch);
  return vec2<f32>(dyw, dyw * (x[pu(4u) + i] - mu) * r);
}

// gradWeight[ch] = sum dy * xhat and gradBias[ch] = sum dy over samples and spatial positions
fn channelGrad(ch: u32, lid: u32, lane: u32, lanes: u32, live: bool) {
  let spatial = pu(13u);
  let m = select(0u, pu(16u) * spatial, live);
  let g = ch / pu(14u);
  ${BLOCKED("acc", "vec2<f32>(0.0)", "paramTerms(e, ch, g, spatial)")}
  let s = segSum2(lid, lane, acc);
  if (live && lane == 0u) {
    let flags = pu(11u);
    if ((flags & 2u) != 0u) { gw[pu(9u) + ch] = s.x; }
    if ((flags & 4u) != 0u) { gb[pu(10u) + ch] = s.y; }
  }
}
fn paramTerms(k: u32, ch: u32, g: u32, spatial: u32) -> vec2<f32> {
  let n = k / spatial;
  let i = (n * pu(15u) + ch) * spatial + (k - n * spatial);
  let sg = n * pu(12u) + g;
  let dy = gy[pu(3u) + i];
  return vec2<f32>(dy * (x[pu(4u) + i] - mean[pu(6u) + sg]) * rstd[pu(7u) + sg], dy);
}
${segmentMain(subgroups)}
  if (pu(1u) == 0u) {
    segmentGrad(seg, lid, lane, lanes, live);
  } else {
    channelGrad(seg, lid, lane, lanes, live);
  }
}
`;

type Norm = Pick<
  Backend<BufferTypes>,
  "softmax" | "groupNorm" | "groupNormBackward" | "layerNorm" | "layerNormBackward"
>;

export function normKernels(rt: GpuRuntime): Norm {
  const { key, enables } = segmentVariant(rt);
  const forward = () => rt.pipeline(`nn:rows${key}`, () => forwardSource(rt.subgroups), enables);
  const backward = () => rt.pipeline(`nn:rowsBackward${key}`, () => backwardSource(rt.subgroups), enables);

  const norm = (
    x: unknown,
    weight: unknown,
    bias: unknown,
    out: unknown,
    mean: unknown,
    rstd: unknown,
    n: number,
    c: number,
    spatial: number,
    groups: number,
    eps: number,
    silu: boolean,
  ): void => {
    const segments = n * groups;
    if (segments === 0) return;
    const cpg = c / groups;
    const p = new Params()
      .u(segments)
      .u(silu ? 3 : 2)
      .u(cpg * spatial)
      .u(at(x))
      .u(at(out))
      .u(weight ? at(weight) : 0)
      .u(bias ? at(bias) : 0)
      .u(at(mean))
      .u(at(rstd))
      .u((weight ? 1 : 0) | (bias ? 2 : 0))
      .u(groups)
      .u(Math.max(spatial, 1))
      .u(cpg)
      .f(eps);
    const grid = segmentGrid(p, segments, lanesFor(cpg * spatial));
    const none = placeholder(rt, 2);
    rt.dispatch(
      forward(),
      p,
      [
        { buffer: buf(x) },
        { buffer: weight ? buf(weight) : none },
        { buffer: bias ? buf(bias) : none },
        { buffer: buf(out), write: true },
        { buffer: buf(mean), write: true },
        { buffer: buf(rstd), write: true },
      ],
      grid,
    );
  };

  const normBackward = (
    gradOut: unknown,
    x: unknown,
    weight: unknown,
    mean: unknown,
    rstd: unknown,
    gradX: unknown,
    gradWeight: unknown,
    gradBias: unknown,
    n: number,
    c: number,
    spatial: number,
    groups: number,
  ): void => {
    if (n * c === 0) return;
    const cpg = c / groups;
    const flags = (weight ? 1 : 0) | (gradWeight ? 2 : 0) | (gradBias ? 4 : 0);
    const bindings = [
      { buffer: buf(gradOut) },
      { buffer: buf(x) },
      { buffer: weight ? buf(weight) : placeholder(rt, 2) },
      { buffer: buf(mean) },
      { buffer: buf(rstd) },
      { buffer: buf(gradX), write: true },
      { buffer: gradWeight ? buf(gradWeight) : placeholder(rt, 0), write: true },
      { buffer: gradBias ? buf(gradBias) : placeholder(rt, 1), write: true },
    ];
    const dispatch = (count: number, mode: number, m: number) => {
      const p = new Params()
        .u(count)
        .u(mode)
        .u(cpg * spatial)
        .u(at(gradOut))
        .u(at(x))
        .u(weight ? at(weight) : 0)
        .u(at(mean))
        .u(at(rstd))
        .u(at(gradX))
        .u(gradWeight ? at(gradWeight) : 0)
        .u(gradBias ? at(gradBias) : 0)
        .u(flags)
        .u(groups)
        .u(Math.max(spatial, 1))
        .u(cpg)
        .u(c)
        .u(n);
      rt.dispatch(backward(), p, bindings, segmentGrid(p, count, lanesFor(m)));
    };
    dispatch(n * groups, 0, cpg * spatial);
    if (gradWeight || gradBias) dispatch(c, 1, n * spatial);
  };

  return {
    softmax(x: unknown, out: unknown, rows: number, cols: number, log: boolean): void {
      if (rows * cols === 0) return;
      const p = new Params()
        .u(rows)
        .u(log ? 1 : 0)
        .u(cols)
        .u(at(x))
        .u(at(out));
      const grid = segmentGrid(p, rows, lanesFor(cols));
      const none = placeholder(rt, 2);
      rt.dispatch(
        forward(),
        p,
        [
          { buffer: buf(x) },
          { buffer: none },
          { buffer: none },
          { buffer: buf(out), write: true },
          { buffer: placeholder(rt, 0), write: true },
          { buffer: placeholder(rt, 1), write: true },
        ],
        grid,
      );
    },
    groupNorm: norm,
    groupNormBackward: normBackward,
    layerNorm(x, weight, bias, out, mean, rstd, rows, cols, eps): void {
      norm(x, weight, bias, out, mean, rstd, rows, cols, 1, 1, eps, false);
    },
    layerNormBackward(gradOut, x, weight, mean, rstd, gradX, gradWeight, gradBias, rows, cols): void {
      normBackward(gradOut, x, weight, mean, rstd, gradX, gradWeight, gradBias, rows, cols, 1, 1);
    },
  };
}
