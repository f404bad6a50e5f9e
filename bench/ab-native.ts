// Two builds of the native addon in one process, alternated call by call on SD 1.5's convolution, linear and GEGLU
// shapes (batch 2): the before/after of a kernel change without the drift between runs that a shared machine adds
// (up to ~15% between processes here). Outputs are compared too (max absolute difference).
//   node --import tsx bench/ab-native.ts OLD.node [NEW.node] [--threads=1] [--kernel=avx2] [--rounds=8]
// NEW defaults to this checkout's build/Release. An older commit's addon, built in a scratch folder:
//   OLD=$(mktemp -d) && git archive REV binding.gyp native scripts/build-native.js | tar -x -C "$OLD"
//   ln -s "$PWD/node_modules" "$OLD/node_modules" && (cd "$OLD" && node scripts/build-native.js --strict)
//   node --import tsx bench/ab-native.ts "$OLD/build/Release/diffuse_native.node"
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import type { NativeAddon } from "../src/backend/native/addon.js";
import { lcgArray } from "./sd15-worker.js";
import { printTable } from "./util.js";

const usage =
  "usage: bench/ab-native.ts OLD.node [NEW.node] [--threads=N] [--kernel=avx512|avx2|portable] [--rounds=N]";
const args = process.argv.slice(2);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const known = ["threads", "kernel", "rounds"];
const unknown = args.find((a) => a.startsWith("--") && !known.some((k) => a.startsWith(`--${k}=`)));
if (unknown) throw new Error(`unknown option ${unknown}; ${usage}`);
const paths = args.filter((a) => !a.startsWith("--"));
if (paths.length < 1 || paths.length > 2) throw new Error(usage);
const require = createRequire(import.meta.url);
const builds = [paths[0]!, paths[1] ?? "build/Release/diffuse_native.node"].map((p) => {
  if (!existsSync(resolve(p)))
    throw new Error(`no native addon at ${p} (the header says how to build an old one)`);
  return require(resolve(p)) as NativeAddon;
});
/** --name=N as an integer >= 1. */
const count = (name: string, fallback: number) => {
  const v = option(name);
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be an integer >= 1, got ${v}`);
  return n;
};
const threads = count("threads", 1);
const rounds = count("rounds", 8);
for (const addon of builds) {
  addon.setNumThreads(threads);
  const kernel = option("kernel");
  if (kernel && !addon.setKernel(kernel)) throw new Error(`this CPU cannot run the ${kernel} kernels`);
}

let seed = 0;
/** n values uniform in [-scale / 2, scale / 2), a new seed each call. */
const random = (n: number, scale = 1) => lcgArray(n, ++seed, -scale / 2, scale / 2);

/** Best time of each build over alternating rounds after a warm-up call each, and the largest difference between
 * their outputs. */
function compare(run: (addon: NativeAddon, out: Float32Array) => void, outLength: number) {
  const outs = builds.map(() => new Float32Array(outLength));
  const best = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
  for (const [i, addon] of builds.entries()) run(addon, outs[i]!); // warm-up: scratch buffers, pages, caches
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 ? [1, 0] : [0, 1]) {
      const t0 = performance.now();
      run(builds[i]!, outs[i]!);
      best[i] = Math.min(best[i]!, performance.now() - t0);
    }
  }
  let diff = 0;
  for (let i = 0; i < outLength; i++) diff = Math.max(diff, Math.abs(outs[0]![i]! - outs[1]![i]!));
  return { best, diff };
}

const rows: (string | number)[][] = [];
const row = (what: string, r: ReturnType<typeof compare>) => {
  process.stderr.write(`ab-native: ${what}: ${(r.best[1]! / r.best[0]!).toFixed(3)}\n`);
  rows.push([
    what,
    r.best[0]!.toFixed(2),
    r.best[1]!.toFixed(2),
    (r.best[1]! / r.best[0]!).toFixed(3),
    r.diff.toExponential(1),
  ]);
};

// conv2d: [in, out, size, kernel]
for (const [c, o, h, k] of [
  [320, 320, 64, 3],
  [640, 640, 32, 3],
  [1280, 1280, 16, 3],
  [1280, 1280, 8, 3],
  [960, 320, 64, 3],
  [1920, 640, 32, 3],
  [2560, 1280, 16, 3],
  [320, 640, 64, 1],
] as const) {
  const x = random(2 * c * h * h),
    w = random(o * c * k * k, 0.05),
    b = random(o);
  const pad = k === 3 ? 1 : 0;
  const p = [2, c, h, h, o, h, h, k, k, 1, 1, pad, pad, 1, 1, 1];
  row(
    `conv2d ${c}->${o} ${k}x${k} ${h}x${h}`,
    compare((a, out) => a.conv2d(x, w, b, out, p, null), 2 * o * h * h),
  );
}
// linear x [m, k] W[n, k]^T + bias
for (const [m, k, n] of [
  [8192, 320, 320],
  [2048, 640, 640],
  [512, 1280, 1280],
  [512, 5120, 1280],
] as const) {
  const x = random(m * k),
    w = random(n * k, 0.05),
    b = random(n);
  row(
    `linear ${m}x${k}->${n}`,
    compare(
      (a, out) => a.gemm(x, 0, 0, k, 1, w, 0, 0, 1, k, out, 0, 1, m, n, k, 1, false, b, null, null, 0),
      m * n,
    ),
  );
}
// linear + GEGLU: rows, in, half
for (const [m, k, half] of [
  [8192, 320, 1280],
  [2048, 640, 2560],
  [512, 1280, 5120],
] as const) {
  const x = random(m * k),
    w = random(2 * half * k, 0.05),
    b = random(2 * half);
  row(
    `linearGeglu ${m}x${k}->${half}`,
    compare((a, out) => a.linearGeglu(x, m, k, w, 0, b, half, out), m * half),
  );
}
console.log(
  `## Two native builds alternated in one process, ${threads} thread(s), best of ${rounds} calls (ms)\n`,
);
printTable(["case", "old", "new", "new / old", "max |diff|"], rows);
