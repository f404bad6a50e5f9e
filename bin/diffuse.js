#!/usr/bin/env node
// Entry point of the `diffuse` command: runs the compiled CLI (dist/, made by `npm run build`).
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("diffuse: dist/cli/main.js is missing; run `npm run build` first\n");
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
