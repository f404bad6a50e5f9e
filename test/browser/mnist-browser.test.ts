// The browser entry in a real browser: bundles src/browser.ts (+ page.ts) with esbuild for the browser platform
// (a node: import, the native addon or the CLI anywhere in its graph fails the build), serves it and models/mnist
// from 127.0.0.1, and in headless Chromium (Debian's `chromium`, driven by playwright-core) generates a digit with
// the shipped MNIST model on the reference backend: the pixels must equal Node's for the same seed.
// Skips (with a message) when Chromium is not installed; .ci/run installs it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { build } from "esbuild";
import { setBackend } from "../../src/backend/index.js";
import { tensorToImages } from "../../src/io/image.js";
import { generateClassImages, loadClassConditionalPipeline } from "../../src/pipelines/class-conditional.js";
import { launchChromium, skipWithoutChromium } from "./chromium.js";
import type { Digit, DigitRequest } from "./page.js";
import { type StaticServer, startStaticServer } from "./static-server.js";

const root = resolve(import.meta.dirname, "..", "..");
const request: DigitRequest = { label: 3, steps: 3, seed: 7 };
const skip = skipWithoutChromium;

describe("the browser entry in headless Chromium", { skip }, () => {
  let server: StaticServer;
  let url: string;
  let bundle: string;
  let profile: string;

  before(async () => {
    const result = await build({
      entryPoints: [join(import.meta.dirname, "page.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      logLevel: "silent",
    });
    bundle = result.outputFiles[0]!.text;
    server = await startStaticServer({
      pages: { "/": "<!doctype html><title>diffuse</title>", "/bundle.js": bundle },
      folders: { "/models/": join(root, "models") },
    });
    url = server.url;
    profile = mkdtempSync(join(tmpdir(), "diffuse-chromium-"));
  });

  after(async () => {
    await server?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("the bundle has no node: import, no native addon and no CLI", () => {
    assert.doesNotMatch(bundle, /from\s*["']node:|import\(\s*["']node:|require\(\s*["']node:/);
    assert.doesNotMatch(bundle, /diffuse_native|createRequire|commander/);
  });

  it("generates the same MNIST digit as Node (reference backend, same seed)", async () => {
    const context = await launchChromium(profile);
    let inBrowser: Digit;
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(url);
      await page.addScriptTag({ url: "/bundle.js", type: "module" });
      await page.waitForFunction(() => "generateDigit" in globalThis, null, { timeout: 10_000 });
      inBrowser = await page.evaluate(
        (req) =>
          (globalThis as unknown as { generateDigit(r: typeof req): Promise<Digit> }).generateDigit(req),
        request,
      );
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }

    const previous = setBackend("reference");
    let inNode: Digit;
    try {
      const { unet, scheduler, guidanceInterval } = await loadClassConditionalPipeline(
        join(root, "models", "mnist"),
      );
      const x = await generateClassImages(unet, scheduler, {
        classLabels: [request.label],
        steps: request.steps,
        seed: request.seed,
        guidanceInterval,
      });
      const [image] = await tensorToImages(x);
      inNode = { values: Array.from(await x.data(), Number), pixels: Array.from(image!.data) };
    } finally {
      setBackend(previous);
    }

    assert.equal(inBrowser.pixels.length, 32 * 32);
    assert.deepEqual(inBrowser.pixels, inNode.pixels);
    // the same float32 arithmetic in the same order: the values themselves agree bit for bit
    assert.deepEqual(inBrowser.values, inNode.values);
    // and it is a digit, not a blank image: a fair share of ink and of background
    const ink = inNode.pixels.filter((p) => p > 128).length;
    assert.ok(ink > 30 && ink < 600, `ink pixels: ${ink}`);
  });
});
