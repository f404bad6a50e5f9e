// The web app end to end: `npm run build:web` into a temporary folder, `diffuse serve --web` on it (a process, on
// the reference backend), the page in headless Chromium. In the browser on the CPU it draws the Node CLI's pixels
// for the same seed and settings, with the CLI's parameters in the downloaded PNG; the model is fetched once (the
// next visit reads Cache Storage); Cancel stops a run; a dropped PNG restores its settings; on the server (same
// origin) the images are the CLI's too; without a usable GPU "auto" computes on the CPU and says so.
// DIFFUSE_WEB_SCREENSHOT=docs/web-app.png saves the README's screenshot. Skips where Chromium is missing.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { encodePng } from "../../src/io/image.js";
import { formatParameters } from "../../src/pipelines/params.js";
import { skipWithoutChromium } from "./chromium.js";
import {
  type App,
  type Downloaded,
  diffuse,
  fill,
  generate,
  openPage,
  type PageGlobals,
  readPng,
  root,
  startApp,
  waitForText,
  waitReady,
} from "./web-app-harness.js";

const SETTINGS = { prompt: "red heart", seed: 11, steps: 2, guidance: 3 };

describe("the web app in headless Chromium, served by diffuse serve", { skip: skipWithoutChromium }, () => {
  let app: App;
  let cli: Downloaded;
  let tmp: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "diffuse-web-cli-"));
    const out = join(tmp, "cli.png");
    const s = SETTINGS;
    const args = [
      "generate",
      s.prompt,
      "--seed",
      `${s.seed}`,
      "--steps",
      `${s.steps}`,
      "--guidance",
      `${s.guidance}`,
    ];
    [app] = await Promise.all([startApp(["--enable-unsafe-webgpu"]), diffuse(...args, "-o", out)]);
    cli = readPng(readFileSync(out));
  });

  after(async () => {
    await app?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("generates in the browser (CPU) the Node CLI's pixels; the PNG carries the CLI's parameters", async (t) => {
    const started = Date.now();
    await openPage(app, "device=cpu");
    const loaded = Date.now();
    assert.match((await app.page.textContent("#status")) ?? "", /emoji on the CPU/);
    await fill(app.page, SETTINGS);
    const got = await generate(app.page);
    t.diagnostic(
      `page opened to model loaded: ${loaded - started} ms; to the first image: ${Date.now() - started} ms`,
    );
    assert.equal(got.width, 32);
    assert.deepEqual(got.pixels, cli.pixels);
    assert.equal(got.parameters, cli.parameters);
    assert.match(
      got.parameters,
      /^red heart\nSteps: 2, Sampler: DPM\+\+ 2M, CFG scale: 3, Seed: 11, Size: 32x32, Model hash: \w{10}, Model: emoji/,
    );
    const shot = process.env.DIFFUSE_WEB_SCREENSHOT;
    if (shot) {
      await app.page.setViewportSize({ width: 960, height: 600 });
      await app.page.screenshot({ path: join(root, shot) });
      await app.page.setViewportSize({ width: 1280, height: 720 });
    }
  });

  it("fetches the model once: the next visit reads it from Cache Storage", async () => {
    const fetched: string[] = [];
    const onRequest = (r: { url(): string }) => {
      if (r.url().includes("/models/emoji/")) fetched.push(r.url());
    };
    app.context.on("request", onRequest);
    try {
      await openPage(app, "device=cpu");
    } finally {
      app.context.off("request", onRequest);
    }
    assert.deepEqual(fetched, []);
    const cached = (await app.page.evaluate(
      'caches.open("diffuse-models-v1").then((c) => c.keys()).then((k) => k.map((r) => new URL(r.url).pathname))',
    )) as string[];
    assert.ok(cached.includes("/models/emoji/unet/diffusion_pytorch_model.safetensors"), cached.join(", "));
  });

  it("Cancel stops a run between steps", async () => {
    const page = app.page;
    const before = await page.locator("#gallery figure").count();
    await fill(page, { ...SETTINGS, steps: 60 });
    await page.click("#generate");
    await waitForText(page, "#progress-text", /step [1-9]/);
    await page.click("#cancel");
    await page.waitForSelector("#messages .message.info >> text=Cancelled.");
    await waitReady(page);
    assert.equal(await page.locator("#gallery figure").count(), before);
    assert.equal(await page.isVisible("#progress"), false);
  });

  it("a PNG dropped on the page restores its parameters", async () => {
    const parameters = formatParameters({
      prompt: "grinning cat",
      negativePrompt: "blurry",
      steps: 7,
      sampler: "euler-a",
      guidanceScale: 4.5,
      seed: 1234,
      width: 32,
      height: 32,
    });
    const png = encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(12) }, { parameters });
    // what a drag and drop from the file manager delivers: a drop event whose DataTransfer holds the File
    const dataTransfer = await app.page.evaluateHandle(
      ({ bytes }) => {
        const page = globalThis as unknown as PageGlobals;
        const data = new page.DataTransfer();
        data.items.add(new page.File([new Uint8Array(bytes)], "cat.png", { type: "image/png" }));
        return data;
      },
      { bytes: Array.from(png) },
    );
    await app.page.dispatchEvent("body", "drop", { dataTransfer });
    await app.page.waitForSelector("#messages >> text=Parameters restored from cat.png");
    const values = [];
    for (const id of ["prompt", "negative", "steps", "sampler", "guidance", "seed", "width", "height"])
      values.push(await app.page.inputValue(`#${id}`));
    assert.deepEqual(values, ["grinning cat", "blurry", "7", "euler-a", "4.5", "1234", "32", "32"]);
  });

  it("computes on the server (same origin, its progress events): the CLI's pixels", async () => {
    await openPage(app, "mode=server");
    assert.match((await app.page.textContent("#status")) ?? "", /on the server/);
    assert.equal(await app.page.inputValue("#server-model"), "emoji");
    await app.page.fill("#width", "");
    await app.page.fill("#height", "");
    await fill(app.page, SETTINGS);
    const got = await generate(app.page);
    assert.deepEqual(got.pixels, cli.pixels);
    // the server's parameters: the same settings, named by the server
    assert.match(
      got.parameters,
      /^red heart\nSteps: 2, Sampler: DPM\+\+ 2M, CFG scale: 3, Seed: 11, Size: 32x32/,
    );
  });

  it("without a usable GPU, auto computes on the CPU and says why", async () => {
    await openPage(app, "device=auto");
    assert.match((await app.page.textContent("#status")) ?? "", /on the CPU/);
    const notice = (await app.page.locator("#messages .notice").first().textContent()) ?? "";
    assert.match(notice, /No WebGPU in this browser|software adapter/);
  });

  it("on WebGPU (SwiftShader here, float16 weights): the CPU's image within a few levels", async (t) => {
    await openPage(app, "device=webgpu");
    const status = (await app.page.textContent("#status")) ?? "";
    if (!/on WebGPU/.test(status)) return t.skip(`this Chromium gives no WebGPU adapter (${status})`);
    await fill(app.page, SETTINGS);
    const got = await generate(app.page);
    const diff = got.pixels.map((v, i) => Math.abs(v - cli.pixels[i]!));
    const mean = diff.reduce((a, b) => a + b, 0) / diff.length;
    t.diagnostic(`|webgpu - cpu| per channel: mean ${mean.toFixed(3)}, max ${Math.max(...diff)}`);
    assert.ok(mean < 1 && Math.max(...diff) <= 8, `mean ${mean}, max ${Math.max(...diff)}`);
    assert.match(got.parameters, /Seed: 11, Size: 32x32/);
  });

  it("errors reached the page as messages, none as page errors", () => {
    assert.deepEqual(app.pageErrors, []);
  });
});
