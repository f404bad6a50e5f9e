// One measurement of bench/load.ts in its own process, so its peak RSS is its own: reads a job as JSON from argv,
// prints `RESULT {json}`. By hand: node --import tsx bench/load-worker.ts '{"case":"read","path":"x.safetensors"}'
import "../src/platform-node.js";
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import type { Module } from "../src/nn/module.js";
import { loadPipelineComponents } from "../src/pipelines/load.js";

export type LoadJob = { case: "read"; path: string } | { case: "load"; path: string; tokenizer?: string };

export interface LoadResult {
  /** wall time (s) */
  wall: number;
  /** after a load: time (s) to read one byte of every 4 KB page of the weights (a mapped file's pages come in) */
  touch: number;
  /** resident set size after the job (bytes) */
  rssAfter: number;
  /** peak resident set size of the process (bytes) */
  peakRss: number;
  /** resident set size before the job (bytes): the runtime's own */
  rssBefore: number;
}

/** Reads the whole file in 64 MiB chunks into one reused buffer: the cost of reading it, without page faults. */
function readFile(path: string): void {
  const size = statSync(path).size;
  const chunk = new Uint8Array(64 * 2 ** 20);
  const fd = openSync(path, "r");
  try {
    for (let offset = 0; offset < size; ) {
      const got = readSync(fd, chunk, 0, Math.min(chunk.length, size - offset), offset);
      if (got === 0) throw new Error(`${path}: short read at ${offset}`);
      offset += got;
    }
  } finally {
    closeSync(fd);
  }
}

async function run(job: LoadJob): Promise<LoadResult> {
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  let touch = 0;
  let rssAfter = 0;
  let wall = 0;
  if (job.case === "read") {
    readFile(job.path);
    wall = (performance.now() - t0) / 1000;
    rssAfter = process.memoryUsage().rss;
  } else {
    const c = await loadPipelineComponents(job.path, job.tokenizer ? { tokenizer: job.tokenizer } : {});
    wall = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    touchWeights([c.unet, c.vae, c.textEncoder]);
    touch = (performance.now() - t1) / 1000;
    rssAfter = process.memoryUsage().rss;
  }
  return { wall, touch, rssAfter, rssBefore, peakRss: peakRss() };
}

/**
 * The process's peak resident set size: VmHWM on Linux (ru_maxrss is kept across exec, so a child would report
 * its parent's peak), else ru_maxrss.
 */
function peakRss(): number {
  try {
    const m = /VmHWM:\s*(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Reads one byte per 4 KB page of every weight: what the first denoising step pays for a lazily mapped file. */
function touchWeights(models: readonly (Module | null)[]): number {
  let sum = 0;
  for (const m of models) {
    for (const p of m?.parameters() ?? []) {
      const data = p.storage.buffer as unknown as Uint8Array;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < bytes.length; i += 4096) sum += bytes[i]!;
    }
  }
  return sum;
}

const job = JSON.parse(process.argv[2] ?? "{}") as LoadJob;
console.log(`RESULT ${JSON.stringify(await run(job))}`);
