// The WebGPU kernel tests (test/backend/webgpu-*.test.ts) in headless Chromium: the same files, bundled with
// esbuild for the browser (node:test and node:assert replaced by small shims), run in one page on the browser's
// own WebGPU (`navigator.gpu`; SwiftShader here). Every test must pass there as it does in Node.
// Skips (with a message) when Chromium is not installed; .ci/run installs it. WEBGPU_TESTS=<part of a file name>
// runs only the matching files.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { build } from "esbuild";
import { launchChromium, skipWithoutChromium } from "./chromium.js";
import type { Result } from "./shims/node-test.js";

const root = resolve(import.meta.dirname, "..", "..");
const shims = join(import.meta.dirname, "shims");
const skip = skipWithoutChromium;

describe("WebGPU kernels in headless Chromium", { skip }, () => {
  let server: Server;
  let url: string;
  let profile: string;
  const files = readdirSync(join(root, "test", "backend"))
    .filter(
      (f) =>
        /^webgpu-.*\.test\.ts$/.test(f) &&
        (!process.env.WEBGPU_TESTS || f.includes(process.env.WEBGPU_TESTS)),
    )
    .sort();

  before(async () => {
    const entry = [
      ...files.map((f) => `import ${JSON.stringify(join(root, "test", "backend", f))};`),
      `import { runAll } from ${JSON.stringify(join(shims, "node-test.ts"))};`,
      "(globalThis as { runKernelTests?: unknown }).runKernelTests = runAll;",
    ].join("\n");
    const result = await build({
      stdin: { contents: entry, loader: "ts", resolveDir: root, sourcefile: "webgpu-suite.ts" },
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      logLevel: "silent",
      alias: {
        "node:test": join(shims, "node-test.ts"),
        "node:assert/strict": join(shims, "assert.ts"),
        "node:assert": join(shims, "assert.ts"),
      },
    });
    const bundle = result.outputFiles[0]!.text;
    server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const [body, type] =
        path === "/"
          ? ["<!doctype html><title>diffuse webgpu kernels</title>", "text/html"]
          : path === "/bundle.js"
            ? [bundle, "text/javascript"]
            : [null, ""];
      if (body === null) return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": type }).end(body);
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    profile = mkdtempSync(join(tmpdir(), "diffuse-chromium-"));
  });

  after(() => {
    server?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("every kernel test passes in the page", { timeout: 600_000 }, async (t) => {
    const context = await launchChromium(profile, ["--enable-unsafe-webgpu"]);
    let results: Result[];
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(url);
      await page.addScriptTag({ url: "/bundle.js", type: "module" });
      await page.waitForFunction(() => "runKernelTests" in globalThis, null, { timeout: 30_000 });
      results = await page.evaluate(() =>
        (globalThis as unknown as { runKernelTests: () => Promise<Result[]> }).runKernelTests(),
      );
      assert.deepEqual(errors, [], "page errors");
    } finally {
      await context.close();
    }
    const skipped = results.filter((r) => r.status === "skip");
    // the whole suite skipping would mean the page found no WebGPU adapter: that is a failure here
    assert.ok(
      results.some((r) => r.status === "pass"),
      `nothing passed: ${JSON.stringify(skipped.slice(0, 3))}`,
    );
    for (const r of results) {
      await t.test(r.name, (s) => {
        if (r.status === "skip") return s.skip(r.message);
        assert.equal(r.status, "pass", r.message);
      });
    }
  });
});
