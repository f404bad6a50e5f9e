// The OpenBLAS peer of the SGEMM benchmarks: bench/openblas/sgemm.c is compiled at bench time against the
// system's libopenblas (Debian: libopenblas-dev) and run in its own process. Absent library = a clear message.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const source = join(dirname(fileURLToPath(import.meta.url)), "sgemm.c");

/** Compiles the harness; returns its path, or why it could not be built. */
export function buildOpenblasHarness(): { path: string } | { error: string } {
  const dir = join(tmpdir(), "diffuse-bench-openblas");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "sgemm");
  const cc = process.env.CC ?? "cc";
  const r = spawnSync(cc, ["-O2", source, "-o", path, "-lopenblas"], { encoding: "utf8" });
  if (r.error) return { error: `${cc} not found (${r.error.message})` };
  if (r.status !== 0) {
    const first = `${r.stderr}`.split("\n").find((l) => l.includes("error")) ?? `${r.stderr}`.trim();
    return { error: `libopenblas not installed? (${first.slice(0, 160)})` };
  }
  return { path };
}

export interface OpenblasRun {
  /** OpenBLAS's kernel ("core") name, e.g. SkylakeX or Prescott (its fallback for CPUs it does not know). */
  core: string;
  wall: number;
  cpu: number;
}

/**
 * Best-of-`repeats` sgemm time for C[m,n] = A[m,k] B (or B^T) on `threads` threads; `coretype` forces a kernel
 * (OPENBLAS_CORETYPE), else OpenBLAS picks one for the CPU.
 */
export function runOpenblas(
  harness: string,
  shape: { m: number; n: number; k: number; transB: boolean },
  threads: number,
  repeats: number,
  coretype?: string,
): OpenblasRun {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads) };
  if (coretype) env.OPENBLAS_CORETYPE = coretype;
  else delete env.OPENBLAS_CORETYPE;
  const args = [shape.m, shape.n, shape.k, shape.transB ? 1 : 0, repeats].map(String);
  const r = spawnSync(harness, args, { env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openblas harness failed: ${r.stderr || r.error?.message}`);
  const kv = Object.fromEntries(
    r.stdout
      .trim()
      .split(/\s+/)
      .map((p) => p.split("=") as [string, string]),
  );
  return { core: kv.core ?? "?", wall: Number(kv.wall), cpu: Number(kv.cpu) };
}
