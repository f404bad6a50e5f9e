// `diffuse serve --redis` with `diffuse worker`s, on a real redis-server started here (skipped when redis-server is
// not on PATH) with the shipped MNIST model: our API, A1111's and ComfyUI's through one worker in this process
// (progress events, the same PNG as in-process, cancel, 429, the per-job timeout, a job put back by a stopping
// worker), an unreachable Redis as a one-line error, then two worker processes: one killed with SIGKILL mid-job (the
// other finishes the job, exactly once) and one stopped with SIGTERM (its job completes, it exits 0).
import assert from "node:assert/strict";
import { type ChildProcessByStdio, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { main } from "../../src/cli/main.js";
import { decodeImage } from "../../src/io/image.js";
import { SHIPPED_MODEL_DIR } from "../../src/pipelines/model-kind.js";
import { runGeneration } from "../../src/server/engine.js";
import type { ModelCatalog } from "../../src/server/models.js";
import type { JobEvent, JobInfo } from "../../src/server/queue.js";
import { createServer } from "../../src/server/server.js";
import { type GenerationWorker, startGenerationWorker } from "../../src/server/worker.js";
import { behindBlocker, mnistCatalog, openEvents, request, startServer, type TestServer } from "./helpers.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const haveRedis = spawnSync("redis-server", ["--version"]).status === 0;
const skip = haveRedis
  ? false
  : "redis-server is not on PATH (apt-get install redis-server); Redis tests skipped";

/** A free loopback port (closed again at once). */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createTcpServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolvePort(port));
    });
  });
}

/** redis-server on a free loopback port, in memory only, in a temp dir. */
async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "diffuse-redis-"));
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  await new Promise<void>((ready, fail) => {
    child.stdout.on("data", (d) => {
      log += d;
      if (log.includes("Ready to accept connections")) ready();
    });
    child.on("exit", (code) => fail(new Error(`redis-server exited with ${code}: ${log}`)));
  });
  const exited = new Promise((r) => child.on("exit", r));
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: JSON lines of the worker's --json output
type Json = any;

/** `diffuse worker --json` as a child process, its JSON lines collected. */
interface WorkerProcess {
  child: ChildProcessByStdio<null, Readable, Readable>;
  name: string;
  lines: Json[];
  exited: Promise<number | null>;
  /** The first line that `match` accepts, waiting for it at most `ms`. */
  waitFor(match: (line: Json) => boolean, ms: number): Promise<Json>;
}

async function spawnWorker(url: string, queue: string): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    [
      ...["--import", "tsx", "src/cli/main.ts", "worker", "--redis", url, "--queue", queue],
      ...["--model", SHIPPED_MODEL_DIR, "--json", "--lock-duration", "5", "--stalled-interval", "2"],
    ],
    { cwd: repoRoot, env: { ...process.env, DIFFUSE_DEBUG: "1" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const lines: Json[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => lines.push(JSON.parse(line)));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const waitFor = async (match: (line: Json) => boolean, ms: number) => {
    const end = Date.now() + ms;
    for (;;) {
      const found = lines.find(match);
      if (found) return found;
      if (Date.now() > end || child.exitCode !== null) {
        throw new Error(
          `worker: no such line in ${ms} ms; lines: ${JSON.stringify(lines)}; stderr: ${stderr}`,
        );
      }
      await sleep(20);
    }
  };
  const started = await waitFor((l) => l.type === "worker", 60_000);
  return { child, name: started.name, lines, exited, waitFor };
}

/** The job events of `id` in a worker's lines. */
const jobEvents = (w: WorkerProcess, id: string): string[] =>
  w.lines.filter((l) => l.type === "job" && l.id === id).map((l) => l.event.type);

/** Polls the job until it has finished. */
async function finished(url: string, id: string, ms: number): Promise<Json> {
  const end = Date.now() + ms;
  for (;;) {
    const job = (await request(`${url}/api/v1/jobs/${id}`, "GET")).body;
    if (!["queued", "running"].includes(job.status)) return job;
    if (Date.now() > end) throw new Error(`job ${id} still ${job.status} after ${ms} ms`);
    await sleep(50);
  }
}

/** Polls the job until a worker runs it. */
async function running(url: string, id: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if ((await request(`${url}/api/v1/jobs/${id}`, "GET")).body.status === "running") return;
    await sleep(25);
  }
  throw new Error(`job ${id} never started`);
}

describe("diffuse serve --redis with diffuse worker", { skip }, () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let catalog: ModelCatalog;
  before(async () => {
    redis = await startRedis();
    catalog = await mnistCatalog();
  });
  after(() => redis?.stop());

  describe("one worker in this process", () => {
    let t: TestServer;
    let worker: GenerationWorker;
    const workerEvents: [string, string][] = [];
    const startWorker = () =>
      startGenerationWorker(
        { url: redis.url, queueName: "local", catalog: { models: [SHIPPED_MODEL_DIR] } },
        (info, e) => workerEvents.push([info.id, e.type]),
      );
    before(async () => {
      t = await startServer({
        catalog,
        maxQueue: 2,
        // generous: the tests run on loaded 2-core machines; the timeout test has its own server
        jobTimeoutSeconds: 60,
        redis: { url: redis.url, queueName: "local" },
      });
      worker = await startWorker();
    });
    after(async () => {
      await worker.worker.close();
      await t.close();
    });

    it("runs a job of our API: SSE queued/started/progress/done, the same PNG as in this process", async () => {
      const body = { prompt: "3", steps: 4, seed: 7, sampler: "euler" };
      // behind a long job, so that the stream opens while the job waits
      const { submitted, stream } = await behindBlocker(t.url, async () => {
        const submitted = await request(`${t.url}/api/v1/generate`, "POST", body);
        assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
        assert.equal(submitted.body.status, "queued");
        const { stream, first } = openEvents(`${t.url}/api/v1/jobs/${submitted.body.id}/events`);
        await first;
        return { submitted, stream };
      });
      const types = (await stream).events.map((e) => e.event);
      assert.deepEqual(types.slice(0, 2), ["queued", "started"]);
      assert.equal(types.at(-1), "done");
      const progress = (await stream).events.filter((e) => e.event === "progress").map((e) => e.data);
      assert.ok(progress.length >= 1, `progress events: ${types.join(",")}`);
      assert.deepEqual([progress.at(-1).step, progress.at(-1).total], [4, 4]);
      assert.equal(typeof progress.at(-1).etaSeconds, "number");
      const job = (await request(`${t.url}/api/v1/jobs/${submitted.body.id}`, "GET")).body;
      assert.equal(job.status, "done");
      assert.equal(job.result.model, "mnist");
      assert.equal(job.result.images[0].seed, 7);
      const png = Buffer.from(await (await fetch(`${t.url}${job.result.images[0].url}`)).arrayBuffer());
      assert.equal(decodeImage(png).width, 32);
      const here = await runGeneration(
        {
          model: "mnist",
          prompt: "3",
          negativePrompt: "",
          sampler: "euler",
          steps: 4,
          seed: 7,
          batchSize: 1,
          iterations: 1,
          loras: [],
        },
        catalog,
        { signal: new AbortController().signal, onStep: () => {} },
      );
      assert.ok(png.equals(here.images[0]!.png), "the worker's PNG is the one made in this process");
    });

    it("answers A1111's txt2img with the worker's images", async () => {
      const r = await request(`${t.url}/sdapi/v1/txt2img`, "POST", {
        prompt: "7",
        steps: 3,
        seed: 5,
        batch_size: 2,
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.images.length, 2);
      const info = JSON.parse(r.body.info);
      assert.equal(info.sd_model_name, "mnist");
      assert.deepEqual(info.all_seeds, [5, 6]);
      assert.match(info.infotexts[1], /Seed: 6/);
      assert.equal(decodeImage(Buffer.from(r.body.images[0], "base64")).height, 32);
    });

    it("runs a ComfyUI workflow: /history lists its image, /view serves it", async () => {
      const workflow = {
        "3": {
          class_type: "KSampler",
          inputs: {
            ...{ seed: 2, steps: 3, cfg: 2, sampler_name: "euler", scheduler: "normal", denoise: 1 },
            ...{ model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] },
          },
        },
        "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "mnist" } },
        "5": { class_type: "EmptyLatentImage", inputs: { width: 32, height: 32, batch_size: 1 } },
        "6": { class_type: "CLIPTextEncode", inputs: { text: "4", clip: ["4", 1] } },
        "7": { class_type: "CLIPTextEncode", inputs: { text: "", clip: ["4", 1] } },
        "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
        "9": { class_type: "SaveImage", inputs: { filename_prefix: "digit", images: ["8", 0] } },
      };
      const queued = await request(`${t.url}/prompt`, "POST", { prompt: workflow });
      assert.equal(queued.status, 200, JSON.stringify(queued.body));
      const id = queued.body.prompt_id;
      let entry: Json;
      for (let i = 0; i < 200 && !entry; i++) {
        entry = (await request(`${t.url}/history/${id}`, "GET")).body[id];
        if (!entry) await sleep(25);
      }
      assert.equal(entry?.status.status_str, "success", JSON.stringify(entry));
      const [image] = entry.outputs["9"].images;
      const view = await fetch(
        `${t.url}/view?filename=${image.filename}&subfolder=${image.subfolder}&type=output`,
      );
      assert.equal(view.status, 200);
      assert.equal(decodeImage(Buffer.from(await view.arrayBuffer())).width, 32);
    });

    it("refuses an unknown model at once, and a full queue with 429", async () => {
      const unknown = await request(`${t.url}/api/v1/generate`, "POST", { model: "nope", prompt: "1" });
      assert.equal(unknown.status, 400);
      assert.match(unknown.body.message, /unknown model "nope"; this server has: mnist, emoji/);
      const blocker = (await request(`${t.url}/api/v1/generate`, "POST", { prompt: "0", steps: 150 })).body;
      await running(t.url, blocker.id);
      const waiting = [];
      for (let i = 0; i < 2; i++) {
        const r = await request(`${t.url}/api/v1/generate`, "POST", { prompt: "1", steps: 2 });
        assert.equal(r.status, 202);
        waiting.push(r.body.id);
      }
      const full = await request(`${t.url}/api/v1/generate`, "POST", { prompt: "1", steps: 2 });
      assert.equal(full.status, 429);
      assert.match(full.body.message, /the queue is full \(2 jobs waiting\)/);
      // a queued job is cancelled at once and never runs; the running one stops between steps
      for (const id of waiting) {
        assert.equal((await request(`${t.url}/api/v1/jobs/${id}/cancel`, "POST")).status, 200);
        assert.equal((await request(`${t.url}/api/v1/jobs/${id}`, "GET")).body.status, "cancelled");
      }
      const t0 = Date.now();
      assert.equal((await request(`${t.url}/api/v1/jobs/${blocker.id}/cancel`, "POST")).status, 200);
      const stopped = await finished(t.url, blocker.id, 5000);
      assert.equal(stopped.status, "cancelled");
      assert.ok(Date.now() - t0 < 2000, `stopped within a step or so (${Date.now() - t0} ms)`);
      assert.ok(stopped.progress.step < 150);
      assert.ok(workerEvents.some(([id, e]) => id === blocker.id && e === "cancelled"));
      await sleep(300); // the worker would have taken the next job by now
      for (const id of waiting)
        assert.ok(!workerEvents.some(([j]) => j === id), "a cancelled job never runs");
    });

    it("stops a job that runs past --job-timeout with a 503 saying so", async () => {
      const short = await startServer({
        catalog,
        jobTimeoutSeconds: 1,
        redis: { url: redis.url, queueName: "timeout" },
      });
      const w = await startGenerationWorker({
        url: redis.url,
        queueName: "timeout",
        catalog: { models: [SHIPPED_MODEL_DIR] },
      });
      try {
        const id = (await request(`${short.url}/api/v1/generate`, "POST", { prompt: "2", steps: 150 })).body
          .id;
        const job = await finished(short.url, id, 30_000);
        assert.equal(job.status, "error");
        assert.equal(job.error.status, 503);
        assert.match(job.error.message, /longer than the server's limit of 1 s/);
      } finally {
        await w.worker.close();
        await short.close();
      }
    });

    it("a worker that stops at once puts its job back; another worker finishes it", async () => {
      const id = (await request(`${t.url}/api/v1/generate`, "POST", { prompt: "5", steps: 25, seed: 1 })).body
        .id;
      await running(t.url, id);
      await worker.worker.requeueAndClose();
      assert.ok(
        workerEvents.some(([j, e]) => j === id && e === "queued"),
        "put back in the queue",
      );
      worker = await startWorker();
      const job = await finished(t.url, id, 15_000);
      assert.equal(job.status, "done");
      assert.equal(workerEvents.filter(([j, e]) => j === id && e === "done").length, 1);
    });
  });

  it("an unreachable Redis is a one-line error at start-up", async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    await assert.rejects(
      createServer({ catalog, redis: { url } }),
      (e: Error) => e.message === `cannot reach Redis at ${url}: connect ECONNREFUSED ${url.slice(8)}`,
    );
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => {
      written.push(chunk);
      return true;
    }) as typeof write;
    try {
      const code = await main(["node", "diffuse", "worker", "--redis", url, "--model", SHIPPED_MODEL_DIR]);
      assert.equal(code, 1);
    } finally {
      process.stderr.write = write;
    }
    assert.equal(written.length, 1, written.join(""));
    assert.match(
      written[0]!,
      /^diffuse: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/,
    );
  });

  describe("two worker processes", () => {
    let t: TestServer;
    let workers: WorkerProcess[] = [];
    const serverEvents: [string, JobEvent["type"]][] = [];
    before(async () => {
      t = await startServer({
        catalog,
        redis: { url: redis.url, queueName: "procs" },
        onJobEvent: (info: JobInfo, e) => serverEvents.push([info.id, e.type]),
      });
      workers = await Promise.all([spawnWorker(redis.url, "procs"), spawnWorker(redis.url, "procs")]);
    });
    after(async () => {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
      await t.close();
    });

    it("a worker killed mid-job (SIGKILL): the other finishes the job, exactly once", async () => {
      const id = (await request(`${t.url}/api/v1/generate`, "POST", { prompt: "8", steps: 40, seed: 3 })).body
        .id;
      const first = await Promise.any(
        workers.map((w) =>
          w.waitFor((l) => l.id === id && l.event.type === "progress", 30_000).then(() => w),
        ),
      );
      first.child.kill("SIGKILL");
      assert.equal(await first.exited, null);
      const other = workers.find((w) => w !== first)!;
      const job = await finished(t.url, id, 30_000);
      assert.equal(job.status, "done", JSON.stringify(job));
      assert.equal(job.result.images.length, 1);
      assert.ok(!jobEvents(first, id).includes("done"));
      assert.deepEqual(
        jobEvents(other, id).filter((e) => e !== "progress"),
        ["started", "done"],
      );
      const events = serverEvents
        .filter(([j]) => j === id)
        .map(([, e]) => e)
        .filter((e) => e !== "progress");
      assert.deepEqual(events, ["queued", "started", "done"]);
      workers = [other];
    });

    it("a worker stopped with SIGTERM finishes its job, then exits 0", async () => {
      const [w] = workers;
      const id = (await request(`${t.url}/api/v1/generate`, "POST", { prompt: "9", steps: 25, seed: 4 })).body
        .id;
      await w!.waitFor((l) => l.id === id && l.event.type === "progress", 30_000);
      w!.child.kill("SIGTERM");
      assert.equal(await w!.exited, 0);
      assert.equal((await finished(t.url, id, 10_000)).status, "done");
      assert.deepEqual(
        jobEvents(w!, id).filter((e) => e !== "progress"),
        ["started", "done"],
      );
      assert.equal(w!.lines.at(-1).type, "stopped");
    });
  });
});
