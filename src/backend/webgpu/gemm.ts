// One tiled matrix-product kernel behind gemm, the three convolutions and the float16-weight variants: a
// 64x64 output tile per workgroup of 16x16 threads (4x4 outputs each, four vec4 accumulators), K in tiles of 16
// through workgroup memory. Everything that differs between the callers is in the uniform parameters:
// - A[b][i][p] = A[aOff + b*aBatch + i*aRow + (p / aPeriod)*aPeriodStride + (p % aPeriod)*aCol]: a strided
//   matrix, or a weight / gradient read as one (the period walks the kernel taps of a channel, or the positions
//   of an image, whose blocks are strided apart);
// - B is strided, or gathered from an NCHW image as im2col would lay it out (implicit GEMM: no im2col buffer);
// - out[b][i][j] is at oOff + b*oBatch + i*oRow + (j / oPeriod)*oPeriodStride + j % oPeriod (contiguous, or the
//   N dimension folded over batch x positions of an NCHW output);
// - A and B are float32 or float16 bits (both bound as u32 words), and the epilogue applies alpha, accumulate,
//   per-column bias, per-row bias and a residual.
// One pipeline for all of them: each distinct pipeline costs seconds of compile on the software adapters.
import type { GpuBuffer } from "./memory.js";
import { BufferUsage, type GpuRuntime, Params } from "./runtime.js";
import { HALF } from "./wgsl.js";

/** Parameter slots of the kernel. */
const S = {
  FLAGS: 0,
  M: 1,
  N: 2,
  K: 3,
  BATCH: 4,
  TILES_N: 5,
  TILES_M: 6,
  ALPHA: 7,
  A_OFF: 8,
  A_BATCH: 9,
  A_ROW: 10,
  A_PERIOD: 11,
  A_PSTRIDE: 12,
  A_COL: 13,
  B_OFF: 14,
  B_BATCH: 15,
  B_ROW: 16,
  B_COL: 17,
  G_SP: 18,
  G_SW: 19,
  G_H: 20,
  G_W: 21,
  G_NSTRIDE: 22,
  G_TAPS: 23,
  G_KW: 24,
  G_SH: 25,
  G_SWD: 26,
  G_PH: 27,
  G_PW: 28,
  G_DH: 29,
  G_DW: 30,
  O_OFF: 31,
  O_BATCH: 32,
  O_ROW: 33,
  O_PERIOD: 34,
  O_PSTRIDE: 35,
  RES_OFF: 36,
  BIAS_OFF: 37,
  BR_OFF: 38,
  BR_BATCH: 39,
} as const;
const WORDS = 40;

/** Flag bits (slot FLAGS). */
const F = {
  A_HALF: 1,
  B_HALF: 2,
  GATHER: 4,
  INVERSE: 8,
  Q_ROW: 16,
  A_ALONG_M: 32,
  B_ALONG_K: 64,
  ACCUM: 128,
  BIAS: 256,
  BIAS_ROWS: 512,
  RESIDUAL: 1024,
} as const;

const TILE = 64;

const consts = (prefix: string, o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, v]) => `const ${prefix}${k} = ${v}u;`)
    .join("\n");

const SOURCE = /* wgsl */ `
${consts("S_", S)}
${consts("F_", F)}
@group(0) @binding(1) var<storage, read> A: array<u32>;
@group(0) @binding(2) var<storage, read> B: array<u32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
@group(0) @binding(4) var<storage, read> biasCol: array<f32>;
@group(0) @binding(5) var<storage, read> biasRow: array<f32>;
@group(0) @binding(6) var<storage, read> resid: array<f32>;
${HALF}
// [16 k][16 vec4 rows] of A and [16 k][16 vec4 columns] of B: 8 KB
var<workgroup> As: array<vec4<f32>, 256>;
var<workgroup> Bs: array<vec4<f32>, 256>;

fn has(f: u32) -> bool { return (pu(S_FLAGS) & f) != 0u; }

fn ldA(i: u32) -> f32 {
  if (has(F_A_HALF)) { return halfToF32((A[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu); }
  return bitcast<f32>(A[i]);
}
fn ldB(i: u32) -> f32 {
  if (has(F_B_HALF)) { return halfToF32((B[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu); }
  return bitcast<f32>(B[i]);
}

fn elemA(b: u32, i: u32, p: u32) -> f32 {
  if (i >= pu(S_M) || p >= pu(S_K)) { return 0.0; }
  let per = pu(S_A_PERIOD);
  return ldA(pu(S_A_OFF) + b * pu(S_A_BATCH) + i * pu(S_A_ROW) + (p / per) * pu(S_A_PSTRIDE) + (p % per) * pu(S_A_COL));
}

fn elemB(b: u32, p: u32, j: u32) -> f32 {
  if (p >= pu(S_K) || j >= pu(S_N)) { return 0.0; }
  if (!has(F_GATHER)) { return ldB(pu(S_B_OFF) + b * pu(S_B_BATCH) + p * pu(S_B_ROW) + j * pu(S_B_COL)); }
  // implicit im2col: q runs over (image, y, x) of the position grid, r over (channel, ky, kx)
  let qRow = has(F_Q_ROW);
  let q = select(j, p, qRow);
  let r = select(p, j, qRow);
  let sp = pu(S_G_SP);
  let img = q / sp;
  let s = q % sp;
  let y = i32(s / pu(S_G_SW));
  let x = i32(s % pu(S_G_SW));
  let taps = pu(S_G_TAPS);
  let ch = r / taps;
  let t = r % taps;
  let ky = i32(t / pu(S_G_KW));
  let kx = i32(t % pu(S_G_KW));
  let sh = pi(S_G_SH);
  let sw = pi(S_G_SWD);
  var iy: i32;
  var ix: i32;
  if (has(F_INVERSE)) {
    // transposed convolution: input position y was read by output (y + pad - ky*dil) / stride when that divides
    let ty = y + pi(S_G_PH) - ky * pi(S_G_DH);
    let tx = x + pi(S_G_PW) - kx * pi(S_G_DW);
    iy = select(-1, ty / sh, ty >= 0 && ty % sh == 0);
    ix = select(-1, tx / sw, tx >= 0 && tx % sw == 0);
  } else {
    iy = y * sh - pi(S_G_PH) + ky * pi(S_G_DH);
    ix = x * sw - pi(S_G_PW) + kx * pi(S_G_DW);
  }
  let h = pi(S_G_H);
  let w = pi(S_G_W);
  if (iy < 0 || iy >= h || ix < 0 || ix >= w) { return 0.0; }
  return ldB(pu(S_B_OFF) + b * pu(S_B_BATCH) + img * pu(S_G_NSTRIDE) + ch * u32(h * w) + u32(iy * w + ix));
}

fn store(b: u32, i: u32, j0: u32, v: vec4<f32>) {
  if (i >= pu(S_M)) { return; }
  let per = pu(S_O_PERIOD);
  for (var c = 0u; c < 4u; c++) {
    let j = j0 + c;
    if (j >= pu(S_N)) { return; }
    // the reference's order: alpha*AB + bias + row bias, (+ out), then the residual
    var x = pf(S_ALPHA) * v[c];
    if (has(F_BIAS)) { x = x + biasCol[pu(S_BIAS_OFF) + j]; }
    if (has(F_BIAS_ROWS)) { x = x + biasRow[pu(S_BR_OFF) + b * pu(S_BR_BATCH) + i]; }
    let rel = b * pu(S_O_BATCH) + i * pu(S_O_ROW) + (j / per) * pu(S_O_PSTRIDE) + j % per;
    let o = pu(S_O_OFF) + rel;
    if (has(F_ACCUM)) { x = O[o] + x; }
    if (has(F_RESIDUAL)) { x = x + resid[pu(S_RES_OFF) + rel]; }
    O[o] = x;
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let tilesN = pu(S_TILES_N);
  let perBatch = tilesN * pu(S_TILES_M);
  let flat = wid.y * nwg.x + wid.x;
  let b = flat / perBatch;
  if (b >= pu(S_BATCH)) { return; }
  let rem = flat % perBatch;
  let m0 = (rem / tilesN) * 64u;
  let n0 = (rem % tilesN) * 64u;
  let lo = lid % 16u;
  let hi = lid / 16u;
  // tile loads: 16 neighbouring threads walk the operand's contiguous axis (coalesced reads)
  let aAlongM = has(F_A_ALONG_M);
  let aK = select(lo, hi, aAlongM);
  let aV = select(hi, lo, aAlongM);
  let bAlongK = has(F_B_ALONG_K);
  let bK = select(hi, lo, bAlongK);
  let bV = select(lo, hi, bAlongK);
  let ia = m0 + aV * 4u;
  let jb = n0 + bV * 4u;
  var c0 = vec4<f32>();
  var c1 = vec4<f32>();
  var c2 = vec4<f32>();
  var c3 = vec4<f32>();
  let kTiles = (pu(S_K) + 15u) / 16u;
  for (var t = 0u; t < kTiles; t++) {
    let pa = t * 16u + aK;
    As[aK * 16u + aV] = vec4<f32>(elemA(b, ia, pa), elemA(b, ia + 1u, pa), elemA(b, ia + 2u, pa), elemA(b, ia + 3u, pa));
    let pb = t * 16u + bK;
    Bs[bK * 16u + bV] = vec4<f32>(elemB(b, pb, jb), elemB(b, pb, jb + 1u), elemB(b, pb, jb + 2u), elemB(b, pb, jb + 3u));
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let av = As[kk * 16u + hi];
      let bv = Bs[kk * 16u + lo];
      c0 += av.x * bv;
      c1 += av.y * bv;
      c2 += av.z * bv;
      c3 += av.w * bv;
    }
    workgroupBarrier();
  }
  let i0 = m0 + hi * 4u;
  let j0 = n0 + lo * 4u;
  store(b, i0, j0, c0);
  store(b, i0 + 1u, j0, c1);
  store(b, i0 + 2u, j0, c2);
  store(b, i0 + 3u, j0, c3);
}
`;

/** A(b, i, p) as a generalized strided view (see the top of the file). */
export interface OperandA {
  readonly buf: GpuBuffer;
  readonly half: boolean;
  /** element offset, including the handle's own */
  readonly off: number;
  readonly batch: number;
  readonly row: number;
  /** p = (p / period) * periodStride + (p % period) * col */
  readonly period: number;
  readonly periodStride: number;
  readonly col: number;
}

/** The conv gather of B: q over (image, y, x), r over (channel, ky, kx); see conv.ts. */
export interface Gather {
  /** positions per image of the q side, and its width */
  readonly sp: number;
  readonly sw: number;
  /** the gathered image's height, width, and element stride between images */
  readonly h: number;
  readonly w: number;
  readonly nStride: number;
  readonly taps: number;
  readonly kw: number;
  readonly sh: number;
  readonly swd: number;
  readonly ph: number;
  readonly pw: number;
  readonly dh: number;
  readonly dw: number;
  /** transposed convolution (gradient wrt the input) */
  readonly inverse: boolean;
  /** q is the row index p (and r the column j) */
  readonly qRow: boolean;
}

export interface OperandB {
  readonly buf: GpuBuffer;
  readonly half: boolean;
  readonly off: number;
  readonly batch: number;
  readonly row: number;
  readonly col: number;
  readonly gather?: Gather;
}

/** Everything one launch of the kernel needs. */
export interface GemmLaunch {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly batch: number;
  readonly alpha: number;
  readonly accumulate: boolean;
  readonly a: OperandA;
  readonly b: OperandB;
  readonly out: {
    buf: GpuBuffer;
    off: number;
    batch: number;
    row: number;
    period: number;
    periodStride: number;
  };
  readonly bias?: { buf: GpuBuffer; off: number } | null;
  readonly biasRows?: { buf: GpuBuffer; off: number; batch: number } | null;
  /** laid out as out, from its own offset */
  readonly residual?: { buf: GpuBuffer; off: number } | null;
}

/** The launcher of the shared kernel on `rt`. */
export function gemmLauncher(rt: GpuRuntime): (l: GemmLaunch) => void {
  let dummy: GPUBuffer | null = null;
  // absent optional operands are bound to a small buffer the kernel never reads
  const spare = () => (dummy ??= rt.device.createBuffer({ size: 16, usage: BufferUsage.STORAGE }));
  return (l) => {
    const { m, n, k, batch } = l;
    if (m === 0 || n === 0 || batch === 0) return;
    const tilesN = Math.ceil(n / TILE);
    const tilesM = Math.ceil(m / TILE);
    const g = l.b.gather;
    let flags = 0;
    if (l.a.half) flags |= F.A_HALF;
    if (l.b.half) flags |= F.B_HALF;
    if (l.accumulate) flags |= F.ACCUM;
    if (l.bias) flags |= F.BIAS;
    if (l.biasRows) flags |= F.BIAS_ROWS;
    if (l.residual) flags |= F.RESIDUAL;
    if (l.a.col !== 1 && Math.abs(l.a.row) < Math.abs(l.a.col)) flags |= F.A_ALONG_M;
    if (g) {
      flags |= F.GATHER;
      if (g.inverse) flags |= F.INVERSE;
      if (g.qRow) flags |= F.Q_ROW | F.B_ALONG_K;
    } else if (l.b.col !== 1 && Math.abs(l.b.row) < Math.abs(l.b.col)) {
      flags |= F.B_ALONG_K;
    }
    const w = new Array<number>(WORDS).fill(0);
    w[S.FLAGS] = flags;
    w[S.M] = m;
    w[S.N] = n;
    w[S.K] = k;
    w[S.BATCH] = batch;
    w[S.TILES_N] = tilesN;
    w[S.TILES_M] = tilesM;
    w[S.A_OFF] = l.a.off;
    w[S.A_BATCH] = l.a.batch;
    w[S.A_ROW] = l.a.row;
    w[S.A_PERIOD] = Math.max(1, l.a.period);
    w[S.A_PSTRIDE] = l.a.periodStride;
    w[S.A_COL] = l.a.col;
    w[S.B_OFF] = l.b.off;
    w[S.B_BATCH] = l.b.batch;
    w[S.B_ROW] = l.b.row;
    w[S.B_COL] = l.b.col;
    if (g) {
      w[S.G_SP] = g.sp;
      w[S.G_SW] = g.sw;
      w[S.G_H] = g.h;
      w[S.G_W] = g.w;
      w[S.G_NSTRIDE] = g.nStride;
      w[S.G_TAPS] = g.taps;
      w[S.G_KW] = g.kw;
      w[S.G_SH] = g.sh;
      w[S.G_SWD] = g.swd;
      w[S.G_PH] = g.ph;
      w[S.G_PW] = g.pw;
      w[S.G_DH] = g.dh;
      w[S.G_DW] = g.dw;
    }
    w[S.O_OFF] = l.out.off;
    w[S.O_BATCH] = l.out.batch;
    w[S.O_ROW] = l.out.row;
    w[S.O_PERIOD] = Math.max(1, l.out.period);
    w[S.O_PSTRIDE] = l.out.periodStride;
    w[S.RES_OFF] = l.residual?.off ?? 0;
    w[S.BIAS_OFF] = l.bias?.off ?? 0;
    w[S.BR_OFF] = l.biasRows?.off ?? 0;
    w[S.BR_BATCH] = l.biasRows?.batch ?? 0;
    const p = new Params();
    for (let i = 0; i < WORDS; i++) {
      if (i === S.ALPHA) p.f(l.alpha);
      else p.u(w[i]!);
    }
    const total = tilesN * tilesM * batch;
    const x = Math.min(total, 65535);
    rt.dispatch(
      rt.pipeline("matmul:gemm", () => SOURCE),
      p,
      [
        { buffer: l.a.buf.gpu },
        { buffer: l.b.buf.gpu },
        { buffer: l.out.buf.gpu, write: true },
        { buffer: l.bias?.buf.gpu ?? spare() },
        { buffer: l.biasRows?.buf.gpu ?? spare() },
        { buffer: l.residual?.buf.gpu ?? spare() },
      ],
      { x, y: Math.ceil(total / x) },
    );
  };
}
