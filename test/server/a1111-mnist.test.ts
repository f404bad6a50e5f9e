// The A1111-compatible endpoints (/sdapi/v1) with the shipped MNIST model, in the shapes A1111 clients read:
// txt2img's { images, parameters, info }, progress, interrupt, samplers, sd-models, loras, options.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeImage } from "../../src/io/image.js";
import { mnistCatalog, request, startServer, type TestServer } from "./helpers.js";

describe("diffuse serve: /sdapi/v1 (A1111) with the shipped MNIST model", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ catalog: await mnistCatalog() });
  });
  after(() => t.close());

  it("txt2img: base64 PNGs, the request as parameters, info as a JSON string", async () => {
    const body = {
      prompt: "7",
      steps: 2,
      seed: 11,
      sampler_name: "Euler a",
      cfg_scale: 2,
      batch_size: 2,
      n_iter: 2,
    };
    const r = await request(`${t.url}/sdapi/v1/txt2img`, "POST", body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), ["images", "info", "parameters"]);
    assert.equal(r.body.images.length, 4);
    const png = decodeImage(Buffer.from(r.body.images[3], "base64"));
    assert.deepEqual([png.width, png.height], [32, 32]);
    assert.match(
      png.text.parameters!,
      /^7\nSteps: 2, Sampler: Euler a, CFG scale: 2, Seed: 14, Size: 32x32, Model: mnist/,
    );
    assert.deepEqual(r.body.parameters, body);
    assert.equal(typeof r.body.info, "string");
    const info = JSON.parse(r.body.info);
    assert.equal(info.seed, 11);
    assert.deepEqual(info.all_seeds, [11, 12, 13, 14]);
    assert.deepEqual(info.all_prompts, ["7", "7", "7", "7"]);
    assert.equal(info.sampler_name, "Euler a");
    assert.equal(info.cfg_scale, 2);
    assert.equal(info.steps, 2);
    assert.equal(info.batch_size, 2);
    assert.deepEqual([info.width, info.height], [32, 32]);
    assert.equal(info.sd_model_name, "mnist");
    assert.equal(info.infotexts.length, 4);
    assert.equal(info.infotexts[3], png.text.parameters);
  });

  it("seed -1 draws a random seed and reports it", async () => {
    const r = await request(`${t.url}/sdapi/v1/txt2img`, "POST", { prompt: "0", steps: 1, seed: -1 });
    const info = JSON.parse(r.body.info);
    assert.ok(Number.isInteger(info.seed) && info.seed >= 0 && info.seed < 2 ** 32);
    assert.match(info.infotexts[0], new RegExp(`Seed: ${info.seed},`));
  });

  it("maps A1111 sampler names to ours and refuses unknown ones listing A1111's", async () => {
    const run = (sampler_name: string, scheduler?: string) =>
      request(`${t.url}/sdapi/v1/txt2img`, "POST", {
        prompt: "2",
        steps: 2,
        seed: 1,
        sampler_name,
        scheduler,
      });
    for (const [name, scheduler, written] of [
      ["DPM++ 2M Karras", undefined, "Sampler: DPM++ 2M, Schedule type: Karras"],
      ["DPM++ 2M", "Karras", "Sampler: DPM++ 2M, Schedule type: Karras"],
      ["DDIM", undefined, "Sampler: DDIM,"],
      ["UniPC", "Automatic", "Sampler: UniPC,"],
    ] as const) {
      const r = await run(name, scheduler);
      assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.body)}`);
      assert.ok(JSON.parse(r.body.info).infotexts[0].includes(written), `${name} -> ${written}`);
    }
    const bad = await run("Fancy 3000");
    assert.equal(bad.status, 400);
    assert.match(
      bad.body.message,
      /unknown sampler_name "Fancy 3000"; known: DDPM, DDIM, PLMS, .*DPM\+\+ 2M Karras, .*UniPC/,
    );
  });

  it("answers A1111 clients' bad requests with 4xx JSON errors", async () => {
    const txt = (b: unknown) => request(`${t.url}/sdapi/v1/txt2img`, "POST", b);
    let r = await txt({ prompt: "a cat" });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /prompt must be a class number/);
    r = await txt({ prompt: "3", override_settings: { sd_model_checkpoint: "../../x [abc]" } });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /unknown model "\.\.\/\.\.\/x"/);
    r = await txt({ prompt: "3 <lora:../evil:1>" });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /unknown LoRA "\.\.\/evil"/);
    r = await request(`${t.url}/sdapi/v1/img2img`, "POST", { prompt: "3" });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /body must have the field "init_images"/);
  });

  it("progress, interrupt: an interrupted txt2img returns no images; progress shows the running job", async () => {
    const idle = await request(`${t.url}/sdapi/v1/progress`, "GET");
    assert.deepEqual(idle.body, {
      progress: 0,
      eta_relative: 0,
      state: {
        skipped: false,
        interrupted: false,
        job: "",
        job_count: 0,
        job_timestamp: "0",
        job_no: 0,
        sampling_step: 0,
        sampling_steps: 0,
      },
      current_image: null,
      textinfo: null,
    });
    const pending = request(`${t.url}/sdapi/v1/txt2img`, "POST", { prompt: "4", steps: 150 });
    let p = (await request(`${t.url}/sdapi/v1/progress`, "GET")).body;
    for (let i = 0; i < 200 && p.state.sampling_step < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      p = (await request(`${t.url}/sdapi/v1/progress`, "GET")).body;
    }
    assert.ok(p.state.sampling_step >= 2, "the job is sampling");
    assert.equal(p.state.sampling_steps, 150);
    assert.equal(p.state.job_count, 1);
    assert.ok(p.progress > 0 && p.progress < 1);
    assert.ok(p.eta_relative > 0);
    assert.deepEqual((await request(`${t.url}/sdapi/v1/interrupt`, "POST")).body, {});
    const r = await pending;
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.images, []);
    assert.equal(JSON.parse(r.body.info).interrupted, true);
  });

  it("lists samplers, models and LoRAs in A1111's shapes; options switch the default checkpoint", async () => {
    const samplers = (await request(`${t.url}/sdapi/v1/samplers`, "GET")).body;
    assert.deepEqual(
      samplers.find((s: { name: string }) => s.name === "DPM++ 2M Karras"),
      {
        name: "DPM++ 2M Karras",
        aliases: ["dpmpp-2m-karras", "dpmpp_2m + karras"],
        options: { scheduler: "karras" },
      },
    );
    assert.deepEqual(samplers.find((s: { name: string }) => s.name === "Euler a").aliases, [
      "euler-a",
      "euler_ancestral",
    ]);
    const models = (await request(`${t.url}/sdapi/v1/sd-models`, "GET")).body;
    assert.deepEqual(models, [
      { title: "mnist", model_name: "mnist", hash: null, sha256: null, filename: "mnist", config: null },
      { title: "emoji", model_name: "emoji", hash: null, sha256: null, filename: "emoji", config: null },
    ]);
    assert.deepEqual((await request(`${t.url}/sdapi/v1/loras`, "GET")).body, []);
    assert.equal((await request(`${t.url}/sdapi/v1/options`, "GET")).body.sd_model_checkpoint, "mnist");
    assert.equal(
      (await request(`${t.url}/sdapi/v1/options`, "POST", { sd_model_checkpoint: "mnist [0123abcd]" }))
        .status,
      200,
    );
    const bad = await request(`${t.url}/sdapi/v1/options`, "POST", { sd_model_checkpoint: "sd15" });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /unknown model "sd15"; this server has: mnist/);
  });
});
