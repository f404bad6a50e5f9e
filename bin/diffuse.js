#!/usr/bin/env node
// Entry point of the `diffuse` command: runs the compiled CLI (dist/, made by `npm run build`).
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("diffuse: dist/cli/main.js is missing; run `npm run build` first\n");
  process.exit(1);
}
let main;
try {
  ({ main } = await import(entry.href));
} catch (err) {
  // a setting read while the modules load (DIFFUSE_NATIVE_KERNEL=avx9000) fails here, before main() can report it
  process.stderr.write(`diffuse: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.DIFFUSE_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}
process.exitCode = await main(process.argv);
