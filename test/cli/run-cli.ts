// Test helper: runs the CLI from the sources (`node --import tsx src/cli/main.ts ...`) in the repository root.
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (where the CLI runs). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Runs `diffuse ARGS...` to completion; its exit code and output. */
export function diffuse(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    env: { ...process.env, DIFFUSE_DEBUG: "" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
