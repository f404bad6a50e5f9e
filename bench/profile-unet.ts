// Where one SD 1.5 UNet step (batch 2, 64x64 latent, random weights) spends its time on the native backend: wall time
// per block (each resolution level's resnets, attentions and samplers), per kernel kind, and the slowest kernel
// shapes, for the fastest of three steps after a warm-up step (bench/profile-ort.ts gives onnxruntime's side).
//   node --import tsx bench/profile-unet.ts [threads] [--kernel=avx2|avx512|portable] [--fp16]
import "../src/platform-node.js";
import { nativeAddon, nativeBackend } from "../src/backend/native/index.js";
import { Generator, noGrad, randn, setBackend } from "../src/index.js";
import { UNet2DConditionConfig, UNet2DConditionModel } from "../src/models/index.js";
import { type CallTime, callRows, timedBackend } from "./profile-calls.js";
import { randomizeWeights } from "./sd15-worker.js";

if (!nativeBackend || !nativeAddon) throw new Error("the native addon is not built: npm run build:native");
const addon = nativeAddon;
const args = process.argv.slice(2);
addon.setNumThreads(Number(args.find((a) => /^\d+$/.test(a)) ?? 2));
const kernel = args.find((a) => a.startsWith("--kernel="))?.slice("--kernel=".length);
if (kernel !== undefined && !addon.setKernel(kernel))
  throw new Error(`this CPU cannot run the ${kernel} kernels`);

const model = new UNet2DConditionModel(UNet2DConditionConfig.sd15(), {
  skipInit: true,
  dtype: args.includes("--fp16") ? "float16" : "float32",
}).eval();
randomizeWeights(model, 11);
const g = new Generator().manualSeed(0);
const sample = randn([2, 4, 64, 64], { generator: g });
const text = randn([2, 77, 768], { generator: g });

// blocks: the top-level children and, inside the down / mid / up blocks, their resnets, attentions and samplers
const blockTimes = new Map<string, CallTime>();
const timedBlock =
  /^(down_blocks\.\d+|up_blocks\.\d+|mid_block)(\.(resnets|attentions|downsamplers|upsamplers)\.\d+)?$|^[a-z_]+$/;
for (const [name, m] of model.namedModules()) {
  if (!name || name.endsWith("_blocks") || !timedBlock.test(name)) continue;
  const forward = m.forward.bind(m);
  m.forward = (...a: unknown[]) => {
    const t0 = performance.now();
    const r = (forward as (...x: unknown[]) => unknown)(...a);
    const e = blockTimes.get(name) ?? { ms: 0, calls: 0 };
    e.ms += performance.now() - t0;
    e.calls++;
    blockTimes.set(name, e);
    return r;
  };
}

// pooled output sizes (what the pool recycles between ops), counted over all steps
const sizes = new Map<number, number>();
const native = nativeBackend;
const counted = {
  ...native,
  allocate: (size: number) => {
    if (size >= 65536) sizes.set(size, (sizes.get(size) ?? 0) + 1);
    return native.allocate!(size);
  },
};
const { backend: timed, times, clear } = timedBackend(counted);
setBackend(timed);
const step = () => noGrad(() => model.call(sample, 999, text));

step(); // warm-up: scratch buffers, the pool
let best: { wall: number; blocks: Map<string, CallTime>; calls: Map<string, CallTime> } | null = null;
for (let r = 0; r < 3; r++) {
  clear();
  blockTimes.clear();
  const pool0 = addon.poolStats();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  step();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const pool1 = addon.poolStats();
  process.stderr.write(
    `step ${r + 1}: ${(wall / 1000).toFixed(2)} s (user ${(cpu.user / 1e6).toFixed(2)} s, system ` +
      `${(cpu.system / 1e6).toFixed(2)} s; pool ${pool1.hits - pool0.hits} hits, ${pool1.misses - pool0.misses} misses)\n`,
  );
  if (!best || wall < best.wall) best = { wall, blocks: new Map(blockTimes), calls: new Map(times) };
}
const { wall, blocks, calls } = best!;
const kernels = [...calls.values()].reduce((s, e) => s + e.ms, 0);
const info = addon.info();
console.log(
  `UNet step ${(wall / 1000).toFixed(2)} s on ${info.threads} thread(s), ${info.kernel} kernels: in kernels ` +
    `${(kernels / 1000).toFixed(2)} s, outside ${((wall - kernels) / 1000).toFixed(2)} s`,
);

console.log("\nper block (inclusive):");
for (const [name, e] of blocks)
  console.log(`${e.ms.toFixed(0).padStart(8)} ms ${((100 * e.ms) / wall).toFixed(1).padStart(5)}%  ${name}`);

// kernel kinds: conv2d by kernel size, everything else by its name
const kinds = new Map<string, CallTime>();
for (const [key, e] of calls) {
  const kind = key.startsWith("conv2d")
    ? `${key.split(" ")[0]} ${key.split(" ")[2]}`
    : key
        .split(" ")
        .slice(0, key.startsWith("unary") || key.startsWith("binary") ? 2 : 1)
        .join(" ");
  const k = kinds.get(kind) ?? { ms: 0, calls: 0 };
  k.ms += e.ms;
  k.calls += e.calls;
  kinds.set(kind, k);
}
console.log("\nper kernel kind:");
for (const row of callRows(kinds)) console.log(row);
console.log("\nslowest 30 kernel shapes:");
for (const row of callRows(calls, 30)) console.log(row);
const pooled = [...sizes].reduce((a, [size, n]) => a + size * 4 * n, 0);
console.log(
  `\nlarge outputs: ${[...sizes.values()].reduce((a, b) => a + b, 0)} of ${sizes.size} sizes, ` +
    `${(pooled / 2 ** 30).toFixed(2)} GiB over the warm-up and the three timed steps`,
);
