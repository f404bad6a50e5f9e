// The server's own API (/api/v1) on loopback with the shipped class-conditional MNIST model: submit, follow by
// Server-Sent Events, fetch the PNG with its parameters chunk, cancel, 429 when full, the job timeout, and bad
// requests (each a 4xx JSON error whose message says what was expected and found).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeImage, encodePng } from "../../src/io/image.js";
import { parseParameters } from "../../src/pipelines/params.js";
import type { ModelCatalog } from "../../src/server/models.js";
import { pngHeaderOnly } from "../helpers.js";
import {
  behindBlocker,
  mnistCatalog,
  openEvents,
  readEvents,
  request,
  startServer,
  type TestServer,
} from "./helpers.js";

function assertError(
  r: { status: number; body: { error?: string; message?: string } },
  status: number,
  re: RegExp,
) {
  assert.equal(r.status, status, `status (body: ${JSON.stringify(r.body)})`);
  assert.equal(typeof r.body.error, "string");
  assert.match(r.body.message!, re);
}

describe("diffuse serve: /api/v1 with the shipped MNIST model", () => {
  let catalog: ModelCatalog;
  let t: TestServer;
  before(async () => {
    catalog = await mnistCatalog();
    t = await startServer({ catalog });
  });
  after(() => t.close());

  it("lists the shipped model, the samplers and no LoRAs", async () => {
    const models = await request(`${t.url}/api/v1/models`, "GET");
    assert.deepEqual(models.body, [
      { name: "mnist", kind: "class-conditional", default: true, classes: 10, width: 32, height: 32 },
      { name: "emoji", kind: "stable-diffusion", default: false },
    ]);
    const samplers = await request(`${t.url}/api/v1/samplers`, "GET");
    assert.ok(
      samplers.body.some(
        (s: { name: string; a1111: string }) => s.name === "dpmpp-2m-karras" && s.a1111 === "DPM++ 2M Karras",
      ),
    );
    assert.deepEqual((await request(`${t.url}/api/v1/loras`, "GET")).body, []);
  });

  it("runs a job: 202 + id, SSE queued/started/progress/done, job status, the PNG with its parameters", async () => {
    const { submitted, stream } = await behindBlocker(t.url, async () => {
      const submitted = await request(`${t.url}/api/v1/generate`, "POST", {
        prompt: "3",
        steps: 3,
        seed: 7,
        sampler: "euler",
        num_images: 2,
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      assert.equal(submitted.body.status, "queued");
      assert.equal(submitted.body.position, 1, "behind the running blocker");
      const { stream: opened, first } = openEvents(`${t.url}/api/v1/jobs/${submitted.body.id}/events`);
      await first; // the stream is open (its "queued" event came) before the blocker is cancelled
      return { submitted, stream: opened };
    });
    const id: string = submitted.body.id;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(submitted.headers.get("location"), `/api/v1/jobs/${id}`);
    const { contentType, events } = await stream;
    assert.match(contentType!, /^text\/event-stream/);
    const types = events.map((e) => e.event);
    assert.deepEqual(types.slice(0, 2), ["queued", "started"]);
    assert.equal(types.at(-1), "done");
    const progress = events.filter((e) => e.event === "progress").map((e) => e.data);
    assert.ok(progress.length >= 1);
    const last = progress.at(-1);
    assert.deepEqual([last.step, last.total], [6, 6], "2 images x 3 steps");
    assert.equal(typeof last.etaSeconds, "number");
    const job = await request(`${t.url}/api/v1/jobs/${id}`, "GET");
    assert.equal(job.body.status, "done");
    assert.equal(job.body.result.model, "mnist");
    assert.deepEqual(
      job.body.result.images.map((im: { url: string; seed: number }) => [im.url, im.seed]),
      [
        [`/api/v1/jobs/${id}/images/0.png`, 7],
        [`/api/v1/jobs/${id}/images/1.png`, 8],
      ],
    );
    const res = await fetch(`${t.url}${job.body.result.images[1].url}`);
    assert.equal(res.headers.get("content-type"), "image/png");
    const png = decodeImage(new Uint8Array(await res.arrayBuffer()));
    assert.deepEqual([png.width, png.height], [32, 32]);
    const settings = parseParameters(png.text.parameters!);
    assert.equal(settings.prompt, "3");
    assert.equal(settings.seed, 8);
    assert.equal(settings.steps, 3);
    assert.equal(settings.sampler, "euler");
    assert.equal(settings.modelName, "mnist");
    assert.equal(png.text.parameters, job.body.result.images[1].parameters);
    assertError(await request(`${t.url}/api/v1/jobs/${id}/images/2.png`, "GET"), 404, /images 0\.\.1, not 2/);
  });

  it("cancels a running job between steps (SSE ends with cancelled)", async () => {
    const { body } = await request(`${t.url}/api/v1/generate`, "POST", { prompt: "1", steps: 150 });
    let asked = false;
    const seen = readEvents(`${t.url}/api/v1/jobs/${body.id}/events`, (e) => {
      if (e.event === "progress" && e.data.step >= 2 && !asked) {
        asked = true;
        void request(`${t.url}/api/v1/jobs/${body.id}/cancel`, "POST");
      }
    });
    const { events } = await seen;
    assert.equal(events.at(-1)!.event, "cancelled");
    const job = await request(`${t.url}/api/v1/jobs/${body.id}`, "GET");
    assert.equal(job.body.status, "cancelled");
    assert.ok(job.body.progress.step < 150);
    assertError(
      await request(`${t.url}/api/v1/jobs/${body.id}/cancel`, "POST"),
      409,
      /already finished \(cancelled\)/,
    );
  });

  it("answers bad requests with a 4xx JSON error saying what was expected and found", async () => {
    const post = (body: unknown) => request(`${t.url}/api/v1/generate`, "POST", body);
    assertError(
      await post({ prompt: "a cat" }),
      400,
      /class-conditional: the prompt must be a class number 0\.\.9, got "a cat"/,
    );
    assertError(await post({ prompt: "12" }), 400, /class number 0\.\.9, got "12"/);
    assertError(
      await post({ prompt: "3", sampler: "bogus" }),
      400,
      /unknown sampler "bogus"; known: ddpm, ddim/,
    );
    assertError(
      await post({ prompt: "3", steps: 1000 }),
      400,
      /steps must be at most 150 on this server, got 1000/,
    );
    assertError(
      await post({ prompt: "3", steps: "many" }),
      400,
      /body\.steps must be integer \(found "many"\)/,
    );
    assertError(await post({ prompt: "3", stepz: 3 }), 400, /body has an unknown field "stepz"/);
    assertError(await post({ steps: 3 }), 400, /body must have the field "prompt"/);
    assertError(await post({ prompt: "3", width: 512 }), 400, /makes 32x32 images/);
    assertError(await post({ prompt: "3", num_images: 9 }), 400, /batch size must be at most 8/);
    assertError(
      await post({ prompt: "3", model: "../x" }),
      400,
      /unknown model "\.\.\/x"; this server has: mnist/,
    );
    assertError(await post({ prompt: "3", model: "/etc/passwd" }), 400, /unknown model "\/etc\/passwd"/);
    assertError(
      await post({ prompt: "3", loras: [{ name: "../x" }] }),
      400,
      /unknown LoRA "\.\.\/x"; this server has none/,
    );
    assertError(
      await post({ prompt: "3", init_image: "not base64!" }),
      400,
      /init_image must be a base64 PNG or JPEG/,
    );
    const bomb = pngHeaderOnly(20000, 20000).toString("base64");
    assertError(
      await post({ prompt: "3", init_image: bomb }),
      400,
      /init_image: 20000x20000 pixels; at most 8192 pixels a side/,
    );
    const wide = pngHeaderOnly(5000, 5000).toString("base64");
    assertError(
      await post({ prompt: "3", mask: wide }),
      400,
      /mask: 5000x5000 = 25000000 pixels; at most 16777216/,
    );
    const small = encodePng({ width: 32, height: 32, channels: 3, data: new Uint8Array(32 * 32 * 3) });
    assertError(await post({ prompt: "3", init_image: small.toString("base64") }), 400, /text-to-image only/);
    const res = await fetch(`${t.url}/api/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { message: string }).message, /JSON/);
    assertError(await request(`${t.url}/api/v1/jobs/../../etc/passwd`, "GET"), 404, /no route/);
    assertError(
      await request(`${t.url}/api/v1/jobs/x/images/..%2f0.png`, "GET"),
      400,
      /params\.id must match pattern/,
    );
    assertError(
      await request(`${t.url}/api/v1/jobs/00000000-0000-0000-0000-000000000000`, "GET"),
      404,
      /no job/,
    );
    assertError(
      await request(`${t.url}/nowhere`, "GET"),
      404,
      /no route GET \/nowhere; the routes are listed at \/openapi\.json/,
    );
  });

  it("serves an OpenAPI 3.1 document made from the route schemas", async () => {
    const { body } = await request(`${t.url}/openapi.json`, "GET");
    assert.equal(body.openapi, "3.1.0");
    const generate = body.paths["/api/v1/generate"].post;
    assert.deepEqual(generate.requestBody.content["application/json"].schema.required, ["prompt"]);
    assert.ok(generate.responses["202"]);
    assert.deepEqual(
      body.paths["/api/v1/jobs/{id}/events"].get.parameters.map((p: { name: string; in: string }) => [
        p.name,
        p.in,
      ]),
      [["id", "path"]],
    );
    for (const path of [
      "/sdapi/v1/txt2img",
      "/sdapi/v1/img2img",
      "/sdapi/v1/progress",
      "/sdapi/v1/options",
    ]) {
      assert.ok(body.paths[path], path);
    }
  });
});

describe("diffuse serve: queue bounds and job timeout (MNIST)", () => {
  it("answers 429 when max-queue jobs wait", async () => {
    const t = await startServer({ catalog: await mnistCatalog(), maxQueue: 1 });
    try {
      const post = () => request(`${t.url}/api/v1/generate`, "POST", { prompt: "5", steps: 150 });
      const a = await post();
      assert.equal(a.status, 202);
      await new Promise((r) => setTimeout(r, 20)); // a leaves the queue for the worker
      assert.equal((await post()).status, 202);
      assertError(await post(), 429, /the queue is full \(1 jobs waiting\); retry later/);
    } finally {
      await t.close();
    }
  });

  it("stops a job that runs past --job-timeout: SSE error with the reason, status 503", async () => {
    const t = await startServer({ catalog: await mnistCatalog(), jobTimeoutSeconds: 0.3 });
    try {
      const { body } = await request(`${t.url}/api/v1/generate`, "POST", { prompt: "5", steps: 150 });
      const { events } = await readEvents(`${t.url}/api/v1/jobs/${body.id}/events`);
      const last = events.at(-1)!;
      assert.equal(last.event, "error");
      assert.equal(last.data.status, 503);
      assert.match(last.data.message, /longer than the server's limit of 0.3 s \(--job-timeout\)/);
    } finally {
      await t.close();
    }
  });
});
