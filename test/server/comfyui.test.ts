// The ComfyUI-compatible endpoints: API-format workflows in POST /prompt run through the same queue as the other
// APIs, the /ws messages in ComfyUI's order, /history, /view (only this server's images), /queue, /interrupt,
// /object_info, /upload/image, the API key on HTTP and WebSocket, and a published ComfyUI client driving it. The
// shipped MNIST model for most; the tiny fixture SD pipeline for img2img, LoRAs and the same images as A1111's API.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "@stable-canvas/comfyui-client";
import WebSocket from "ws";
import { decodeImage, encodePng } from "../../src/io/image.js";
import { ModelCatalog } from "../../src/server/models.js";
import { fixturesDir, skipWithoutFixtures } from "../helpers.js";
import { SD15_SCHEDULER, testImage } from "../pipelines/tiny-pipeline.js";
import { assembleTinySd, mnistCatalog, request, startServer, type TestServer } from "./helpers.js";

// biome-ignore lint/suspicious/noExplicitAny: workflows and messages are free-form JSON, changed and checked by field
type Json = any;

/** The core text-to-image graph, as ComfyUI's "Save (API)" writes it. */
function txt2img(o: Record<string, unknown> = {}): Json {
  return {
    "3": {
      class_type: "KSampler",
      inputs: {
        seed: o.seed ?? 5,
        steps: o.steps ?? 3,
        cfg: o.cfg ?? 2,
        sampler_name: o.sampler ?? "euler",
        scheduler: o.scheduler ?? "normal",
        denoise: 1,
        model: ["4", 0],
        positive: ["6", 0],
        negative: ["7", 0],
        latent_image: ["5", 0],
      },
    },
    "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: o.ckpt ?? "mnist" } },
    "5": {
      class_type: "EmptyLatentImage",
      inputs: { width: o.width ?? 32, height: o.height ?? 32, batch_size: o.batch ?? 1 },
    },
    "6": {
      class_type: "CLIPTextEncode",
      inputs: { text: o.text ?? "7", clip: ["4", 1] },
      _meta: { title: "+" },
    },
    "7": { class_type: "CLIPTextEncode", inputs: { text: o.negative ?? "", clip: ["4", 1] } },
    "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    "9": { class_type: "SaveImage", inputs: { filename_prefix: o.prefix ?? "ComfyUI", images: ["8", 0] } },
  };
}

/** The text-to-image graph turned into img2img: LoadImage -> VAEEncode -> KSampler (denoise = strength). */
function img2img(image: string, denoise: number, o: Record<string, unknown> = {}): Json {
  const wf = txt2img(o);
  delete wf["5"];
  wf["10"] = { class_type: "LoadImage", inputs: { image } };
  wf["11"] = { class_type: "VAEEncode", inputs: { pixels: ["10", 0], vae: ["4", 2] } };
  wf["3"].inputs.latent_image = ["11", 0];
  wf["3"].inputs.denoise = denoise;
  return wf;
}

interface WsMessage {
  type: string;
  data: Json;
}

/** A /ws connection that keeps every message; `waitFor` resolves at the first one (from `from`) that matches. */
class SocketLog {
  messages: WsMessage[] = [];
  #listeners = new Set<() => void>();

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (raw) => {
      this.messages.push(JSON.parse(String(raw)));
      for (const l of [...this.#listeners]) l();
    });
  }

  static open(url: string, clientId: string, headers: Record<string, string> = {}): Promise<SocketLog> {
    const socket = new WebSocket(`${url.replace(/^http/, "ws")}/ws?clientId=${clientId}`, { headers });
    const log = new SocketLog(socket);
    return new Promise((resolve, reject) => {
      socket.once("error", reject);
      // the first message is `status` with our sid: after it, the socket surely gets the prompts' messages
      log.waitFor((m) => m.type === "status").then(() => resolve(log), reject);
    });
  }

  waitFor(match: (m: WsMessage) => boolean, from = 0, timeoutMs = 30_000): Promise<WsMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.slice(from).find(match);
        if (!found) return;
        this.#listeners.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        reject(new Error(`no such message in ${JSON.stringify(this.messages.map((m) => m.type))}`));
      }, timeoutMs);
      timer.unref(); // a socket that failed to open leaves no timer behind
      this.#listeners.add(check);
      check();
    });
  }

  /** The messages of one prompt once it has finished (`executing` with node null). */
  async run(promptId: string): Promise<WsMessage[]> {
    await this.waitFor(
      (m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === promptId,
    );
    return this.messages.filter((m) => m.data.prompt_id === promptId);
  }

  close(): void {
    this.socket.close();
  }
}

const post = (t: TestServer, body: unknown, headers: Record<string, string> = {}) =>
  request(`${t.url}/prompt`, "POST", body, headers);

describe("diffuse serve: ComfyUI endpoints with the shipped MNIST model", () => {
  let t: TestServer;
  let ws: SocketLog;
  before(async () => {
    // room for a job long enough to be interrupted on any machine
    t = await startServer({ catalog: await mnistCatalog(), limits: { maxSteps: 1000 } });
    ws = await SocketLog.open(t.url, "tester");
  });
  after(async () => {
    ws.close();
    await t.close();
  });

  it("text to image: POST /prompt, the /ws messages in order, /history, /view's PNG", async () => {
    const status = ws.messages[0]!;
    assert.deepEqual(status, {
      type: "status",
      data: { status: { exec_info: { queue_remaining: 0 } }, sid: "tester" },
    });
    const workflow = txt2img({ batch: 2, prefix: "digits/seven", sampler: "dpmpp_2m", scheduler: "karras" });
    const r = await post(t, { prompt: workflow, client_id: "tester", extra_data: { extra_pnginfo: {} } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), ["node_errors", "number", "prompt_id"]);
    assert.deepEqual(r.body.node_errors, {});
    const id = r.body.prompt_id;
    const messages = await ws.run(id);
    const trace = messages.map((m) =>
      m.type === "executing" || m.type === "executed" ? `${m.type}:${m.data.node}` : m.type,
    );
    assert.deepEqual(trace, [
      "execution_start",
      "execution_cached",
      "executing:3",
      ...Array(6).fill("progress"), // the class model draws the 2 images one after the other, 3 steps each
      "executing:8",
      "executing:9",
      "executed:9",
      "execution_success",
      "executing:null",
    ]);
    const progress = messages.filter((m) => m.type === "progress").map((m) => m.data);
    assert.deepEqual(progress.at(-1), { value: 6, max: 6, prompt_id: id, node: "3" }); // 2 images x 3 steps
    const executed = messages.find((m) => m.type === "executed")!.data;
    assert.equal(executed.output.images.length, 2);
    const [first] = executed.output.images;
    assert.match(first.filename, /^seven_\d{5}_\.png$/);
    assert.deepEqual([first.subfolder, first.type], ["digits", "output"]);
    // status broadcasts follow the queue: 1 while the job waits / runs, 0 after
    assert.ok(ws.messages.some((m) => m.type === "status" && m.data.status.exec_info.queue_remaining === 1));

    const history = (await request(`${t.url}/history/${id}`, "GET")).body;
    const entry = history[id];
    assert.deepEqual(entry.outputs, { "9": { images: executed.output.images } });
    assert.deepEqual(entry.status.status_str, "success");
    assert.equal(entry.status.completed, true);
    assert.deepEqual(
      entry.status.messages.map((m: [string, unknown]) => m[0]),
      ["execution_start", "execution_cached", "execution_success"],
    );
    assert.deepEqual(entry.prompt.slice(0, 3), [r.body.number, id, workflow]);
    assert.equal(entry.prompt[3].client_id, "tester");
    assert.deepEqual(entry.prompt[4], ["9"]);
    assert.ok(id in (await request(`${t.url}/history?max_items=5`, "GET")).body);

    const view = await fetch(`${t.url}/view?filename=${first.filename}&subfolder=digits&type=output`);
    assert.equal(view.status, 200);
    assert.equal(view.headers.get("content-type"), "image/png");
    const png = decodeImage(new Uint8Array(await view.arrayBuffer()));
    assert.deepEqual([png.width, png.height], [32, 32]);
    assert.match(
      png.text.parameters!,
      /^7\nSteps: 3, Sampler: DPM\+\+ 2M, Schedule type: Karras, CFG scale: 2, Seed: 5,/,
    );
    assert.equal((await request(`${t.url}/prompt`, "GET")).body.exec_info.queue_remaining, 0);
  });

  it("refuses a node class it does not have, naming the node id and class_type", async () => {
    const workflow = txt2img();
    workflow["12"] = {
      class_type: "UpscaleModelLoader",
      inputs: { model_name: "4x.pth" },
      _meta: { title: "Up" },
    };
    const r = await post(t, { prompt: workflow });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.type, "missing_node_type");
    assert.match(
      r.body.error.message,
      /does not have the node class of #12 \(UpscaleModelLoader\); it has CheckpointLoaderSimple/,
    );
    assert.equal(r.body.error.details, "Node ID '#12'");
    assert.deepEqual(r.body.error.extra_info, {
      node_id: "12",
      class_type: "UpscaleModelLoader",
      node_title: "Up",
    });
    assert.deepEqual(Object.keys(r.body.node_errors), ["12"]);
    assert.equal(r.body.node_errors["12"].class_type, "UpscaleModelLoader");
  });

  it("checks inputs: what was expected, what was found, per node", async () => {
    const refused = async (change: (wf: Json) => void, node: string, pattern: RegExp, type?: string) => {
      const workflow = txt2img();
      change(workflow);
      const r = await post(t, { prompt: workflow });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      const errors = r.body.node_errors[node]?.errors ?? [];
      assert.ok(
        errors.some((e: Json) => pattern.test(e.message)),
        `${pattern}: ${JSON.stringify(r.body)}`,
      );
      if (type)
        assert.ok(
          errors.some((e: Json) => e.type === type),
          JSON.stringify(errors),
        );
      assert.equal(r.body.error.type, "prompt_outputs_failed_validation");
      assert.match(r.body.message, pattern);
    };
    await refused(
      (w) => (w["3"].inputs.steps = "many"),
      "3",
      /steps must be an integer, found "many"/,
      "invalid_input_type",
    );
    await refused(
      (w) => (w["3"].inputs.steps = 5000),
      "3",
      /steps must be at most 1000 on this server, found 5000/,
      "value_bigger_than_max",
    );
    await refused(
      (w) => (w["3"].inputs.cfg = -1),
      "3",
      /cfg must be at least 0, found -1/,
      "value_smaller_than_min",
    );
    await refused(
      (w) => delete w["3"].inputs.seed,
      "3",
      /seed is missing \(expected an integer 0\.\./,
      "required_input_missing",
    );
    await refused(
      (w) => (w["3"].inputs.sampler_name = "dpm_fast"),
      "3",
      /sampler_name "dpm_fast" is not known: expected one of euler, euler_ancestral/,
      "value_not_in_list",
    );
    await refused(
      (w) => (w["3"].inputs.scheduler = "karras"),
      "3",
      /sampler_name "euler" with scheduler "karras" has no equivalent on this server: .*"karras" goes with dpmpp_2m, dpmpp_2m_sde/,
    );
    await refused(
      (w) => (w["3"].inputs.scheduler = "exponential"),
      "3",
      /scheduler "exponential" is not known: expected one of normal, simple, sgm_uniform, ddim_uniform, karras/,
    );
    await refused(
      (w) => (w["4"].inputs.ckpt_name = "../../secret.safetensors"),
      "4",
      /ckpt_name "\.\.\/\.\.\/secret\.safetensors" is not known: expected one of mnist/,
    );
    await refused(
      (w) => (w["3"].inputs.positive = ["4", 1]),
      "3",
      /positive expects a CONDITIONING output, found a link to output 1 of node #4 \(CheckpointLoaderSimple\), which has outputs 0: MODEL, 1: CLIP, 2: VAE/,
      "return_type_mismatch",
    );
    await refused(
      (w) => (w["3"].inputs.model = ["99", 0]),
      "3",
      /model links to node #99, which is not in the workflow/,
    );
    await refused(
      (w) => (w["3"].inputs.model = "mnist"),
      "3",
      /model must be a link \["<node id>", <output index>\] to a MODEL output, found "mnist"/,
      "bad_linked_input",
    );
    await refused((w) => (w["5"].inputs.width = 30), "5", /width must be a multiple of 8, found 30/);
    await refused(
      (w) => (w["9"].inputs.filename_prefix = "../../etc/x"),
      "9",
      /filename_prefix must be a name of letters/,
    );
    await refused((w) => (w["3"].inputs.denoise = 0.5), "3", /denoise 0.5 needs an image to start from/);
    await refused(
      (w) => {
        w["10"] = { class_type: "LoadImage", inputs: { image: "x.png" } };
        w["9"].inputs.images = ["10", 0];
      },
      "9",
      /images must come from a VAEDecode \(the generated images\), found node #10 \(LoadImage\)/,
      "unsupported_graph",
    );
    const noOutput = txt2img();
    delete noOutput["9"];
    let r = await post(t, { prompt: noOutput });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.type, "prompt_no_outputs");
    r = await post(t, { client_id: "x" });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.type, "no_prompt");
    assert.match(r.body.error.message, /must have required property 'prompt'/);
    r = await post(t, { prompt: { "1": { inputs: {} } } });
    assert.equal(r.status, 400);
    assert.match(
      r.body.error.message,
      /node #1 must be \{ "class_type": "<node class>", "inputs": \{ \.\.\. \} \}, found \{"inputs":\{\}\}/,
    );
    // what the engine checks for the model: a class-conditional model's size and prompt, no init image
    r = await post(t, { prompt: txt2img({ width: 64 }) });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /model "mnist" makes 32x32 images; .* got 64x32/);
    r = await post(t, { prompt: txt2img({ text: "a cat" }) });
    assert.match(r.body.error.message, /prompt must be a class number 0\.\.9, got "a cat"/);
    r = await post(t, { prompt: img2img(encodePng(testImage(32, 32)).toString("base64"), 0.5) });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /model "mnist" does text-to-image only/);
  });

  it("/view serves only this server's images: traversal and absolute paths are 400, other names 404", async () => {
    const view = (query: string) => request(`${t.url}/view?${query}`, "GET");
    for (const query of [
      "filename=../../../etc/passwd",
      "filename=%2Fetc%2Fpasswd",
      "filename=x.png&subfolder=..",
      "filename=x.png&subfolder=../..",
      "filename=x.png&subfolder=%2Fetc",
      "filename=x.png&subfolder=a%5C..%5C..",
      "filename=..",
      "filename=x.png&type=secret",
      "subfolder=a",
    ]) {
      const r = await view(query);
      assert.equal(r.status, 400, `${query}: ${JSON.stringify(r.body)}`);
    }
    const r = await view("filename=ComfyUI_99999_.png");
    assert.equal(r.status, 404);
    assert.match(
      r.body.message,
      /no output image "ComfyUI_99999_.png": \/view serves the images this server made/,
    );
  });

  it("/object_info describes exactly the supported nodes in ComfyUI's input spec shape", async () => {
    const info = (await request(`${t.url}/object_info`, "GET")).body;
    assert.deepEqual(Object.keys(info).sort(), [
      "CLIPTextEncode",
      "CheckpointLoaderSimple",
      "EmptyLatentImage",
      "KSampler",
      "LoadImage",
      "LoraLoader",
      "PreviewImage",
      "SaveImage",
      "VAEDecode",
      "VAEEncode",
    ]);
    const ks = info.KSampler;
    assert.deepEqual(ks.input.required.model, ["MODEL"]);
    assert.deepEqual(ks.input.required.steps, ["INT", { default: 20, min: 1, max: 1000 }]);
    assert.deepEqual(ks.input.required.seed[0], "INT");
    assert.equal(ks.input.required.cfg[0], "FLOAT");
    assert.ok(ks.input.required.sampler_name[0].includes("dpmpp_2m_sde"));
    assert.deepEqual(ks.input.required.scheduler, [
      ["normal", "simple", "sgm_uniform", "ddim_uniform", "karras"],
    ]);
    assert.deepEqual(ks.output, ["LATENT"]);
    assert.equal(ks.output_node, false);
    assert.deepEqual(ks.input_order.required.slice(0, 3), ["model", "seed", "steps"]);
    assert.deepEqual(info.CheckpointLoaderSimple.input.required.ckpt_name, [["mnist", "emoji"]]);
    assert.deepEqual(info.CheckpointLoaderSimple.output, ["MODEL", "CLIP", "VAE"]);
    assert.deepEqual(info.LoraLoader.input.required.lora_name, [[]]);
    assert.deepEqual(info.EmptyLatentImage.input.required.width, [
      "INT",
      { default: 512, min: 8, max: 2048, step: 8 },
    ]);
    assert.equal(info.SaveImage.output_node, true);
    assert.deepEqual(info.LoadImage.input.required.image[1], { image_upload: true });
    const one = (await request(`${t.url}/object_info/KSampler`, "GET")).body;
    assert.deepEqual(one, { KSampler: ks });
    assert.deepEqual((await request(`${t.url}/object_info/UpscaleModelLoader`, "GET")).body, {});
    const { paths } = (await request(`${t.url}/openapi.json`, "GET")).body;
    for (const path of [
      "/prompt",
      "/ws",
      "/history/{prompt_id}",
      "/object_info/{node_class}",
      "/view",
      "/upload/image",
    ]) {
      assert.ok(paths[path], `${path} in /openapi.json`);
    }
    const stats = (await request(`${t.url}/system_stats`, "GET")).body;
    assert.deepEqual(stats.system.argv, []);
    assert.equal(stats.devices[0].name, "cpu");
  });

  it("/queue, /interrupt and POST /queue: the running prompt stops between steps, a waiting one is dropped", async () => {
    const long = await post(t, { prompt: txt2img({ steps: 1000 }), client_id: "tester" });
    const waiting = await post(t, { prompt: txt2img({ steps: 1 }), client_id: "tester" });
    const from = ws.messages.length;
    await ws.waitFor((m) => m.type === "progress" && m.data.prompt_id === long.body.prompt_id, from);
    const queue = (await request(`${t.url}/queue`, "GET")).body;
    assert.deepEqual(
      queue.queue_running.map((q: Json[]) => q[1]),
      [long.body.prompt_id],
    );
    assert.deepEqual(
      queue.queue_pending.map((q: Json[]) => q[1]),
      [waiting.body.prompt_id],
    );
    assert.equal((await request(`${t.url}/queue`, "POST", { delete: [waiting.body.prompt_id] })).status, 200);
    // as ComfyUI clients send it: a JSON content type, no body
    const interrupt = await fetch(`${t.url}/interrupt`, {
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    assert.equal(interrupt.status, 200);
    const messages = await ws.run(long.body.prompt_id);
    assert.deepEqual(
      messages.slice(-2).map((m) => m.type),
      ["execution_interrupted", "executing"],
    );
    assert.equal(messages.at(-2)!.data.node_id, "3");
    const history = (await request(`${t.url}/history/${long.body.prompt_id}`, "GET")).body[
      long.body.prompt_id
    ];
    assert.equal(history.status.status_str, "error");
    assert.equal(history.status.completed, false);
    assert.equal(history.status.messages.at(-1)[0], "execution_interrupted");
    assert.deepEqual((await request(`${t.url}/history/${waiting.body.prompt_id}`, "GET")).body, {});
    assert.deepEqual((await request(`${t.url}/queue`, "GET")).body, { queue_running: [], queue_pending: [] });
  });

  it("a published ComfyUI client (@stable-canvas/comfyui-client) runs a workflow end to end", async () => {
    const client = new Client({ api_host: new URL(t.url).host, clientId: "sdk", WebSocket, fetch });
    try {
      await client.connect();
      assert.deepEqual(await client.getSDModels(), ["mnist", "emoji"]);
      assert.ok((await client.getSamplers()).includes("euler_ancestral"));
      // (enqueue's own progress option listens only once POST /prompt has answered: a fast job is done by then)
      const steps: number[] = [];
      client.on("progress", (p) => steps.push(p.value));
      const result = await client.enqueue(txt2img({ text: "3", sampler: "euler_ancestral" }), {
        disable_random_seed: true,
      });
      assert.deepEqual(steps, [1, 2, 3]);
      assert.equal(result.images.length, 1);
      const { type, data } = result.images[0]!;
      assert.equal(type, "url");
      const png = decodeImage(new Uint8Array(await (await fetch(data as string)).arrayBuffer()));
      assert.match(png.text.parameters!, /^3\nSteps: 3, Sampler: Euler a,/);
      const outputs = await client.getPromptOutputs(result.prompt_id);
      assert.equal(outputs["9"].images.length, 1);
      const { History } = await client.getHistory();
      assert.ok(History.some((h) => h.prompt[1] === result.prompt_id && h.status?.status_str === "success"));
    } finally {
      client.close();
    }
  });
});

describe("diffuse serve: ComfyUI endpoints behind an API key", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ catalog: await mnistCatalog(), apiKey: "s3cret" });
  });
  after(() => t.close());

  it("refuses HTTP routes and the WebSocket without the key", async () => {
    for (const [method, path] of [
      ["POST", "/prompt"],
      ["GET", "/object_info"],
      ["GET", "/history"],
      ["GET", "/queue"],
      ["POST", "/interrupt"],
      ["GET", "/view?filename=x.png"],
      ["POST", "/upload/image"],
      ["GET", "/system_stats"],
    ] as const) {
      const r = await request(
        `${t.url}${path}`,
        method,
        method === "POST" ? { prompt: txt2img() } : undefined,
      );
      assert.equal(r.status, 401, `${method} ${path}`);
    }
    await assert.rejects(SocketLog.open(t.url, "x"), /Unexpected server response: 401/);
    await assert.rejects(SocketLog.open(t.url, "x", { authorization: "Bearer nope" }), /401/);
    const ws = await SocketLog.open(t.url, "x", { authorization: "Bearer s3cret" });
    const r = await post(t, { prompt: txt2img({ steps: 1 }), client_id: "x" }, { "x-api-key": "s3cret" });
    assert.equal(r.status, 200);
    const messages = await ws.run(r.body.prompt_id);
    assert.ok(messages.some((m) => m.type === "executed"));
    ws.close();
  });
});

describe("diffuse serve: ComfyUI workflows on the tiny fixture SD pipeline", {
  skip: skipWithoutFixtures(),
}, () => {
  let tmp: string;
  let t: TestServer;
  let ws: SocketLog;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "diffuse-comfyui-"));
    assembleTinySd(join(tmp, "tiny-sd"), fixturesDir()!, SD15_SCHEDULER);
    mkdirSync(join(tmp, "loras"));
    symlinkSync(
      join(fixturesDir()!, "lora", "lora_peft.safetensors"),
      join(tmp, "loras", "lora_peft.safetensors"),
    );
    const catalog = await ModelCatalog.create({
      models: [join(tmp, "tiny-sd")],
      lorasDir: join(tmp, "loras"),
    });
    t = await startServer({ catalog, limits: { maxSteps: 2000 } });
    ws = await SocketLog.open(t.url, "sd");
  });
  after(async () => {
    ws.close();
    await t.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const sd = (o: Record<string, unknown> = {}) =>
    txt2img({
      ckpt: "tiny-sd.safetensors",
      text: "a cat",
      negative: "blurry",
      width: 16,
      height: 16,
      steps: 2,
      ...o,
    });
  const withLora = (wf: Json, strengthClip = 0.5) => {
    wf["10"] = {
      class_type: "LoraLoader",
      inputs: {
        model: ["4", 0],
        clip: ["4", 1],
        lora_name: "lora_peft.safetensors",
        strength_model: 0.5,
        strength_clip: strengthClip,
      },
    };
    wf["3"].inputs.model = ["10", 0];
    wf["6"].inputs.clip = ["10", 1];
    wf["7"].inputs.clip = ["10", 1];
    return wf;
  };
  const images = async (promptId: string) => {
    await ws.run(promptId);
    const entry = (await request(`${t.url}/history/${promptId}`, "GET")).body[promptId];
    assert.equal(entry.status.status_str, "success", JSON.stringify(entry.status));
    return Promise.all(
      entry.outputs["9"].images.map(async (im: Json) => {
        const res = await fetch(`${t.url}/view?${new URLSearchParams(im)}`);
        return { ref: im, png: decodeImage(new Uint8Array(await res.arrayBuffer())) };
      }),
    );
  };

  it("gives the same images as the A1111 endpoint for the same settings, with a LoRA", async () => {
    const r = await post(t, {
      prompt: withLora(sd({ sampler: "dpmpp_2m", scheduler: "karras", batch: 2, seed: 3 }), 0.5),
      client_id: "sd",
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const got = await images(r.body.prompt_id);
    assert.match(got[0]!.png.text.parameters!, /Lora scales: "lora_peft: 0.5"/);
    const a1111 = await request(`${t.url}/sdapi/v1/txt2img`, "POST", {
      prompt: "a cat <lora:lora_peft:0.5>",
      negative_prompt: "blurry",
      steps: 2,
      seed: 3,
      sampler_name: "DPM++ 2M Karras",
      cfg_scale: 2,
      width: 16,
      height: 16,
      batch_size: 2,
    });
    for (let i = 0; i < 2; i++) {
      const want = decodeImage(Buffer.from(a1111.body.images[i], "base64"));
      assert.deepEqual(got[i]!.png.data, want.data, `image ${i}`);
    }
  });

  it("what the pipeline refuses once the job runs comes back as execution_error, and /history says so", async () => {
    // (more steps than the model's 1000 training timesteps: the scheduler refuses them when the job starts)
    const r = await post(t, { prompt: sd({ steps: 1500 }), client_id: "sd" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const messages = await ws.run(r.body.prompt_id);
    assert.deepEqual(
      messages.map((m) => m.type),
      ["execution_start", "execution_cached", "executing", "execution_error", "executing"],
    );
    const error = messages[3]!.data;
    assert.deepEqual(
      [error.node_id, error.node_type, error.exception_type],
      ["3", "KSampler", "diffuse.RequestError"],
    );
    assert.match(error.exception_message, /1500/);
    const entry = (await request(`${t.url}/history/${r.body.prompt_id}`, "GET")).body[r.body.prompt_id];
    assert.deepEqual([entry.status.status_str, entry.status.completed, entry.outputs], ["error", false, {}]);
  });

  it("refuses a LoRA whose strength_clip differs from strength_model, or that only the model passes through", async () => {
    let r = await post(t, { prompt: withLora(sd(), 1) });
    assert.equal(r.status, 400);
    assert.match(
      r.body.node_errors["10"].errors[0].message,
      /strength_clip 1 differs from strength_model 0.5: this server applies one strength to the model and CLIP/,
    );
    const modelOnly = withLora(sd());
    modelOnly["7"].inputs.clip = ["4", 1];
    r = await post(t, { prompt: modelOnly });
    assert.equal(r.status, 400);
    assert.match(
      r.body.message,
      /node #10 \(LoraLoader\): this LoRA changes the KSampler's model and the positive prompt's CLIP but not the negative prompt's CLIP/,
    );
  });

  it("img2img: an uploaded image through LoadImage + VAEEncode, denoise as the strength; base64 and made images too", async () => {
    const form = new FormData();
    form.append("image", new Blob([encodePng(testImage(16, 16, 1))], { type: "image/png" }), "photo.png");
    form.append("subfolder", "mine");
    const upload = await fetch(`${t.url}/upload/image`, { method: "POST", body: form });
    assert.equal(upload.status, 200);
    const uploaded = await upload.json();
    assert.deepEqual(uploaded, { name: "photo.png", subfolder: "mine", type: "input" });
    const listed = (await request(`${t.url}/object_info/LoadImage`, "GET")).body.LoadImage.input.required
      .image[0];
    assert.ok(listed.includes("mine/photo.png"));

    let r = await post(t, {
      prompt: img2img("mine/photo.png", 0.5, { ckpt: "tiny-sd", text: "a red car", steps: 4 }),
      client_id: "sd",
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const [made] = await images(r.body.prompt_id);
    assert.deepEqual([made!.png.width, made!.png.height], [16, 16]);
    assert.match(made!.png.text.parameters!, /Denoising strength: 0.5/);

    const base64 = `data:image/png;base64,${encodePng(testImage(16, 16, 2)).toString("base64")}`;
    r = await post(t, { prompt: img2img(base64, 0.75, { ckpt: "tiny-sd", steps: 4 }), client_id: "sd" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const history = (await images(r.body.prompt_id))[0]!;
    assert.match(history.png.text.parameters!, /Denoising strength: 0.75/);
    const stored = (await request(`${t.url}/history/${r.body.prompt_id}`, "GET")).body[r.body.prompt_id];
    assert.match(stored.prompt[2]["10"].inputs.image, /^<base64 image, \d+ characters>$/);

    const again = `${made!.ref.subfolder ? `${made!.ref.subfolder}/` : ""}${made!.ref.filename} [output]`;
    r = await post(t, { prompt: img2img(again, 0.3, { ckpt: "tiny-sd", steps: 4 }), client_id: "sd" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await images(r.body.prompt_id);

    r = await post(t, { prompt: img2img("nothing.png", 0.5, { ckpt: "tiny-sd" }) });
    assert.equal(r.status, 400);
    assert.match(
      r.body.node_errors["10"].errors[0].message,
      /image "nothing.png" is not an image sent to \/upload\/image/,
    );
    const bad = new FormData();
    bad.append("image", new Blob([Buffer.from("not an image")]), "x.png");
    const refused = await fetch(`${t.url}/upload/image`, { method: "POST", body: bad });
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as Json).message, /image must be a PNG or JPEG file/);
  });
});
