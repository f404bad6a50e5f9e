// The matrix-product kernels of the WebGPU backend: gemm (float32 or float16 B) and the convolutions on one tiled
// implicit-GEMM pipeline (gemm.ts, conv.ts), and fused attention (attention.ts): two pipelines in all.
import type { Backend, BufferTypes, GemmHalfBParams, GemmParams } from "../backend.js";
import { attentionKernel } from "./attention.js";
import { convKernels } from "./conv.js";
import { type GemmLaunch, gemmLauncher } from "./gemm.js";
import { gpuBuffer } from "./memory.js";
import type { GpuRuntime } from "./runtime.js";

type Bufs = BufferTypes;

function gemmLaunch(p: GemmParams<Bufs> | GemmHalfBParams<Bufs>, halfB: boolean): GemmLaunch {
  const a = gpuBuffer(p.a);
  const b = gpuBuffer(p.b);
  const out = gpuBuffer(p.out);
  const f32 = (buf: unknown, off: number) => ({ buf: gpuBuffer(buf), off: gpuBuffer(buf).first(4) + off });
  const mn = p.m * p.n;
  return {
    m: p.m,
    n: p.n,
    k: p.k,
    batch: p.batch,
    alpha: p.alpha,
    accumulate: p.accumulate,
    a: {
      buf: a,
      half: false,
      off: a.first(4) + p.aOffset,
      batch: p.aBatchStride,
      row: p.aRowStride,
      period: p.k,
      periodStride: 0,
      col: p.aColStride,
    },
    b: {
      buf: b,
      half: halfB,
      off: b.first(halfB ? 2 : 4) + p.bOffset,
      batch: p.bBatchStride,
      row: p.bRowStride,
      col: p.bColStride,
    },
    out: { buf: out, off: out.first(4) + p.outOffset, batch: mn, row: p.n, period: p.n, periodStride: 0 },
    bias: p.bias ? f32(p.bias, 0) : null,
    biasRows: p.biasRows ? { ...f32(p.biasRows, 0), batch: 0 } : null,
    residual: p.residual ? f32(p.residual, p.residualOffset ?? 0) : null,
  };
}

export function matmulKernels(
  rt: GpuRuntime,
): Pick<Backend<Bufs>, "gemm" | "conv2d" | "conv2dBackwardInput" | "conv2dBackwardWeight" | "attention"> &
  Partial<Pick<Backend<Bufs>, "halfWeights" | "linearGeglu">> {
  const launch = gemmLauncher(rt);
  const { conv2dHalfW, ...conv } = convKernels(launch);
  return {
    gemm: (p) => launch(gemmLaunch(p, false)),
    ...conv,
    attention: attentionKernel(rt),
    halfWeights: {
      gemmHalfB: (p) => launch(gemmLaunch(p, true)),
      conv2dHalfW,
    },
  };
}
