// GEMM and convolution throughput of the native backend against the reference backend.
// Run: node --import tsx bench/gemm.ts   (DIFFUSE_BENCH_QUICK=1 for a shorter run)
// The reference is timed on a smaller problem of the same shape family and reported as GFLOP/s, which is
// roughly size-independent for its triple loop.
import "../src/platform-node.js";
import type { Conv2dParams, GemmParams } from "../src/backend/index.js";
import { referenceBackend } from "../src/backend/index.js";
import { nativeAddon, nativeBackend, nativeLoadError } from "../src/backend/native/index.js";
import { bestTime, fmt, printTable } from "./util.js";

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

function gemmParams(m: number, n: number, k: number): GemmParams {
  return {
    batch: 1,
    m,
    n,
    k,
    a: rand(m * k, 1),
    aOffset: 0,
    aBatchStride: 0,
    aRowStride: k,
    aColStride: 1,
    b: rand(k * n, 2),
    bOffset: 0,
    bBatchStride: 0,
    bRowStride: n,
    bColStride: 1,
    out: new Float32Array(m * n),
    outOffset: 0,
    alpha: 1,
    accumulate: false,
  };
}

const quick = !!process.env.DIFFUSE_BENCH_QUICK;
const repeats = quick ? 2 : 5;

function gflops(flops: number, seconds: number): string {
  return fmt(flops / seconds / 1e9, 1);
}

/** GFLOP/s of the best run, and CPU time / wall time over all runs (below the thread count = cores were busy). */
function measure(flops: number, fn: () => void, reps = repeats): [string, string] {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const best = bestTime(fn, reps);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  return [gflops(flops, best), fmt((cpu.user + cpu.system) / 1e6 / wall, 2)];
}

function main(): void {
  if (!nativeAddon || !nativeBackend) {
    console.log(`native backend unavailable (${nativeLoadError}); build it with \`npm run build:native\``);
    return;
  }
  const native = nativeBackend;
  const info = nativeAddon.info();
  const maxThreads = info.threads;
  const threadCounts = [...new Set([1, 2, maxThreads])].filter((t) => t <= Math.max(2, maxThreads));
  console.log(`native micro-kernel: ${info.kernel}, pool: ${maxThreads} threads\n`);

  const rows: (string | number)[][] = [];
  const shapes: [string, number, number, number, number][] = [
    // label, m, n, k, reference scale-down factor per dim
    ["1024x1024x1024", 1024, 1024, 1024, 4],
    ["4096x320x2880 (SD conv as GEMM)", 4096, 320, 2880, 8],
  ];
  for (const [label, m, n, k, down] of shapes) {
    const p = gemmParams(m, n, k);
    const flops = 2 * m * n * k;
    for (const t of threadCounts) {
      nativeAddon.setNumThreads(t);
      rows.push([`sgemm ${label}`, `native ${t}T`, ...measure(flops, () => native.gemm(p), repeats)]);
    }
    const pr = gemmParams(Math.ceil(m / down), Math.ceil(n / down), Math.ceil(k / down));
    const rflops = 2 * pr.m * pr.n * pr.k;
    rows.push([
      `sgemm ${label}`,
      `reference (${pr.m}x${pr.n}x${pr.k})`,
      ...measure(rflops, () => referenceBackend.gemm(pr), 1),
    ]);
  }

  // every micro-kernel this CPU can run, single-threaded
  nativeAddon.setNumThreads(1);
  const p1k = gemmParams(1024, 1024, 1024);
  for (const kernel of ["avx512", "avx2", "portable"]) {
    if (!nativeAddon.setKernel(kernel)) continue;
    rows.push([
      `sgemm 1024x1024x1024, ${kernel} kernel`,
      "native 1T",
      ...measure(2 * 1024 ** 3, () => native.gemm(p1k)),
    ]);
  }
  nativeAddon.setKernel("");

  const conv = (size: number): Conv2dParams => ({
    batch: 1,
    inChannels: 320,
    inH: size,
    inW: size,
    outChannels: 320,
    outH: size,
    outW: size,
    kernelH: 3,
    kernelW: 3,
    strideH: 1,
    strideW: 1,
    padH: 1,
    padW: 1,
    dilationH: 1,
    dilationW: 1,
    groups: 1,
  });
  const cp = conv(64);
  const x = rand(320 * 64 * 64, 3);
  const w = rand(320 * 320 * 9, 4);
  const bias = rand(320, 5);
  const out = new Float32Array(320 * 64 * 64);
  const gradIn = new Float32Array(320 * 64 * 64);
  const gradW = new Float32Array(320 * 320 * 9);
  const cflops = 2 * 320 * 320 * 9 * 64 * 64;
  for (const t of threadCounts) {
    nativeAddon.setNumThreads(t);
    const label = "conv2d 320->320 3x3, 1x320x64x64";
    rows.push([label, `native ${t}T`, ...measure(cflops, () => native.conv2d(x, w, bias, out, cp), repeats)]);
    rows.push([
      `${label} backward input`,
      `native ${t}T`,
      ...measure(cflops, () => native.conv2dBackwardInput(out, w, gradIn, cp), repeats),
    ]);
    rows.push([
      `${label} backward weight`,
      `native ${t}T`,
      ...measure(cflops, () => native.conv2dBackwardWeight(x, out, gradW, cp), repeats),
    ]);
  }
  const small = conv(16);
  rows.push([
    "conv2d 320->320 3x3, 1x320x16x16",
    "reference",
    ...measure(2 * 320 * 320 * 9 * 16 * 16, () => referenceBackend.conv2d(x, w, bias, out, small), 1),
  ]);
  nativeAddon.setNumThreads(maxThreads);
  printTable(["kernel", "backend", "GFLOP/s", "cpu/wall"], rows);
}

main();
