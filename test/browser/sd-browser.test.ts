// Stable Diffusion in the browser entry: bundles src/browser.ts (+ sd-page.ts) for the browser, serves it and the
// shipped emoji model (a Stable Diffusion 1.x folder of its own, tiny sizes) from 127.0.0.1, and in headless
// Chromium loads the pipeline from the folder's URL and from a map of Blobs (what a folder picker gives), then
// generates on the reference backend: pixels, A1111 parameters and model hash must equal Node's for the same
// seed and settings. Skips (with a message) when Chromium is not installed; .ci/run installs it.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { build } from "esbuild";
import { setBackend } from "../../src/backend/index.js";
import { formatParameters, loadStableDiffusionPipeline } from "../../src/pipelines/index.js";
import { launchChromium, skipWithoutChromium } from "./chromium.js";
import type { EmojiRequest, EmojiResult } from "./sd-page.js";
import { type StaticServer, startStaticServer } from "./static-server.js";

const root = resolve(import.meta.dirname, "..", "..");
const emoji = join(root, "models", "emoji");
const skip = skipWithoutChromium;

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe("Stable Diffusion in headless Chromium (browser entry, reference backend)", { skip }, () => {
  let server: StaticServer;
  let profile: string;
  const request: Omit<EmojiRequest, "source"> = {
    prompt: "red heart",
    steps: 2,
    seed: 11,
    guidanceScale: 7.5,
    files: filesUnder(emoji).map((f) => relative(emoji, f).split("\\").join("/")),
  };

  before(async () => {
    const result = await build({
      entryPoints: [join(import.meta.dirname, "sd-page.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      logLevel: "silent",
    });
    server = await startStaticServer({
      pages: { "/": "<!doctype html><title>diffuse</title>", "/bundle.js": result.outputFiles[0]!.text },
      folders: { "/models/": join(root, "models") },
    });
    profile = mkdtempSync(join(tmpdir(), "diffuse-chromium-"));
  });

  after(async () => {
    await server?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("loads the emoji pipeline from a URL and from Blobs and draws Node's pixels", async () => {
    const context = await launchChromium(profile);
    const inBrowser: EmojiResult[] = [];
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(server.url);
      await page.addScriptTag({ url: "/bundle.js", type: "module" });
      await page.waitForFunction(() => "generateEmoji" in globalThis, null, { timeout: 10_000 });
      for (const source of ["url", "files"] as const) {
        inBrowser.push(
          await page.evaluate(
            (req) =>
              (globalThis as unknown as { generateEmoji(r: typeof req): Promise<EmojiResult> }).generateEmoji(
                req,
              ),
            { ...request, source },
          ),
        );
      }
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }

    const previous = setBackend("reference");
    let inNode: EmojiResult;
    try {
      const pipe = await loadStableDiffusionPipeline(emoji);
      const { images, settings } = await pipe.generate({
        prompt: request.prompt,
        steps: request.steps,
        seed: request.seed,
        guidanceScale: request.guidanceScale,
      });
      inNode = {
        width: images[0]!.width,
        height: images[0]!.height,
        pixels: Array.from(images[0]!.data),
        parameters: formatParameters(settings),
        modelHash: await pipe.modelHash(),
      };
    } finally {
      setBackend(previous);
    }
    assert.equal(inNode.width, 32);
    assert.equal(inNode.pixels.length, 32 * 32 * 3);
    for (const got of inBrowser) assert.deepEqual(got, inNode);
    assert.match(
      inNode.parameters,
      /^red heart\nSteps: 2, Sampler: DPM\+\+ 2M, CFG scale: 7\.5, Seed: 11, Size: 32x32, Model: emoji/,
    );
    // a picture, not a flat image
    assert.ok(new Set(inNode.pixels).size > 50, "distinct pixel values");
  });
});
