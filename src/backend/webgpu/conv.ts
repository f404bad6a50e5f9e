// The 2-D convolutions as implicit GEMMs on the shared kernel of gemm.ts, one GEMM per group (the kernel's batch
// index is the group). T = kernelH * kernelW taps, cpg / opg = channels per group in / out:
// - forward:         out[n, g*opg + i, pos] = sum_{c, t} w[g*opg + i, c, t] * x[n, g*cpg + c, tap position]
//                    M = opg, N = batch * oh*ow, K = cpg * T, x gathered as im2col would lay it out;
// - backward input:  gradIn[n, g*cpg + i, pos] = sum_{o, t} w[g*opg + o, i, t] * gradOut[n, g*opg + o, (pos + pad
//                    - t*dil) / stride where that divides] (the transposed convolution): M = cpg, N = batch * H*W,
//                    K = opg * T;
// - backward weight: gradW[g*opg + i, c, t] = sum_{n, pos} gradOut[n, g*opg + i, pos] * x[n, g*cpg + c, ...]:
//                    M = opg, N = cpg * T, K = batch * oh*ow (the reduction over batch and positions in one pass,
//                    so the result does not depend on the grid: deterministic).
import type { Backend, BufferTypes, Conv2dParams, HalfWeightKernels } from "../backend.js";
import type { Gather, GemmLaunch } from "./gemm.js";
import { gpuBuffer } from "./memory.js";

type Launch = (l: GemmLaunch) => void;

function gatherOf(p: Conv2dParams, over: "x" | "gradOut", qRow: boolean): Gather {
  const common = {
    taps: p.kernelH * p.kernelW,
    kw: p.kernelW,
    sh: p.strideH,
    swd: p.strideW,
    ph: p.padH,
    pw: p.padW,
    dh: p.dilationH,
    dw: p.dilationW,
    qRow,
  };
  return over === "x"
    ? // positions of the output grid read the input image
      {
        ...common,
        sp: p.outH * p.outW,
        sw: p.outW,
        h: p.inH,
        w: p.inW,
        nStride: p.inChannels * p.inH * p.inW,
        inverse: false,
      }
    : // positions of the input grid read the output gradient
      {
        ...common,
        sp: p.inH * p.inW,
        sw: p.inW,
        h: p.outH,
        w: p.outW,
        nStride: p.outChannels * p.outH * p.outW,
        inverse: true,
      };
}

function forward(
  launch: Launch,
  x: unknown,
  w: unknown,
  half: boolean,
  bias: unknown,
  out: unknown,
  p: Conv2dParams,
  residual: unknown,
): void {
  const cpg = p.inChannels / p.groups;
  const opg = p.outChannels / p.groups;
  const taps = p.kernelH * p.kernelW;
  const K = cpg * taps;
  const positions = p.outH * p.outW;
  const wb = gpuBuffer(w);
  const o = gpuBuffer(out);
  launch({
    m: opg,
    n: p.batch * positions,
    k: K,
    batch: p.groups,
    alpha: 1,
    accumulate: false,
    a: {
      buf: wb,
      half,
      off: wb.first(half ? 2 : 4),
      batch: opg * K,
      row: K,
      period: K,
      periodStride: 0,
      col: 1,
    },
    b: {
      buf: gpuBuffer(x),
      half: false,
      off: gpuBuffer(x).first(4),
      batch: cpg * p.inH * p.inW,
      row: 0,
      col: 0,
      gather: gatherOf(p, "x", false),
    },
    out: {
      buf: o,
      off: o.first(4),
      batch: opg * positions,
      row: positions,
      period: positions,
      periodStride: p.outChannels * positions,
    },
    biasRows: bias ? { buf: gpuBuffer(bias), off: gpuBuffer(bias).first(4), batch: opg } : null,
    residual: residual ? { buf: gpuBuffer(residual), off: gpuBuffer(residual).first(4) } : null,
  });
}

/** The convolutions on the shared GEMM kernel. */
export function convKernels(
  launch: Launch,
): Pick<Backend<BufferTypes>, "conv2d" | "conv2dBackwardInput" | "conv2dBackwardWeight"> &
  Pick<HalfWeightKernels<BufferTypes>, "conv2dHalfW"> {
  return {
    conv2d(x, w, bias, out, p, residual): void {
      forward(launch, x, w, false, bias, out, p, residual);
    },

    conv2dHalfW(x, w, bias, out, p, residual): void {
      forward(launch, x, w, true, bias, out, p, residual);
    },

    conv2dBackwardInput(gradOut, w, gradIn, p): void {
      const cpg = p.inChannels / p.groups;
      const opg = p.outChannels / p.groups;
      const taps = p.kernelH * p.kernelW;
      const plane = p.inH * p.inW;
      const wb = gpuBuffer(w);
      const g = gpuBuffer(gradOut);
      const o = gpuBuffer(gradIn);
      launch({
        m: cpg,
        n: p.batch * plane,
        k: opg * taps,
        batch: p.groups,
        alpha: 1,
        accumulate: false,
        // A[i][(o, t)] = w[g*opg + o, i, t]
        a: {
          buf: wb,
          half: false,
          off: wb.first(4),
          batch: opg * cpg * taps,
          row: taps,
          period: taps,
          periodStride: cpg * taps,
          col: 1,
        },
        b: {
          buf: g,
          half: false,
          off: g.first(4),
          batch: opg * p.outH * p.outW,
          row: 0,
          col: 0,
          gather: gatherOf(p, "gradOut", false),
        },
        out: {
          buf: o,
          off: o.first(4),
          batch: cpg * plane,
          row: plane,
          period: plane,
          periodStride: p.inChannels * plane,
        },
      });
    },

    conv2dBackwardWeight(x, gradOut, gradW, p): void {
      const cpg = p.inChannels / p.groups;
      const opg = p.outChannels / p.groups;
      const taps = p.kernelH * p.kernelW;
      const positions = p.outH * p.outW;
      const g = gpuBuffer(gradOut);
      const o = gpuBuffer(gradW);
      const n = cpg * taps;
      launch({
        m: opg,
        n,
        k: p.batch * positions,
        batch: p.groups,
        alpha: 1,
        accumulate: false,
        // A[i][(n, pos)] = gradOut[n, g*opg + i, pos]
        a: {
          buf: g,
          half: false,
          off: g.first(4),
          batch: opg * positions,
          row: positions,
          period: positions,
          periodStride: p.outChannels * positions,
          col: 1,
        },
        b: {
          buf: gpuBuffer(x),
          half: false,
          off: gpuBuffer(x).first(4),
          batch: cpg * p.inH * p.inW,
          row: 0,
          col: 0,
          gather: gatherOf(p, "x", true),
        },
        out: { buf: o, off: o.first(4), batch: opg * n, row: n, period: n, periodStride: 0 },
      });
    },
  };
}
