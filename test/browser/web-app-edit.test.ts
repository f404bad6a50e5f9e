// The web app's image-to-image side and the user's own files, end to end in headless Chromium on the CPU path,
// each against the library's pixels in Node for the same inputs: inpainting with a mask painted on the canvas (the
// mask downloaded from the page is the one Node uses), a LoRA picked from disk (and one for another model family,
// which is a message in the page), and checkpoints picked from disk (a diffusers folder, a single .safetensors
// file read in pieces). Skips where Chromium is missing.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setBackend } from "../../src/backend/index.js";
import { encodePng, type Image } from "../../src/io/image.js";
import { serializeSafetensors } from "../../src/io/safetensors-write.js";
import type { Module } from "../../src/nn/module.js";
import { folderToSingleFile } from "../../src/pipelines/convert-single-file.js";
import type { GenerateOptions } from "../../src/pipelines/generate-options.js";
import { loadStableDiffusionPipeline } from "../../src/pipelines/stable-diffusion-xl.js";
import { randn } from "../../src/tensor/create.js";
import { Generator } from "../../src/tensor/generator.js";
import { skipWithoutChromium } from "./chromium.js";
import { startStaticServer } from "./static-server.js";
import {
  type App,
  download,
  fill,
  generate,
  openPage,
  root,
  startApp,
  waitForText,
  waitReady,
} from "./web-app-harness.js";

const EMOJI = join(root, "models", "emoji");
const SETTINGS = { prompt: "fire", seed: 5, steps: 2, guidance: 3 };

/** The pixels of the emoji pipeline in Node on the reference backend (the browser's CPU path). */
async function nodePixels(
  opts: Partial<GenerateOptions>,
  lora?: { file: string; scale: number },
): Promise<{ pixels: number[]; parameters: string[] }> {
  const previous = setBackend("reference");
  try {
    const pipe = await loadStableDiffusionPipeline(EMOJI);
    if (lora) await pipe.loadLora(lora.file, { scale: lora.scale });
    const r = await pipe.generate({
      prompt: SETTINGS.prompt,
      seed: SETTINGS.seed,
      steps: SETTINGS.steps,
      guidanceScale: SETTINGS.guidance,
      ...opts,
    });
    return {
      pixels: Array.from(r.images[0]!.data),
      parameters: pipe.activeLoras.map((l) => `${l.name}: ${l.hash}`),
    };
  } finally {
    setBackend(previous);
  }
}

/** A PEFT LoRA of rank 4 on one attention projection: `width` its input (the emoji UNet's is 64; SD 1.x's 320). */
function peftLora(module: string, width: number, out: number, seed: number): Uint8Array {
  const g = new Generator().manualSeed(seed);
  return serializeSafetensors({
    [`unet.${module}.lora_A.weight`]: randn([4, width], { generator: g }).mul(0.5),
    [`unet.${module}.lora_B.weight`]: randn([out, 4], { generator: g }).mul(0.5),
  });
}

describe("the web app: inpainting, LoRAs, checkpoints from disk (headless Chromium, CPU)", {
  skip: skipWithoutChromium,
}, () => {
  let app: App;
  /** Node's pixels for SETTINGS (no init image, no LoRA). */
  let plain: number[];

  before(async () => {
    [app, plain] = await Promise.all([startApp(), nodePixels({}).then((r) => r.pixels)]);
  });

  after(async () => {
    await app?.close();
  });

  it("inpaints the region painted on the canvas: Node's pixels for that image and mask", async () => {
    const page = app.page;
    await openPage(app, "device=cpu");
    // an init image with some structure: a diagonal gradient
    const data = new Uint8Array(32 * 32 * 3);
    for (let i = 0; i < 32 * 32; i++) data.set([(i % 32) * 8, Math.floor(i / 32) * 8, 128], i * 3);
    const init: Image = { width: 32, height: 32, channels: 3, data };
    const initFile = join(app.tmp, "init.png");
    writeFileSync(initFile, encodePng(init));
    await page.setInputFiles("#init-file", initFile);
    await page.waitForSelector('#mask-canvas[width="32"]');
    await page.locator("#mask-canvas").scrollIntoViewIfNeeded();
    const box = (await page.locator("#mask-canvas").boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.15, box.y + box.height * 0.3);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.85, box.y + box.height * 0.3, { steps: 8 });
    await page.mouse.up();
    const mask = await download(page, "#download-mask");
    const white = mask.pixels.filter((v, i) => i % 3 === 0 && v === 255).length;
    assert.ok(white > 50 && white < 600, `mask pixels painted: ${white}`);
    await fill(page, { ...SETTINGS, strength: 0.8 });
    const got = await generate(page);
    assert.match(got.parameters, /Denoising strength: 0\.8/);
    const maskImage: Image = { width: 32, height: 32, channels: 3, data: Uint8Array.from(mask.pixels) };
    const want = await nodePixels({ initImage: init, mask: maskImage, strength: 0.8 });
    assert.deepEqual(got.pixels, want.pixels);
    await page.click("#remove-init");
  });

  it("a LoRA from disk changes the image as in Node; a LoRA for another family is a message", async () => {
    const page = app.page;
    const previous = setBackend("reference");
    let out: number;
    const module = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
    try {
      const pipe = await loadStableDiffusionPipeline(EMOJI);
      const layer = new Map<string, Module>(pipe.unet.namedModules()).get(module) as unknown as {
        weight: { shape: number[] };
      };
      out = layer.weight.shape[0]!;
    } finally {
      setBackend(previous);
    }
    const good = join(app.tmp, "sparkle.safetensors");
    writeFileSync(good, peftLora(module, out, out, 3));
    const bad = join(app.tmp, "sd15-style.safetensors");
    writeFileSync(bad, peftLora(module, 320, 320, 4));

    await openPage(app, "device=cpu");
    await page.click("#loras summary");
    await page.setInputFiles("#lora-files", good);
    await page.fill("#lora-list .lora input", "0.8");
    await fill(page, SETTINGS);
    const got = await generate(page);
    const want = await nodePixels({}, { file: good, scale: 0.8 });
    assert.notDeepEqual(want.pixels, plain, "the LoRA changes the image");
    assert.deepEqual(got.pixels, want.pixels);
    assert.match(
      got.parameters,
      new RegExp(`Lora hashes: "${want.parameters[0]}", Lora scales: "sparkle: 0.8"`),
    );

    await page.click("#lora-list .lora button");
    await page.setInputFiles("#lora-files", bad);
    await page.click("#generate");
    const message = page.locator("#messages .error").first();
    await message.waitFor({ timeout: 120_000 });
    assert.match(
      (await message.textContent()) ?? "",
      /This LoRA cannot be used with the loaded model\. LoRA "sd15-style" does not fit/,
    );
    await page.click("#lora-list .lora button");
    await waitReady(page);
  });

  it("loads a checkpoint from disk: a diffusers folder, and a single .safetensors file", async () => {
    const page = app.page;
    const single = join(app.tmp, "emoji-single.safetensors");
    await folderToSingleFile(EMOJI, single);

    await openPage(app, "device=cpu");
    await page.setInputFiles("#model-folder", EMOJI);
    await waitForText(page, "#status", /emoji \(from disk\) on the CPU/);
    await waitReady(page);
    await fill(page, SETTINGS);
    const fromFolder = await generate(page);
    assert.deepEqual(fromFolder.pixels, plain);
    assert.match(fromFolder.parameters, /Model: emoji/);

    await page.setInputFiles("#model-file", single);
    await waitForText(page, "#status", /emoji-single \(from disk\) on the CPU/);
    await waitReady(page);
    const fromFile = await generate(page);
    assert.deepEqual(fromFile.pixels, plain);
    assert.match(fromFile.parameters, /Model: emoji-single/);

    // a .safetensors file that is no Stable Diffusion checkpoint: a message, and nothing to generate with
    const weird = join(app.tmp, "weird.safetensors");
    writeFileSync(weird, serializeSafetensors({ "some.weight": randn([2, 2]) }));
    await page.setInputFiles("#model-file", weird);
    await waitForText(page, "#messages .error", /This model cannot be loaded\. .*weird\.safetensors/);
    assert.equal(await page.isDisabled("#generate"), true);
    assert.deepEqual(app.pageErrors, []);
  });

  it("the built folder works from a plain static server: the page loads the model and draws", async () => {
    const web = join(app.tmp, "web");
    const host = await startStaticServer({
      pages: { "/": readFileSync(join(web, "index.html"), "utf8") },
      folders: { "/": web },
    });
    try {
      const page = app.page;
      await page.goto(`${host.url}?device=cpu`);
      await waitReady(page);
      await fill(page, SETTINGS);
      assert.deepEqual((await generate(page)).pixels, plain);
      assert.ok((host.hits.get("/models/emoji/unet/diffusion_pytorch_model.safetensors") ?? 0) >= 1);
    } finally {
      await host.close();
    }
    assert.deepEqual(app.pageErrors, []);
  });
});
