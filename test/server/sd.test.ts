// The server with the tiny fixture Stable Diffusion pipeline (../shared/fixtures/models, assembled into a
// diffusers folder) and a fixture LoRA in --loras-dir: A1111 txt2img / img2img / inpainting and our API give the
// library's own images, with LoRAs by name; library input errors come back as 400s.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeImage, encodePng } from "../../src/io/image.js";
import { loadStableDiffusionPipeline } from "../../src/pipelines/stable-diffusion-xl.js";
import { ModelCatalog } from "../../src/server/models.js";
import { fixturesDir, skipWithoutFixtures } from "../helpers.js";
import { SD15_SCHEDULER, testImage } from "../pipelines/tiny-pipeline.js";
import {
  assembleTinySd,
  behindBlocker,
  openEvents,
  request,
  startServer,
  type TestServer,
} from "./helpers.js";

const b64 = (width: number, height: number, seed: number) =>
  encodePng(testImage(width, height, seed)).toString("base64");

describe("diffuse serve with the tiny fixture SD pipeline", { skip: skipWithoutFixtures() }, () => {
  let tmp: string;
  let model: string;
  let t: TestServer;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "diffuse-serve-sd-"));
    model = join(tmp, "tiny-sd");
    assembleTinySd(model, fixturesDir()!, SD15_SCHEDULER);
    mkdirSync(join(tmp, "loras"));
    symlinkSync(
      join(fixturesDir()!, "lora", "lora_peft.safetensors"),
      join(tmp, "loras", "lora_peft.safetensors"),
    );
    const catalog = await ModelCatalog.create({ models: [model], lorasDir: join(tmp, "loras") });
    t = await startServer({ catalog });
  });
  after(async () => {
    await t.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("lists the SD model first (the default), then the shipped ones, and the LoRA by name", async () => {
    const models = (await request(`${t.url}/api/v1/models`, "GET")).body;
    assert.deepEqual(
      models.map((m: { name: string; kind: string }) => [m.name, m.kind]),
      [
        ["tiny-sd", "stable-diffusion"],
        ["emoji", "stable-diffusion"],
        ["mnist", "class-conditional"],
      ],
    );
    assert.deepEqual((await request(`${t.url}/sdapi/v1/loras`, "GET")).body, [
      { name: "lora_peft", alias: "lora_peft", path: "lora_peft", metadata: {} },
    ]);
  });

  it("txt2img gives the library's image for the same settings, with the LoRA of a <lora:...> tag", async () => {
    const body = {
      prompt: "a photo of a cat <lora:lora_peft:0.5>",
      negative_prompt: "blurry",
      steps: 2,
      seed: 3,
      sampler_name: "DPM++ 2M Karras",
      cfg_scale: 5,
      width: 16,
      height: 16,
      batch_size: 2,
    };
    const r = await request(`${t.url}/sdapi/v1/txt2img`, "POST", body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.images.length, 2);
    const info = JSON.parse(r.body.info);
    assert.equal(info.prompt, "a photo of a cat");
    assert.equal(info.sampler_name, "DPM++ 2M Karras");
    assert.equal(info.sd_model_name, "tiny-sd");
    assert.match(info.infotexts[1], /Batch size: 2, Batch pos: 1/);
    assert.match(info.infotexts[1], /Lora hashes: "lora_peft: [0-9a-f]{12}", Lora scales: "lora_peft: 0.5"/);
    const pipe = await loadStableDiffusionPipeline(model);
    await pipe.loadLora(join(tmp, "loras", "lora_peft.safetensors"), { scale: 0.5 });
    const want = await pipe.generate({
      prompt: "a photo of a cat",
      negativePrompt: "blurry",
      steps: 2,
      seed: 3,
      sampler: "dpmpp-2m-karras",
      guidanceScale: 5,
      width: 16,
      height: 16,
      numImages: 2,
    });
    for (let i = 0; i < 2; i++) {
      const got = decodeImage(Buffer.from(r.body.images[i], "base64"));
      assert.deepEqual([got.width, got.height], [16, 16]);
      assert.deepEqual(got.data, want.images[i]!.data, `image ${i}`);
    }
    // the LoRA was taken off again: the same request without the tag gives other pixels
    const plain = await request(`${t.url}/sdapi/v1/txt2img`, "POST", {
      ...body,
      prompt: "a photo of a cat",
      batch_size: 1,
    });
    assert.notEqual(plain.body.images[0], r.body.images[0]);
    assert.doesNotMatch(JSON.parse(plain.body.info).infotexts[0], /Lora/);
  });

  it("img2img and inpainting take base64 init_images and mask", async () => {
    const r = await request(`${t.url}/sdapi/v1/img2img`, "POST", {
      prompt: "a red car",
      init_images: [`data:image/png;base64,${b64(16, 16, 1)}`],
      denoising_strength: 0.5,
      steps: 4,
      seed: 2,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.parameters.init_images, null);
    assert.match(JSON.parse(r.body.info).infotexts[0], /Denoising strength: 0.5/);
    const inpaint = await request(`${t.url}/sdapi/v1/img2img`, "POST", {
      prompt: "a red car",
      init_images: [b64(16, 16, 1)],
      mask: b64(16, 16, 2),
      steps: 2,
      seed: 2,
    });
    assert.equal(inpaint.status, 200, JSON.stringify(inpaint.body));
    assert.equal(decodeImage(Buffer.from(inpaint.body.images[0], "base64")).width, 16);
  });

  it("our API: LoRAs by name, progress per step, and the library's refusals as 400 jobs", async () => {
    const { body, stream } = await behindBlocker(t.url, async () => {
      const submitted = await request(`${t.url}/api/v1/generate`, "POST", {
        prompt: "a cat",
        steps: 3,
        sampler: "ddim", // (the folder's PNDM makes one model call more than it has steps)
        seed: 1,
        width: 16,
        height: 16,
        loras: [{ name: "lora_peft", scale: 0.8 }],
      });
      const { stream: opened, first } = openEvents(`${t.url}/api/v1/jobs/${submitted.body.id}/events`);
      await first;
      return { body: submitted.body, stream: opened };
    });
    const { events } = await stream;
    assert.deepEqual(
      events.filter((e) => e.event === "progress").map((e) => [e.data.step, e.data.total]),
      [
        [1, 3],
        [2, 3],
        [3, 3],
      ],
    );
    const job = (await request(`${t.url}/api/v1/jobs/${body.id}`, "GET")).body;
    assert.match(job.result.images[0].parameters, /Lora scales: "lora_peft: 0.8"/);
    const odd = await request(`${t.url}/sdapi/v1/txt2img`, "POST", {
      prompt: "a cat",
      steps: 1,
      width: 15,
      height: 16,
    });
    assert.equal(odd.status, 400);
    assert.match(odd.body.message, /multiple/);
  });
});
