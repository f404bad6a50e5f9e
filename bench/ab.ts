// Same-run A/B of this tree against another checkout (e.g. the previous commit) on the sd15 worker's cases: the two
// trees' workers alternate, one process per measurement, over rounds; each side keeps its best wall time.
//   node --import tsx bench/ab.ts --base=<dir of the other checkout> [--rounds=N] [--threads=1,2] [case ...]
// cases: down (SD 1.5 down_blocks.0), unet (the whole SD 1.5 UNet, fp32 weights), vae (512x512 decode), overhead
// (one 16-element F.add through the ops layer); default down unet. The other checkout needs its node_modules and native build (symlinks to this tree's will do).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { roundsArg } from "./sd15.js";
import type { JobSpec, WorkerResult } from "./sd15-worker.js";
import { fmt, printTable } from "./util.js";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const baseArg = args.find((a) => a.startsWith("--base="));
if (!baseArg) {
  console.error("bench/ab: --base=<dir of the other checkout> is required");
  process.exit(2);
}
const base = resolve(baseArg.slice("--base=".length));
if (!existsSync(join(base, "bench", "sd15-worker.ts"))) {
  console.error(`bench/ab: ${base} has no bench/sd15-worker.ts`);
  process.exit(2);
}
const rounds = roundsArg(args) ?? 3;
const threadsArg = args.find((a) => a.startsWith("--threads="));
const threads = threadsArg ? threadsArg.slice("--threads=".length).split(",").map(Number) : [2];
const cases = args.filter((a) => !a.startsWith("--"));
const chosen = cases.length > 0 ? cases : ["down", "unet"];
const downDir = join(here, "..", "..", "shared", "bench", "sd15_down_block_0");

function job(name: string, t: number): JobSpec {
  switch (name) {
    case "down":
      return { case: "down", impl: "ours", dir: downDir, threads: t, repeats: 3 };
    case "unet":
      return { case: "unet", dtype: "float32", threads: t, repeats: 1 };
    case "vae":
      return { case: "vae", size: 512, threads: t, repeats: 1 };
    case "overhead":
      return { case: "overhead", impl: "native", threads: t, repeats: 3 };
    default:
      console.error(`bench/ab: unknown case "${name}" (down, unet, vae, overhead)`);
      process.exit(2);
  }
}

/** One measurement in a fresh process of the tree at `root`. */
function measure(root: string, spec: JobSpec): WorkerResult {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", join(root, "bench", "sd15-worker.ts"), JSON.stringify(spec)],
    {
      cwd: root,
      encoding: "utf8",
      maxBuffer: 1 << 26,
    },
  );
  const line = r.stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (r.status !== 0 || !line) throw new Error(`worker in ${root} failed:\n${r.stderr}`);
  return JSON.parse(line.slice("RESULT ".length)) as WorkerResult;
}

const rows: (string | number)[][] = [];
for (const name of chosen) {
  for (const t of threads) {
    const spec = job(name, t);
    let a = Number.POSITIVE_INFINITY;
    let b = Number.POSITIVE_INFINITY;
    for (let round = 0; round < rounds; round++) {
      // alternate which side goes first, so neither always gets the quieter half of a round
      const order = round % 2 === 0 ? [base, resolve(here, "..")] : [resolve(here, ".."), base];
      for (const root of order) {
        // overhead: the time of one small F.add through the whole ops layer (tensor, storage, dispatch)
        const r = measure(root, spec);
        const wall = name === "overhead" ? r.extra! : r.wall;
        if (root === base) a = Math.min(a, wall);
        else b = Math.min(b, wall);
      }
    }
    const show = (v: number) => (name === "overhead" ? `${fmt(v * 1e6, 2)} µs` : `${fmt(v, 3)} s`);
    rows.push([name, t, show(a), show(b), fmt(b / a, 3)]);
  }
}
console.log(
  `\n## A/B: this tree against ${base} (${cpus()[0]?.model ?? "CPU"}, best of ${rounds} alternating rounds)\n`,
);
printTable(["case", "threads", "base", "this tree", "ratio"], rows);
