#!/usr/bin/env node
// `npm run build:web`: the web app (web/) as a static folder any web server can serve: index.html, style.css, the
// page's script (app.js) and its worker (worker.js, with the library's browser entry), bundled and minified by
// esbuild, plus the shipped emoji model and models/index.json (the files the page fetches and caches).
// Usage: node scripts/build-web.js [out-dir]   (default dist/web; `diffuse serve` serves dist/web at /)
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = resolve(import.meta.dirname, "..");
const out = resolve(process.argv[2] ?? join(root, "dist", "web"));
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;

/** Shipped models the page offers (the first is its default) and the settings it starts them with. */
const SHIPPED = [{ name: "emoji", defaults: { steps: 10, guidance: 3 } }];

function filesUnder(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? filesUnder(path) : [path];
    });
}

const started = performance.now();
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: { app: join(root, "web", "app", "main.ts"), worker: join(root, "web", "app", "worker.ts") },
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  // error classes are told apart by name in the page
  keepNames: true,
  sourcemap: "linked",
  outdir: out,
  define: { DIFFUSE_VERSION: JSON.stringify(version) },
  logLevel: "warning",
});
if (result.errors.length > 0) process.exit(1);
for (const file of ["index.html", "style.css"]) cpSync(join(root, "web", file), join(out, file));

const index = SHIPPED.map(({ name, defaults }) => {
  const from = join(root, "models", name);
  cpSync(from, join(out, "models", name), { recursive: true });
  const files = filesUnder(from).map((f) => ({
    name: relative(from, f).split("\\").join("/"),
    size: statSync(f).size,
  }));
  return { name, path: `models/${name}/`, files, defaults };
});
writeFileSync(join(out, "models", "index.json"), `${JSON.stringify(index, null, 2)}\n`);

for (const name of ["app.js", "worker.js"]) {
  const code = readFileSync(join(out, name));
  if (/from\s*["']node:|import\(\s*["']node:|require\(\s*["']node:/.test(code.toString())) {
    console.error(`build-web: ${name} imports a node: module; the browser graph must not`);
    process.exit(1);
  }
  const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
  console.log(
    `${relative(root, join(out, name))}: ${kb(code.length)} (${kb(gzipSync(code).length)} gzipped)`,
  );
}
const models = index.reduce((n, m) => n + m.files.reduce((k, f) => k + f.size, 0), 0);
console.log(
  `built ${relative(root, out) || "."} in ${((performance.now() - started) / 1000).toFixed(1)} s (models: ${(models / 2 ** 20).toFixed(1)} MB)`,
);
