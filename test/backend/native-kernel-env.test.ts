// DIFFUSE_NATIVE_KERNEL: forcing the SIMD level of the native kernels when the backend loads.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { skip } from "./native-helpers.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The kernel the native backend reports in a fresh process with DIFFUSE_NATIVE_KERNEL=`value`. */
function loadWith(value: string): { status: number | null; stdout: string; stderr: string } {
  const script =
    'const { nativeAddon } = await import("./src/backend/native/index.ts"); console.log(nativeAddon.info().kernel);';
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, DIFFUSE_NATIVE_KERNEL: value },
  });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

test("DIFFUSE_NATIVE_KERNEL=portable runs the portable kernels", { skip }, () => {
  const r = loadWith("portable");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "portable");
});

test("DIFFUSE_NATIVE_KERNEL with an unknown level is an error that names the choices", { skip }, () => {
  const r = loadWith("avx9000");
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /DIFFUSE_NATIVE_KERNEL=avx9000: expected avx512, avx2 or portable/);
});
