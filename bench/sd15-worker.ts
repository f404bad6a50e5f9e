// One measurement of bench/sd15.ts in its own process (so peak RSS is the case's own): reads a job as JSON from
// argv, prints `RESULT {json}`. Run by sd15.ts; by hand: node --import tsx bench/sd15-worker.ts '{"case":...}'
import "../src/platform-node.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Backend, Conv2dParams, GemmParams } from "../src/backend/index.js";
import { nativeAddon, nativeBackend } from "../src/backend/native/index.js";
import { F, Generator, loadSafetensors, noGrad, randn, setBackend, Tensor } from "../src/index.js";
import {
  AutoencoderKL,
  AutoencoderKLConfig,
  buildDownBlock,
  CLIPTextModel,
  type CrossAttnDownBlock2D,
  loadWeights,
  planUNet,
  SD1_TEXT_ENCODER,
  UNet2DConditionConfig,
  UNet2DConditionModel,
} from "../src/models/index.js";
import type { Module } from "../src/nn/index.js";
import { floatToHalf } from "../src/tensor/dtype.js";

export type Job =
  | { case: "gemm"; m: number; n: number; k: number; transB: boolean }
  | { case: "conv"; impl: "ours" | "ort"; onnx?: string }
  | { case: "down"; impl: "ours" | "ort"; dir: string }
  | { case: "attention"; impl: "ours" | "gemm2" }
  | { case: "overhead"; impl: "native" | "reference" }
  | { case: "unet"; dtype: "float32" | "float16"; impl?: "ours" | "ort"; onnx?: string }
  | { case: "vae"; size: number; tileSize?: number; impl?: "ours" | "ort"; onnx?: string }
  | { case: "clip" };

export type JobSpec = Job & { threads: number; repeats: number };

export interface WorkerResult {
  /** best wall time (s) */
  wall: number;
  /** process CPU time (s) of the best-wall run and the least over all runs */
  cpu: number;
  cpuMin: number;
  /** peak resident set of the worker process (bytes) */
  rss: number;
  /** FLOPs of one run (counted from the kernel calls, or the case's formula) */
  flops?: number;
  /** max-normalised error against the reference outputs, where the case has them */
  err?: number;
  /** attention: memory the kernel adds beyond its inputs and output (bytes) */
  extra?: number;
  /** per-call overhead (s) */
  perCall?: number;
}

/** A backend that forwards to `inner` and counts the FLOPs of GEMMs, convolutions and attention. */
function countingBackend(inner: Backend): { backend: Backend; flops: () => number; reset: () => void } {
  let flops = 0;
  const conv = (p: Conv2dParams) =>
    2 * p.batch * p.outChannels * (p.inChannels / p.groups) * p.kernelH * p.kernelW * p.outH * p.outW;
  const gemm = (p: Pick<GemmParams, "batch" | "m" | "n" | "k">) => 2 * p.batch * p.m * p.n * p.k;
  const backend: Backend = {
    ...inner,
    gemm(p) {
      flops += gemm(p);
      inner.gemm(p);
    },
    conv2d(x, w, b, out, p) {
      flops += conv(p);
      inner.conv2d(x, w, b, out, p);
    },
    attention(p) {
      flops += 2 * p.batch * p.lq * p.lk * (p.d + p.dv);
      inner.attention(p);
    },
  };
  if (inner.halfWeights) {
    const h = inner.halfWeights;
    (backend as { halfWeights: Backend["halfWeights"] }).halfWeights = {
      gemmHalfB(p) {
        flops += gemm(p);
        h.gemmHalfB(p);
      },
      conv2dHalfW(x, w, b, out, p) {
        flops += conv(p);
        h.conv2dHalfW(x, w, b, out, p);
      },
    };
  }
  return { backend, flops: () => flops, reset: () => void (flops = 0) };
}

/** Best wall time of `repeats` runs after `warmup` runs, with the CPU time of that run. */
async function time(
  fn: () => unknown,
  repeats: number,
  warmup = 1,
): Promise<Pick<WorkerResult, "wall" | "cpu" | "cpuMin">> {
  for (let i = 0; i < warmup; i++) await fn();
  let wall = Number.POSITIVE_INFINITY;
  let cpu = 0;
  let cpuMin = Number.POSITIVE_INFINITY;
  for (let i = 0; i < repeats; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    const w = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    const ct = (c.user + c.system) / 1e6;
    cpuMin = Math.min(cpuMin, ct);
    if (w < wall) {
      wall = w;
      cpu = ct;
    }
  }
  return { wall, cpu, cpuMin };
}

/** n values uniform in [lo, hi) from a linear congruential generator seeded with `seed` (deterministic inputs). */
export function lcgArray(n: number, seed: number, lo = -0.5, hi = 0.5): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = lo + ((hi - lo) * s) / 4294967296;
  }
  return a;
}

/**
 * Random weights of the real shapes: matrices and kernels uniform in +-1/sqrt(fan_in) (PyTorch's default
 * bound), norm scales 1 +- 0.1, biases +-0.1. Fills float32 or float16 parameters in place.
 */
export function randomizeWeights(m: Module, seed: number): void {
  let s = seed >>> 0;
  for (const [name, t] of m.stateDict()) {
    const data = t.storage.buffer as unknown as Float32Array | Uint16Array; // CPU tensors: typed arrays
    const fanIn = t.ndim >= 2 ? t.size / t.shape[0]! : 0;
    const [lo, hi] =
      t.ndim >= 2
        ? [-1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn)]
        : /norm.*weight$|\.weight$/.test(name)
          ? [0.9, 1.1]
          : [-0.1, 0.1];
    // bounds hoisted and one loop per element type: the loop runs ~860 M times for the UNet
    const begin = t.offset;
    const end = begin + t.size;
    const scale = (hi - lo) / 4294967296;
    if (t.dtype === "float16") {
      const h = data as Uint16Array;
      for (let i = begin; i < end; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        h[i] = floatToHalf(lo + scale * s);
      }
    } else {
      const f = data as Float32Array;
      for (let i = begin; i < end; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        f[i] = lo + scale * s;
      }
    }
  }
}

/**
 * This process's peak resident set: VmHWM of /proc/self/status (the high-water mark of this address space).
 * getrusage's maxrss is not used: after fork + exec it starts at the parent's RSS, so every worker spawned by a
 * large parent (npm run bench after its training part) would report at least the parent's size.
 */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

function setThreads(n: number): void {
  if (!nativeAddon) throw new Error("native backend not built");
  nativeAddon.setNumThreads(n);
}

function maxNormErr(got: Float32Array, want: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i]! - want[i]!));
    m = Math.max(m, Math.abs(want[i]!));
  }
  return d / Math.max(1, m);
}

async function ortSession(path: string, threads: number) {
  const ort = await import("onnxruntime-node");
  const session = await ort.InferenceSession.create(path, {
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  });
  const feed = (t: Tensor) => new ort.Tensor("float32", t.toFloat32Array(), t.shape as number[]);
  return { session, feed };
}

/** An ORT session of the graph at `path` with its feeds built from `inputs`. */
async function ortFeeds(path: string, threads: number, inputs: Record<string, Tensor>) {
  const { session, feed } = await ortSession(path, threads);
  return { session, feeds: Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, feed(t)])) };
}

/**
 * A whole-model ORT run's steady time: two warm-up runs (the first timed run after one warm-up is still up to twice
 * as slow, see ../shared/bench/sd15_unet/README.md), then the best of `reps`; the outputs must be finite.
 */
async function timeOrt(
  { session, feeds }: Awaited<ReturnType<typeof ortFeeds>>,
  reps: number,
): Promise<Pick<WorkerResult, "wall" | "cpu" | "cpuMin">> {
  let out: Record<string, { data: unknown }> = {};
  const t = await time(async () => (out = await session.run(feeds)), reps, 2);
  for (const [name, v] of Object.entries(out)) {
    if (!(v.data as Float32Array).every(Number.isFinite)) throw new Error(`ORT output ${name} is not finite`);
  }
  return t;
}

/** SD 1.5's down_blocks.0 with the bench case's weights (as test/models/unet/sd15-down-block.test.ts builds it). */
export async function downBlock(dir: string): Promise<CrossAttnDownBlock2D> {
  const cfg = UNet2DConditionConfig.sd15();
  const block = buildDownBlock(cfg, planUNet(cfg), 0, { skipInit: true }) as CrossAttnDownBlock2D;
  block.eval();
  await loadWeights(block, [join(dir, "weights.safetensors")], {
    label: "down_blocks.0",
    renameKey: (k) => k.replace(/^down_blocks\.0\./, ""),
  });
  return block;
}

async function run(job: JobSpec): Promise<Partial<WorkerResult>> {
  const reps = job.repeats;
  switch (job.case) {
    case "gemm": {
      setThreads(job.threads);
      const { m, n, k, transB } = job;
      const a = lcgArray(m * k, 1);
      const b = lcgArray(k * n, 2);
      const out = new Float32Array(m * n);
      const p: GemmParams = {
        batch: 1,
        m,
        n,
        k,
        a,
        aOffset: 0,
        aBatchStride: 0,
        aRowStride: k,
        aColStride: 1,
        b,
        bOffset: 0,
        bBatchStride: 0,
        bRowStride: transB ? 1 : n,
        bColStride: transB ? k : 1,
        out,
        outOffset: 0,
        alpha: 1,
        accumulate: false,
      };
      return { ...(await time(() => nativeBackend!.gemm(p), reps)), flops: 2 * m * n * k };
    }
    case "conv": {
      const x = Tensor.fromStorage(lcgArray(320 * 64 * 64, 3), [1, 320, 64, 64], "float32");
      const w = Tensor.fromStorage(lcgArray(320 * 320 * 9, 4, -0.02, 0.02), [320, 320, 3, 3], "float32");
      const b = Tensor.fromStorage(lcgArray(320, 5), [320], "float32");
      const flops = 2 * 320 * 320 * 9 * 64 * 64;
      if (job.impl === "ours") {
        setThreads(job.threads);
        const t = await time(() => noGrad(() => F.conv2d(x, w, b, { padding: 1 })), reps);
        return { ...t, flops };
      }
      const { session, feed } = await ortSession(job.onnx!, job.threads);
      const feeds = { x: feed(x) };
      const t = await time(() => session.run(feeds), reps);
      // parity of the peer with ours (same weights)
      const want = noGrad(() => F.conv2d(x, w, b, { padding: 1 })).toFloat32Array();
      const got = (await session.run(feeds)).y!.data as Float32Array;
      return { ...t, flops, err: maxNormErr(got, want) };
    }
    case "down": {
      const io = (await loadSafetensors(join(job.dir, "io.safetensors"))).tensors;
      const get = (k: string) => io.get(k)!;
      const inputs = ["hidden_states", "temb", "encoder_hidden_states"] as const;
      const flops = 219e9;
      if (job.impl === "ours") {
        setThreads(job.threads);
        const block = await downBlock(job.dir);
        let out: ReturnType<CrossAttnDownBlock2D["call"]> | null = null;
        const t = await time(
          () => (out = noGrad(() => block.call(get(inputs[0]), get(inputs[1]), get(inputs[2])))),
          reps,
        );
        const o = out!;
        const err = Math.max(
          maxNormErr(o.hidden.toFloat32Array(), get("h").toFloat32Array()),
          ...o.skips.map((s, i) => maxNormErr(s.toFloat32Array(), get(`res${i}`).toFloat32Array())),
        );
        return { ...t, flops, err };
      }
      const { session, feed } = await ortSession(join(job.dir, "model.onnx"), job.threads);
      const feeds = Object.fromEntries(inputs.map((k) => [k, feed(get(k))]));
      let res: Record<string, { data: unknown }> = {};
      const t = await time(async () => (res = await session.run(feeds)), reps);
      const err = Math.max(
        ...["h", "res0", "res1", "res2"].map((k) =>
          maxNormErr(res[k]!.data as Float32Array, get(k).toFloat32Array()),
        ),
      );
      return { ...t, flops, err };
    }
    case "attention": {
      setThreads(job.threads);
      const [B, L, D] = [16, 4096, 40];
      const q = lcgArray(B * L * D, 6, -1, 1);
      const k = lcgArray(B * L * D, 7, -1, 1);
      const v = lcgArray(B * L * D, 8, -1, 1);
      const out = new Float32Array(B * L * D);
      const flops = 4 * B * L * L * D;
      if (job.impl === "ours") {
        const params = { batch: B, lq: L, lk: L, d: D, dv: D, scale: 1 / Math.sqrt(D), q, k, v, out };
        const before = process.memoryUsage().rss;
        nativeBackend!.attention(params);
        const extra = peakRss() - before;
        const t = await time(() => nativeBackend!.attention(params), reps, 0);
        return { ...t, flops, extra };
      }
      // the same FLOPs as two GEMMs per head: S = Q K^T (materialised, 64 MB), then S V
      const s = new Float32Array(L * L);
      const o = new Float32Array(L * D);
      const gemm = (
        p: Omit<GemmParams, "batch" | "aBatchStride" | "bBatchStride" | "alpha" | "accumulate">,
      ) =>
        nativeBackend!.gemm({
          ...p,
          batch: 1,
          aBatchStride: 0,
          bBatchStride: 0,
          alpha: 1,
          accumulate: false,
        });
      const t = await time(() => {
        for (let h = 0; h < B; h++) {
          const base = { m: L, aColStride: 1, outOffset: 0 };
          gemm({
            ...base,
            n: L,
            k: D,
            a: q,
            aOffset: h * L * D,
            aRowStride: D,
            b: k,
            bOffset: h * L * D,
            bRowStride: 1,
            bColStride: D,
            out: s,
          });
          gemm({
            ...base,
            n: D,
            k: L,
            a: s,
            aOffset: 0,
            aRowStride: L,
            b: v,
            bOffset: h * L * D,
            bRowStride: D,
            bColStride: 1,
            out: o,
          });
        }
      }, reps);
      return { ...t, flops };
    }
    case "overhead": {
      // a 16-element add through the backend: what every kernel call pays before any work
      const be =
        job.impl === "native" ? nativeBackend! : (await import("../src/backend/index.js")).referenceBackend;
      const a = { data: lcgArray(16, 1), offset: 0, strides: [1] };
      const b = { data: lcgArray(16, 2), offset: 0, strides: [1] };
      const out = new Float32Array(16);
      const calls = 200_000;
      const t = await time(() => {
        for (let i = 0; i < calls; i++) be.binary("add", a, b, out, [16]);
      }, reps);
      const x = Tensor.fromStorage(lcgArray(16, 3), [16], "float32");
      setBackend(be);
      const opCalls = 50_000;
      const tOp = await time(() => {
        for (let i = 0; i < opCalls; i++) F.add(x, x);
      }, reps);
      return { ...t, perCall: t.wall / calls, extra: tOp.wall / opCalls };
    }
    case "unet": {
      if (job.impl === "ort") {
        // the exported whole UNet (../shared/bench/sd15_unet): sample [2,4,64,64], timestep [2], text [2,77,768]
        const g = new Generator().manualSeed(0);
        const feeds = await ortFeeds(job.onnx!, job.threads, {
          sample: randn([2, 4, 64, 64], { generator: g }),
          timestep: Tensor.fromStorage(Float32Array.of(999, 999), [2], "float32"),
          encoder_hidden_states: randn([2, 77, 768], { generator: g }),
        });
        return { ...(await timeOrt(feeds, reps)), flops: 1.61e12 };
      }
      setThreads(job.threads);
      const model = new UNet2DConditionModel(UNet2DConditionConfig.sd15(), {
        skipInit: true,
        dtype: job.dtype,
      }).eval();
      randomizeWeights(model, 11);
      const g = new Generator().manualSeed(0);
      const sample = randn([2, 4, 64, 64], { generator: g });
      const text = randn([2, 77, 768], { generator: g });
      const counter = countingBackend(nativeBackend!);
      setBackend(counter.backend);
      // one warm-up step first: a sampling loop runs 20-50 of them, and from the second on the output pool and
      // the kernels' scratch buffers are warm (the FLOP count covers warm-up and measured runs)
      let out: Tensor | null = null;
      const t = await time(() => (out = noGrad(() => model.call(sample, 999, text))), reps, 1);
      if (!out!.toFloat32Array().every(Number.isFinite)) throw new Error("the UNet's output is not finite");
      return { ...t, flops: counter.flops() / (reps + 1) };
    }
    case "vae": {
      if (job.impl === "ort") {
        // the exported decoder (../shared/bench/sd15_vae_decoder): z [1,4,64,64] -> image [1,3,512,512]
        if (job.size !== 512 || job.tileSize)
          throw new Error("the ONNX VAE decoder peer is 512x512, untiled");
        const z = randn([1, 4, 64, 64], { generator: new Generator().manualSeed(0) });
        const feeds = await ortFeeds(job.onnx!, job.threads, { z });
        return { ...(await timeOrt(feeds, reps)), flops: 2.51e12 };
      }
      setThreads(job.threads);
      const vae = new AutoencoderKL(AutoencoderKLConfig.sd(), { skipInit: true }).eval();
      randomizeWeights(vae, 12);
      const z = randn([1, 4, job.size / 8, job.size / 8], { generator: new Generator().manualSeed(0) });
      const counter = countingBackend(nativeBackend!);
      setBackend(counter.backend);
      const opts = job.tileSize ? { tiled: true, tileSize: job.tileSize } : {};
      const t = await time(() => noGrad(() => vae.decode(z, opts)), reps, 0);
      return { ...t, flops: counter.flops() / reps };
    }
    case "clip": {
      setThreads(job.threads);
      const te = new CLIPTextModel(SD1_TEXT_ENCODER, { skipInit: true }).eval();
      randomizeWeights(te, 13);
      const ids = Tensor.fromStorage(
        BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i === 0 ? 49406 : i < 10 ? 320 + i : 49407)),
        [1, 77],
        "int64",
      );
      const counter = countingBackend(nativeBackend!);
      setBackend(counter.backend);
      const t = await time(() => noGrad(() => te.call(ids)), reps);
      return { ...t, flops: counter.flops() / (reps + 1) };
    }
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as JobSpec;
  const r = await run(job);
  const result: WorkerResult = {
    wall: r.wall!,
    cpu: r.cpu!,
    cpuMin: r.cpuMin!,
    rss: peakRss(),
    ...r,
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

if (process.argv[1]?.endsWith("sd15-worker.ts")) await main();
