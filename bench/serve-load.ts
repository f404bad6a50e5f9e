// Load test of `diffuse serve`: concurrent clients submit small MNIST jobs through our API and follow each to its end
// (Server-Sent Events), against (a) the in-process queue, (b) Redis with 1 `diffuse worker`, (c) Redis with 2.
// Prints throughput and latency (submit to done: p50 / p95) per setup, and checks that no job was lost (each ends
// "done" with its own seed) or duplicated (one "done" per job in the server's and the workers' logs). Not part of
// the test suite; the Redis setups need redis-server on PATH (started here on a free port, in memory only).
//   npm run bench:serve -- [--jobs=100] [--clients=8] [--steps=4] [--setups=memory,redis1,redis2]
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { fmt, printTable } from "./util.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const intArg = (name: string, fallback: number) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  const n = a ? Number(a.slice(name.length + 3)) : fallback;
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench/serve-load: --${name} must be a positive integer`);
    process.exit(2);
  }
  return n;
};
const jobs = intArg("jobs", 100);
const clients = intArg("clients", 8);
const steps = intArg("steps", 4);
const SETUPS = { memory: 0, redis1: 1, redis2: 2 } as const;
type Setup = keyof typeof SETUPS;
const setupsArg = args.find((a) => a.startsWith("--setups="))?.slice("--setups=".length);
const setups = (setupsArg ? setupsArg.split(",") : Object.keys(SETUPS)) as Setup[];
for (const s of setups) {
  if (!(s in SETUPS)) {
    console.error(`bench/serve-load: unknown setup ${s}; expected ${Object.keys(SETUPS).join(", ")}`);
    process.exit(2);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: JSON lines of the CLI's --json output
type Json = any;

/** The child processes, stopped should this script be interrupted. */
const children = new Set<{ kill: (signal: NodeJS.Signals) => unknown }>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    for (const child of children) child.kill("SIGKILL");
    process.exit(130);
  });
}

/** A `diffuse` child process with its JSON lines. */
interface Child {
  process: ChildProcessByStdio<null, Readable, Readable>;
  lines: Json[];
  stderr: () => string;
  first: Promise<Json>;
  stop: () => Promise<number | null>;
}

function diffuse(...cliArgs: string[]): Child {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...cliArgs, "--json"], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const lines: Json[] = [];
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const first = new Promise<Json>((ok, fail) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      lines.push(JSON.parse(line));
      if (lines.length === 1) ok(lines[0]);
    });
    void exited.then((code) => fail(new Error(`diffuse ${cliArgs[0]} exited with ${code}: ${stderr}`)));
  });
  return {
    process: child,
    lines,
    stderr: () => stderr,
    first,
    stop: () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.on("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => ok(port));
    });
  });
}

async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "diffuse-bench-redis-"));
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  children.add(child);
  child.on("exit", () => children.delete(child));
  await new Promise<void>((ok, fail) => {
    let log = "";
    child.on("error", (e) => fail(new Error(`cannot start redis-server (is it installed?): ${e.message}`)));
    child.stdout.on("data", (d) => {
      log += d;
      if (log.includes("Ready to accept connections")) ok();
    });
  });
  const exited = new Promise((r) => child.on("exit", r));
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Submits one job and follows its events to the end; resolves to its id, last event and the seed of its image. */
async function runJob(
  url: string,
  seed: number,
): Promise<{ id: string; end: string; seed: number; got: number }> {
  const res = await fetch(`${url}/api/v1/generate`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: String(seed % 10), steps, seed }),
  });
  const job = (await res.json()) as Json;
  if (res.status !== 202) throw new Error(`job refused (${res.status}): ${job.message}`);
  const events = await fetch(`${url}/api/v1/jobs/${job.id}/events`);
  const decoder = new TextDecoder();
  let text = "";
  let end = "";
  for await (const chunk of events.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    end = /event: (done|error|cancelled)\n/.exec(text)?.[1] ?? "";
    if (end) break;
  }
  const info = (await (await fetch(`${url}/api/v1/jobs/${job.id}`)).json()) as Json;
  return { id: job.id, end: end || "stream closed", seed, got: info.result?.images?.[0]?.seed ?? -1 };
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

/** One setup: the server (and workers), warm-up, then `jobs` jobs from `clients` loops. */
async function measure(setup: Setup, redisUrl: string | undefined): Promise<(string | number)[]> {
  const queue = `bench-${setup}-${process.pid}`;
  const redisArgs = SETUPS[setup] > 0 && redisUrl ? ["--redis", redisUrl, "--queue", queue] : [];
  const server = diffuse(
    "serve",
    "--port",
    "0",
    "--model",
    "models/mnist",
    "--max-queue",
    "64",
    ...redisArgs,
  );
  const workers = Array.from({ length: SETUPS[setup] }, () =>
    diffuse("worker", ...redisArgs, "--model", "models/mnist"),
  );
  try {
    const { url } = await server.first;
    await Promise.all(workers.map((w) => w.first));
    // warm-up: each worker (or the server) loads the model once, outside the timing
    await Promise.all(Array.from({ length: Math.max(1, workers.length) }, (_, i) => runJob(url, 1000 + i)));
    const warmIds = new Set(server.lines.filter((l) => l.type === "job").map((l) => l.id));
    const latencies: number[] = [];
    const results: Awaited<ReturnType<typeof runJob>>[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (let seed = next++; seed < jobs; seed = next++) {
          const start = performance.now();
          results.push(await runJob(url, seed));
          latencies.push((performance.now() - start) / 1000);
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 200)); // the last log lines
    const ids = new Set(results.map((r) => r.id));
    // lost: not done, or done with another job's image
    const lost = results.filter((r) => r.end !== "done" || r.got !== r.seed).length + (jobs - results.length);
    const doneCount = (lines: Json[]) => {
      const counts = new Map<string, number>();
      for (const l of lines) {
        if (l.type === "job" && l.event.type === "done" && !warmIds.has(l.id))
          counts.set(l.id, (counts.get(l.id) ?? 0) + 1);
      }
      return counts;
    };
    const serverDone = doneCount(server.lines);
    const workerDone = doneCount(workers.flatMap((w) => w.lines));
    const duplicated =
      [...serverDone.values()].filter((n) => n > 1).length +
      (workers.length ? [...workerDone.values()].filter((n) => n > 1).length : 0) +
      (results.length - ids.size);
    const perWorker = workers.map((w) => doneCount(w.lines).size);
    latencies.sort((a, b) => a - b);
    return [
      setup,
      results.length,
      clients,
      fmt(wall),
      fmt(results.length / wall),
      fmt(percentile(latencies, 50)),
      fmt(percentile(latencies, 95)),
      lost,
      duplicated,
      perWorker.join(" / ") || "-",
    ];
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await server.stop();
  }
}

const needsRedis = setups.some((s) => SETUPS[s] > 0);
const redis = needsRedis ? await startRedis() : undefined;
const rows: (string | number)[][] = [];
try {
  for (const setup of setups) {
    console.error(`bench/serve-load: ${setup}: ${jobs} jobs of ${steps} MNIST steps, ${clients} clients...`);
    rows.push(await measure(setup, redis?.url));
  }
} finally {
  await redis?.stop();
}
printTable(
  ["setup", "jobs", "clients", "wall s", "jobs/s", "p50 s", "p95 s", "lost", "duplicated", "done per worker"],
  rows,
);
const bad = rows.filter((r) => r[7] !== 0 || r[8] !== 0);
if (bad.length) {
  console.error(`bench/serve-load: jobs lost or duplicated in ${bad.map((r) => r[0]).join(", ")}`);
  process.exit(1);
}
