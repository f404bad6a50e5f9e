#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's test runner (Node 20 has no --test glob support).
// Usage: node scripts/run-tests.js [filter...]   (a filter keeps test files whose path contains it)
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = findTests("test").filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(", ")}`);
  process.exit(1);
}
// Tests import src/ modules directly, so the Node platform set-up of the package entry (native backend, file
// paths) is loaded first, as `import "diffuse"` does.
const platform = pathToFileURL(resolve("src/platform-node.ts")).href;
const run = (list, env = process.env) =>
  spawnSync(
    process.execPath,
    ["--import", "tsx", "--import", platform, "--test", "--test-reporter=spec", ...list],
    {
      stdio: "inherit",
      env,
    },
  ).status ?? 1;
let status = run(files);
// The WebGPU kernel tests run on the default adapter above (Mesa's lavapipe on a machine without a GPU) and again
// on SwiftShader, the second software adapter (no float16, subgroups of 4, 256 threads per workgroup).
const gpuKernelTests = files.filter((f) => /[\\/]backend[\\/]webgpu-[^/\\]*\.test\.ts$/.test(f));
if (gpuKernelTests.length > 0 && !process.env.DIFFUSE_WEBGPU_ADAPTER) {
  console.log("\n# WebGPU kernel tests on SwiftShader (DIFFUSE_WEBGPU_ADAPTER=swiftshader)");
  const second = run(gpuKernelTests, { ...process.env, DIFFUSE_WEBGPU_ADAPTER: "swiftshader" });
  // and the paths for adapters without subgroups or float16 (both software adapters have subgroups)
  console.log("\n# WebGPU kernel tests without subgroups and shader-f16 (DIFFUSE_WEBGPU_FEATURES)");
  const third = run(gpuKernelTests, { ...process.env, DIFFUSE_WEBGPU_FEATURES: "-subgroups,-shader-f16" });
  status = status || second || third;
}
process.exit(status);
