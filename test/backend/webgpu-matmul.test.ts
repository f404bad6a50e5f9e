// WebGPU gemm and convolutions (one shared implicit-GEMM pipeline) against the reference backend: odd sizes that
// leave partial 64x64 tiles and K tiles, transposed and broadcast operands, offsets and subviews, every epilogue
// option, float16 operands, and the three convolutions over strides, padding, dilation and groups.
// Tolerance: 1e-5 of the output's scale (max(1, max |want|)); the GPU sums in float32, the reference in float64.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BufferTypes, Conv2dParams, GemmParams } from "../../src/backend/index.js";
import type { DeviceBuffer } from "../../src/tensor/device.js";
import { convertStorage } from "../../src/tensor/dtype.js";
import { testRng } from "../rng.js";
import { adapter, assertClose, down, gpu, randArray, ref, skip, up } from "./webgpu-helpers.js";

const TOL = 1e-5;

/** float16 bits of `x`, and the float32 values they stand for (what the reference multiplies by). */
function halfOf(x: Float32Array): { bits: Uint16Array; widened: Float32Array } {
  const bits = convertStorage(x, "float32", "float16") as Uint16Array;
  return { bits, widened: convertStorage(bits, "float16", "float32") as Float32Array };
}

describe(`webgpu gemm (${adapter})`, { skip }, () => {
  const rng = testRng(5);

  interface Case {
    batch: number;
    m: number;
    n: number;
    k: number;
    transA?: boolean;
    transB?: boolean;
    /** B shared by every batch (batch stride 0) */
    broadcastB?: boolean;
    alpha?: number;
    accumulate?: boolean;
    bias?: boolean;
    biasRows?: boolean;
    residual?: boolean;
    /** element offsets: of the subview into the GPU buffers, then of the operands within them */
    view?: number;
    offset?: number;
    halfB?: boolean;
  }

  async function check(c: Case): Promise<void> {
    const { batch, m, n, k } = c;
    const view = c.view ?? 0;
    const off = c.offset ?? 0;
    const aSize = off + batch * m * k;
    const bBatches = c.broadcastB ? 1 : batch;
    const bSize = off + bBatches * k * n;
    const outSize = off + batch * m * n + 3;
    const a = randArray(view + aSize, rng);
    let b = randArray(view + bSize, rng);
    const out0 = randArray(view + outSize, rng);
    const bias = randArray(n, rng);
    const biasRows = randArray(m, rng);
    const residual = randArray(2 + batch * m * n, rng);
    let bDevice: DeviceBuffer;
    if (c.halfB) {
      const h = halfOf(b);
      b = h.widened;
      bDevice = up(h.bits, "float16");
    } else {
      bDevice = up(b);
    }
    const shape = {
      batch,
      m,
      n,
      k,
      aBatchStride: m * k,
      aRowStride: c.transA ? 1 : k,
      aColStride: c.transA ? m : 1,
      bBatchStride: c.broadcastB ? 0 : k * n,
      bRowStride: c.transB ? 1 : n,
      bColStride: c.transB ? k : 1,
      alpha: c.alpha ?? 1,
      accumulate: c.accumulate ?? false,
    };
    const want = out0.slice();
    ref.gemm({
      ...shape,
      a,
      aOffset: view + off,
      b,
      bOffset: view + off,
      out: want,
      outOffset: view + off,
      bias: c.bias ? bias : null,
      biasRows: c.biasRows ? biasRows : null,
      residual: c.residual ? residual : null,
      residualOffset: 2,
    });
    const sub = (buf: DeviceBuffer, dtype: "float32" | "float16", size: number) =>
      view ? gpu.memory.subview(buf, dtype, view, size) : buf;
    const outFull = up(out0);
    const p: GemmParams<BufferTypes> = {
      ...shape,
      a: sub(up(a), "float32", aSize),
      aOffset: off,
      b: sub(bDevice, c.halfB ? "float16" : "float32", bSize),
      bOffset: off,
      out: sub(outFull, "float32", outSize),
      outOffset: off,
      bias: c.bias ? up(bias) : null,
      biasRows: c.biasRows ? up(biasRows) : null,
      residual: c.residual ? up(residual) : null,
      residualOffset: 2,
    };
    if (c.halfB) gpu.halfWeights!.gemmHalfB(p);
    else gpu.gemm(p);
    assertClose(await down(outFull, out0.length), want, TOL, JSON.stringify(c));
  }

  it("odd sizes: partial tiles in m, n and k", async () => {
    await check({ batch: 1, m: 1, n: 1, k: 1 });
    await check({ batch: 2, m: 17, n: 65, k: 130 });
    await check({ batch: 1, m: 130, n: 17, k: 65 });
    await check({ batch: 1, m: 65, n: 130, k: 17 });
  });

  it("transposed operands, a broadcast B, offsets into subviews, alpha", async () => {
    await check({
      batch: 3,
      m: 17,
      n: 33,
      k: 20,
      transA: true,
      broadcastB: true,
      alpha: 0.5,
      view: 11,
      offset: 3,
    });
    await check({ batch: 2, m: 66, n: 9, k: 35, transB: true, view: 5, offset: 7 });
    await check({ batch: 1, m: 7, n: 70, k: 19, transA: true, transB: true, alpha: -2 });
  });

  it("accumulate, bias, biasRows and a residual", async () => {
    await check({ batch: 2, m: 19, n: 67, k: 21, accumulate: true, alpha: 1.5 });
    await check({ batch: 2, m: 19, n: 67, k: 21, bias: true, biasRows: true, residual: true, offset: 1 });
    await check({
      batch: 1,
      m: 5,
      n: 6,
      k: 3,
      accumulate: true,
      bias: true,
      biasRows: true,
      residual: true,
      view: 3,
    });
    // k = 0: only the epilogue
    await check({ batch: 1, m: 3, n: 5, k: 0, bias: true, residual: true });
  });

  it("float16 B widens exactly: every finite half, subnormals and signed zeros, and the infinities", async () => {
    // out[0][j] = 1 * B[0][j]: the widened value itself (NaN bit patterns left out: WGSL assumes no NaNs)
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i).filter(
      (h) => (h & 0x7c00) !== 0x7c00 || (h & 0x3ff) === 0,
    );
    const n = bits.length;
    const want = convertStorage(bits, "float16", "float32") as Float32Array;
    const o = up(new Float32Array(n).fill(7));
    gpu.halfWeights!.gemmHalfB({
      batch: 1,
      m: 1,
      n,
      k: 1,
      a: up(Float32Array.of(1)),
      aOffset: 0,
      aBatchStride: 0,
      aRowStride: 1,
      aColStride: 1,
      b: up(bits, "float16"),
      bOffset: 0,
      bBatchStride: 0,
      bRowStride: n,
      bColStride: 1,
      out: o,
      outOffset: 0,
      alpha: 1,
      accumulate: false,
      bias: null,
      biasRows: null,
      residual: null,
      residualOffset: 0,
    });
    const got = await down(o, n);
    for (let j = 0; j < n; j++) {
      if (got[j] !== want[j]) assert.fail(`half 0x${bits[j]!.toString(16)}: got ${got[j]}, want ${want[j]}`);
    }
  });

  it("float16 B (gemmHalfB)", async () => {
    await check({ batch: 1, m: 17, n: 65, k: 33, transB: true, bias: true, halfB: true });
    await check({
      batch: 2,
      m: 9,
      n: 21,
      k: 70,
      halfB: true,
      view: 3,
      offset: 1,
      residual: true,
      broadcastB: true,
    });
  });
});

describe(`webgpu conv2d (${adapter})`, { skip }, () => {
  const rng = testRng(9);

  type Conv = Omit<Conv2dParams, "outH" | "outW">;
  const full = (c: Conv): Conv2dParams => ({
    ...c,
    outH: Math.floor((c.inH + 2 * c.padH - c.dilationH * (c.kernelH - 1) - 1) / c.strideH) + 1,
    outW: Math.floor((c.inW + 2 * c.padW - c.dilationW * (c.kernelW - 1) - 1) / c.strideW) + 1,
  });
  const conv = (
    batch: number,
    inChannels: number,
    inH: number,
    inW: number,
    outChannels: number,
    k: [number, number],
    stride: [number, number],
    pad: [number, number],
    dil: [number, number],
    groups: number,
  ): Conv2dParams =>
    full({
      batch,
      inChannels,
      inH,
      inW,
      outChannels,
      kernelH: k[0],
      kernelW: k[1],
      strideH: stride[0],
      strideW: stride[1],
      padH: pad[0],
      padW: pad[1],
      dilationH: dil[0],
      dilationW: dil[1],
      groups,
    });

  const CASES: [string, Conv2dParams][] = [
    ["1x1", conv(2, 5, 7, 9, 6, [1, 1], [1, 1], [0, 0], [1, 1], 1)],
    ["3x3 pad 1", conv(2, 4, 9, 11, 8, [3, 3], [1, 1], [1, 1], [1, 1], 1)],
    ["3x3 stride 2", conv(1, 3, 10, 9, 5, [3, 3], [2, 2], [1, 1], [1, 1], 1)],
    ["3x3 dilation 2", conv(1, 3, 11, 10, 4, [3, 3], [1, 1], [2, 2], [2, 2], 1)],
    ["groups 2", conv(2, 6, 7, 7, 4, [3, 3], [1, 1], [1, 1], [1, 1], 2)],
    ["depthwise stride 2", conv(1, 6, 8, 9, 6, [3, 3], [2, 2], [1, 1], [1, 1], 6)],
    ["3x2 kernel, strides 2x1, pad 1x0", conv(2, 3, 9, 8, 5, [3, 2], [2, 1], [1, 0], [1, 1], 1)],
    ["70 channels over several tiles", conv(1, 8, 13, 13, 70, [3, 3], [1, 1], [1, 1], [1, 1], 1)],
  ];

  const sizes = (p: Conv2dParams) => ({
    x: p.batch * p.inChannels * p.inH * p.inW,
    w: p.outChannels * (p.inChannels / p.groups) * p.kernelH * p.kernelW,
    out: p.batch * p.outChannels * p.outH * p.outW,
  });

  it("forward with bias and residual (float32 and float16 weights)", async () => {
    for (const [name, p] of CASES) {
      const s = sizes(p);
      const x = randArray(s.x, rng);
      const w = randArray(s.w, rng);
      const bias = randArray(p.outChannels, rng);
      const residual = randArray(s.out, rng);
      const withBias = name !== "1x1";
      const withResidual = name.startsWith("3x3") || name.startsWith("groups");
      const want = new Float32Array(s.out);
      ref.conv2d(x, w, withBias ? bias : null, want, p, withResidual ? residual : null);
      const out = up(randArray(s.out, rng));
      gpu.conv2d(up(x), up(w), withBias ? up(bias) : null, out, p, withResidual ? up(residual) : null);
      assertClose(await down(out, s.out), want, TOL, `conv2d ${name}`);

      const h = halfOf(w);
      const wantH = new Float32Array(s.out);
      ref.conv2d(x, h.widened, withBias ? bias : null, wantH, p, withResidual ? residual : null);
      const outH = up(new Float32Array(s.out));
      gpu.halfWeights!.conv2dHalfW(
        up(x),
        up(h.bits, "float16"),
        withBias ? up(bias) : null,
        outH,
        p,
        withResidual ? up(residual) : null,
      );
      assertClose(await down(outH, s.out), wantH, TOL, `conv2dHalfW ${name}`);
    }
  });

  it("backward input (the transposed convolution)", async () => {
    for (const [name, p] of CASES) {
      const s = sizes(p);
      const g = randArray(s.out, rng);
      const w = randArray(s.w, rng);
      const want = new Float32Array(s.x);
      ref.conv2dBackwardInput(g, w, want, p);
      const out = up(randArray(s.x, rng));
      gpu.conv2dBackwardInput(up(g), up(w), out, p);
      assertClose(await down(out, s.x), want, TOL, `conv2dBackwardInput ${name}`);
    }
  });

  it("backward weight", async () => {
    for (const [name, p] of CASES) {
      const s = sizes(p);
      const x = randArray(s.x, rng);
      const g = randArray(s.out, rng);
      const want = new Float32Array(s.w);
      ref.conv2dBackwardWeight(x, g, want, p);
      const out = up(randArray(s.w, rng));
      gpu.conv2dBackwardWeight(up(x), up(g), out, p);
      assertClose(await down(out, s.w), want, TOL, `conv2dBackwardWeight ${name}`);
    }
  });

  it("inputs in subviews", async () => {
    const p = CASES[1]![1];
    const s = sizes(p);
    const x = randArray(s.x, rng);
    const w = randArray(s.w, rng);
    const bias = randArray(p.outChannels, rng);
    const want = new Float32Array(s.out);
    ref.conv2d(x, w, bias, want, p);
    const pad = (a: Float32Array, n: number) => {
      const r = randArray(n + a.length, rng);
      r.set(a, n);
      return gpu.memory.subview(up(r), "float32", n, a.length);
    };
    const outFull = up(new Float32Array(s.out + 5));
    const out = gpu.memory.subview(outFull, "float32", 5, s.out);
    gpu.conv2d(pad(x, 3), pad(w, 7), pad(bias, 1), out, p);
    assertClose((await down(outFull, s.out + 5)).subarray(5), want, TOL, "conv2d on subviews");
  });
});
