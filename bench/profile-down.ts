// Where the time of SD 1.5's down_blocks.0 goes on the native backend: every backend call is timed (kernel and
// shape), summed over one forward after a warm-up, next to the wall time and the output pool's hits and misses.
//   node --import tsx bench/profile-down.ts [threads]
import "../src/platform-node.js";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Backend } from "../src/backend/index.js";
import { nativeAddon, nativeBackend } from "../src/backend/native/index.js";
import { loadSafetensors, noGrad, setBackend } from "../src/index.js";
import { downBlock } from "./sd15-worker.js";

const dir = join(fileURLToPath(new URL("../../shared/bench/sd15_down_block_0", import.meta.url)));
if (!nativeBackend || !nativeAddon) throw new Error("the native addon is not built: npm run build:native");
const addon = nativeAddon;
addon.setNumThreads(Number(process.argv[2] ?? 2));

/** A key per call: the kernel, and the shape for the ones whose cost depends on it. */
function callKey(name: string, args: unknown[]): string {
  const p = args[0] as Record<string, number>;
  switch (name) {
    case "gemm":
      return `gemm ${p.batch}x${p.m}x${p.n}x${p.k}`;
    case "attention":
      return `attention ${p.batch}x${p.lq}x${p.lk}x${p.d}`;
    case "linearGeglu":
      return `linearGeglu ${p.rows}x${p.inFeatures}->${p.half}`;
    case "conv2d": {
      const c = args[4] as Record<string, number>;
      return `conv2d ${c.inChannels}->${c.outChannels} ${c.kernelH}x${c.kernelW}/${c.strideH} ${c.inH}x${c.inW}`;
    }
    case "unary":
    case "binary":
      return `${name} ${String(args[0])}`;
    default:
      return name;
  }
}

const times = new Map<string, { ms: number; calls: number }>();
const timed: Record<string, unknown> = { ...nativeBackend };
for (const [name, fn] of Object.entries(nativeBackend)) {
  if (typeof fn !== "function") continue;
  timed[name] = (...args: unknown[]) => {
    const t0 = performance.now();
    const r = (fn as (...a: unknown[]) => unknown).apply(nativeBackend, args);
    const key = callKey(name, args);
    const e = times.get(key) ?? { ms: 0, calls: 0 };
    e.ms += performance.now() - t0;
    e.calls++;
    times.set(key, e);
    return r;
  };
}
setBackend(timed as unknown as Backend);

const block = await downBlock(dir);
const io = (await loadSafetensors(join(dir, "io.safetensors"))).tensors;
const forward = () =>
  noGrad(() => block.call(io.get("hidden_states")!, io.get("temb")!, io.get("encoder_hidden_states")!));

forward(); // warm-up: scratch buffers, the pool
let best = Number.POSITIVE_INFINITY;
for (let r = 0; r < 3; r++) {
  times.clear();
  const pool0 = addon.poolStats();
  const t0 = performance.now();
  forward();
  const wall = performance.now() - t0;
  const pool1 = addon.poolStats();
  if (wall >= best) continue;
  best = wall;
  const rows = [...times.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const kernels = rows.reduce((s, [, e]) => s + e.ms, 0);
  console.log(
    `\nforward ${wall.toFixed(0)} ms on ${addon.info().threads} thread(s): kernels ${kernels.toFixed(0)} ms, ` +
      `outside ${(wall - kernels).toFixed(0)} ms; pool ${pool1.hits - pool0.hits} hits, ${pool1.misses - pool0.misses} misses`,
  );
  for (const [key, e] of rows)
    console.log(`${e.ms.toFixed(1).padStart(8)} ms ${String(e.calls).padStart(4)}x  ${key}`);
}
