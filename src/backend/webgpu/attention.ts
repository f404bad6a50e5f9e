// Fused attention softmax(scale * Q K^T + mask) V in one pass over the keys, as FlashAttention (Dao et al. 2022):
// a workgroup takes one head and a block of 32 queries, walks the keys in tiles of 16 through workgroup memory and
// keeps a running maximum m and sum l per query (the online softmax of Milakov & Gimelshein 2018): when a tile
// raises the maximum, the accumulated outputs and l are scaled by exp(m_old - m_new). No [lq, lk] matrix exists.
// The value width is covered in chunks of 160 columns (one chunk for SD's 40/64/80/160; more chunks recompute
// the scores). Keys whose mask is -Infinity get weight exactly 0, and a query with no such key left gives zeros,
// as the reference. Infinity is detected by its bits: compilers may assume there are none.
import { type AttentionParams, type BufferTypes, contiguousHeads, type HeadLayout } from "../backend.js";
import { gpuBuffer } from "./memory.js";
import { BufferUsage, type GpuRuntime, Params } from "./runtime.js";

const BQ = 32;
const DVW = 160;

const SOURCE = /* wgsl */ `
const BQ = ${BQ}u;
const BKV = 16u;
const DC = 16u;
const DVW = ${DVW}u;
const R = ${DVW / 8}u;
const PAD = 17u;
const NEG_INF_BITS = 0xff800000u;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> Kt: array<f32>;
@group(0) @binding(3) var<storage, read> V: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<storage, read> M: array<f32>;
// 15.3 KB: a [32 x 16] chunk of Q and [16 x 16] of K (rows padded against bank conflicts), the [32 x 16] scores
// (then weights), a [16 x 160] tile of V, and a per-query value
var<workgroup> Qs: array<f32, ${BQ * 17}>;
var<workgroup> Ks: array<f32, ${16 * 17}>;
var<workgroup> Ss: array<f32, ${BQ * 16}>;
var<workgroup> Vs: array<f32, ${16 * DVW}>;
var<workgroup> rowv: array<f32, ${BQ}>;

fn isNegInf(x: f32) -> bool { return bitcast<u32>(x) == NEG_INF_BITS; }

// the start of head b in a layout at slots s..s+2 (offset, outer stride, head stride)
fn headStart(s: u32, b: u32) -> u32 {
  let heads = pu(1u);
  return pu(s) + (b / heads) * pu(s + 1u) + (b % heads) * pu(s + 2u);
}

fn score(dot: f32, b: u32, i: u32, j: u32) -> f32 {
  // a run-time -Infinity (WGSL rejects a constant one); slot 63 is never written
  let negInf = bitcast<f32>(NEG_INF_BITS | pu(63u));
  if (j >= pu(3u)) { return negInf; }
  var s = dot * pf(6u);
  if (pu(9u) != 0u && i < pu(2u)) {
    let mv = M[pu(10u) + b * pu(11u) + i * pu(12u) + j];
    if (isNegInf(mv)) { return negInf; }
    s = s + mv;
  }
  return s;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let qBlocks = pu(7u);
  let chunks = pu(8u);
  let flat = wid.y * nwg.x + wid.x;
  let b = flat / (qBlocks * chunks);
  if (b >= pu(0u)) { return; }
  let rem = flat % (qBlocks * chunks);
  let q0 = (rem / chunks) * BQ;
  let dv0 = (rem % chunks) * DVW;
  let lq = pu(2u);
  let lk = pu(3u);
  let d = pu(4u);
  let dvc = min(DVW, pu(5u) - dv0);
  let qb = headStart(13u, b);
  let qrs = pu(16u);
  let kb = headStart(17u, b);
  let krs = pu(20u);
  let vb = headStart(21u, b) + dv0;
  let vrs = pu(24u);
  // thread roles: query row sq of the block; keys sj and sj + 8 of a tile; value columns sj + 8r
  let sq = lid / 8u;
  let sj = lid % 8u;
  let lc = lid % 16u;
  let lr = lid / 16u;
  var acc: array<f32, R>;
  // the running max and sum of query row lid (threads lid < 32)
  var mRun = -3.4028234e38;
  var lRun = 0.0;
  let kvTiles = (lk + 15u) / 16u;
  let dTiles = (d + 15u) / 16u;
  for (var kt = 0u; kt < kvTiles; kt++) {
    let k0 = kt * BKV;
    for (var idx = lid; idx < BKV * dvc; idx += 256u) {
      let j = idx / dvc;
      let c = idx % dvc;
      var val = 0.0;
      if (k0 + j < lk) { val = V[vb + (k0 + j) * vrs + c]; }
      Vs[j * DVW + c] = val;
    }
    var s0 = 0.0;
    var s1 = 0.0;
    for (var dt = 0u; dt < dTiles; dt++) {
      let t = dt * DC + lc;
      for (var r = 0u; r < 2u; r++) {
        let qi = lr + 16u * r;
        var qv = 0.0;
        if (q0 + qi < lq && t < d) { qv = Q[qb + (q0 + qi) * qrs + t]; }
        Qs[qi * PAD + lc] = qv;
      }
      var kv = 0.0;
      if (k0 + lr < lk && t < d) { kv = Kt[kb + (k0 + lr) * krs + t]; }
      Ks[lr * PAD + lc] = kv;
      workgroupBarrier();
      for (var u = 0u; u < DC; u++) {
        let qv = Qs[sq * PAD + u];
        s0 += qv * Ks[sj * PAD + u];
        s1 += qv * Ks[(sj + 8u) * PAD + u];
      }
      workgroupBarrier();
    }
    Ss[sq * BKV + sj] = score(s0, b, q0 + sq, k0 + sj);
    Ss[sq * BKV + sj + 8u] = score(s1, b, q0 + sq, k0 + sj + 8u);
    workgroupBarrier();
    if (lid < BQ) {
      var mNew = mRun;
      for (var j = 0u; j < BKV; j++) {
        let s = Ss[lid * BKV + j];
        if (!isNegInf(s)) { mNew = max(mNew, s); }
      }
      var sum = 0.0;
      for (var j = 0u; j < BKV; j++) {
        let s = Ss[lid * BKV + j];
        // exponents clamped at -87 (e^-87 ~ 1.6e-38): no infinity or NaN is ever formed from finite scores
        var e = 0.0;
        if (!isNegInf(s)) { e = exp(max(s - mNew, -87.0)); }
        Ss[lid * BKV + j] = e;
        sum += e;
      }
      // nothing accumulated yet: no rescale (and no exp of a difference with the initial -FLT_MAX)
      let corr = select(exp(max(mRun - mNew, -87.0)), 1.0, lRun == 0.0);
      lRun = lRun * corr + sum;
      mRun = mNew;
      rowv[lid] = corr;
    }
    workgroupBarrier();
    let corr = rowv[sq];
    for (var r = 0u; r < R; r++) { acc[r] *= corr; }
    for (var j = 0u; j < BKV; j++) {
      let e = Ss[sq * BKV + j];
      for (var r = 0u; r < R; r++) {
        if (r * 8u < dvc) { acc[r] += e * Vs[j * DVW + sj + 8u * r]; }
      }
    }
    workgroupBarrier();
  }
  if (lid < BQ) { rowv[lid] = lRun; }
  workgroupBarrier();
  let l = rowv[sq];
  let i = q0 + sq;
  if (i >= lq) { return; }
  let ob = headStart(25u, b) + i * pu(28u) + dv0;
  for (var r = 0u; r < R; r++) {
    let c = sj + 8u * r;
    // a query whose keys are all masked gives zeros
    if (c < dvc) { O[ob + c] = select(acc[r] / l, 0.0, l == 0.0); }
  }
}
`;

/** Fused attention on `rt`. */
export function attentionKernel(rt: GpuRuntime): (p: AttentionParams<BufferTypes>) => void {
  let dummy: GPUBuffer | null = null;
  return (p) => {
    const { batch, lq, lk, d, dv } = p;
    if (batch === 0 || lq === 0 || dv === 0) return;
    const heads = p.heads ?? 1;
    const layouts: [unknown, HeadLayout][] = [
      [p.q, p.qLayout ?? contiguousHeads(heads, lq, d)],
      [p.k, p.kLayout ?? contiguousHeads(heads, lk, d)],
      [p.v, p.vLayout ?? contiguousHeads(heads, lk, dv)],
      [p.out, p.outLayout ?? contiguousHeads(heads, lq, dv)],
    ];
    const qBlocks = Math.ceil(lq / BQ);
    const chunks = Math.ceil(dv / DVW);
    const mask = p.mask ? gpuBuffer(p.mask) : null;
    const params = new Params()
      .u(batch)
      .u(heads)
      .u(lq)
      .u(lk)
      .u(d)
      .u(dv)
      .f(p.scale)
      .u(qBlocks)
      .u(chunks)
      .u(mask ? 1 : 0)
      .u(mask ? mask.first(4) : 0)
      .u(p.maskBatchStride ?? 0)
      .u(p.maskRowStride ?? 0);
    for (const [buf, l] of layouts) {
      params
        .u(gpuBuffer(buf).first(4) + l.offset)
        .u(l.outerStride)
        .u(l.headStride)
        .u(l.rowStride);
    }
    const total = qBlocks * chunks * batch;
    const x = Math.min(total, 65535);
    dummy ??= rt.device.createBuffer({ size: 16, usage: BufferUsage.STORAGE });
    rt.dispatch(
      rt.pipeline("matmul:attention", () => SOURCE),
      params,
      [
        { buffer: gpuBuffer(p.q).gpu },
        { buffer: gpuBuffer(p.k).gpu },
        { buffer: gpuBuffer(p.v).gpu },
        { buffer: gpuBuffer(p.out).gpu, write: true },
        { buffer: mask ? mask.gpu : dummy },
      ],
      { x, y: Math.ceil(total / x) },
    );
  };
}
