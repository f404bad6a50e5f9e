#!/usr/bin/env node
// Builds the native CPU backend (binding.gyp -> build/Release/diffuse_native.node) with node-gyp.
// Run by `npm install` and `npm run build:native`. A failed build is not fatal: the package still works with
// the reference backend, so this prints one warning and exits 0 (pass --strict to fail instead).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const strict = process.argv.includes("--strict");
const require = createRequire(import.meta.url);

/** node-gyp: npm's own (npm sets npm_config_node_gyp for scripts), a local install, or the copy bundled with npm. */
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(require.resolve("node-gyp/bin/node-gyp.js"));
  } catch {
    // not installed locally
  }
  const npmDir = process.env.npm_execpath ? dirname(dirname(process.env.npm_execpath)) : null;
  if (npmDir) candidates.push(join(npmDir, "node_modules", "node-gyp", "bin", "node-gyp.js"));
  const nodePrefix = dirname(dirname(process.execPath));
  candidates.push(
    join(nodePrefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  );
  candidates.push(
    join(dirname(process.execPath), "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  );
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

function fail(reason) {
  const msg = `diffuse: native backend not built (${reason}); using the slower reference backend. Run \`npm run build:native\` to retry.`;
  if (strict) {
    console.error(msg);
    process.exit(1);
  }
  console.warn(`warning: ${msg}`);
  process.exit(0);
}

if (process.env.DIFFUSE_SKIP_NATIVE_BUILD) {
  console.log("diffuse: DIFFUSE_SKIP_NATIVE_BUILD set, skipping the native build");
  process.exit(0);
}
const gyp = findNodeGyp();
if (!gyp) fail("node-gyp not found");
// node-gyp's parallelism: DIFFUSE_BUILD_JOBS, else 2 (small machines share their cores)
const jobs = process.env.DIFFUSE_BUILD_JOBS ?? "2";
const args = [gyp, "rebuild", `--jobs=${jobs}`];
// Build against the headers installed next to this node (official tarballs and distro packages ship them), so
// no header download is needed; an explicit npm_config_nodedir wins.
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, "include", "node", "node_api.h")))
  args.push(`--nodedir=${prefix}`);
const result = spawnSync(process.execPath, args, {
  cwd: root,
  stdio: strict ? "inherit" : ["ignore", "pipe", "pipe"],
  encoding: "utf8",
});
if (result.status !== 0) {
  // the first compiler/gyp error line says more than node-gyp's trailer
  const lines = `${result.stdout ?? ""}\n${result.stderr ?? ""}`.split("\n").map((l) => l.trim());
  const cause =
    lines.find((l) => /\berror\b/i.test(l) && !l.startsWith("gyp ERR!")) ??
    lines.find((l) => l.startsWith("gyp ERR! stack Error")) ??
    "";
  fail(
    result.error ? result.error.message : `node-gyp exited with ${result.status}${cause ? `: ${cause}` : ""}`,
  );
}
console.log("diffuse: native backend built (build/Release/diffuse_native.node)");
