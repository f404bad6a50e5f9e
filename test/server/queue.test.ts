// The in-process job queue: one job at a time in order, 429 when full, cancel of queued and running jobs, a
// per-job timeout, progress with an ETA, finished jobs capped. The processor here is a loop of short timed steps
// that checks its AbortSignal between steps, as the pipelines do.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { QueueFullError } from "../../src/server/errors.js";
import { type JobEvent, type JobProcessor, MemoryQueue } from "../../src/server/queue.js";

/** Runs `steps` steps of `ms` each, reporting each; returns the job's name. */
const stepper =
  (ms: number): JobProcessor<{ name: string; steps: number }, string> =>
  async (req, { signal, onStep }) => {
    for (let i = 1; i <= req.steps; i++) {
      await sleep(ms);
      signal.throwIfAborted();
      onStep(i, req.steps);
    }
    return req.name;
  };

describe("MemoryQueue", () => {
  it("runs jobs one at a time in order, with progress, ETA and results", async () => {
    const order: string[] = [];
    const queue = new MemoryQueue(stepper(5), {}, (info, e) => {
      if (e.type === "started") order.push(info.id);
    });
    const a = queue.submit({ name: "a", steps: 3 });
    const b = queue.submit({ name: "b", steps: 2 });
    assert.equal(a.status, "queued");
    assert.equal(queue.get(b.id)!.position, 1);
    const events: JobEvent[] = [];
    queue.subscribe(a.id, (e) => events.push(e));
    const [infoA, infoB] = await Promise.all([queue.wait(a.id), queue.wait(b.id)]);
    assert.deepEqual(order, [a.id, b.id]);
    assert.equal(infoA.status, "done");
    assert.equal(infoB.status, "done");
    assert.ok(infoB.startedAt! >= infoA.finishedAt!, "b starts after a finished");
    assert.equal(queue.result(a.id), "a");
    assert.deepEqual(
      events.map((e) => e.type),
      ["started", "progress", "progress", "progress", "done"],
    );
    const last = events.filter((e) => e.type === "progress").at(-1) as JobEvent & { type: "progress" };
    assert.deepEqual([last.step, last.total], [3, 3]);
    assert.equal(last.etaSeconds, 0);
  });

  it("refuses a job with 429 when maxQueue jobs wait", async () => {
    const queue = new MemoryQueue(stepper(20), { maxQueue: 1 });
    const running = queue.submit({ name: "a", steps: 50 });
    await sleep(5); // a starts running: it no longer counts as waiting
    const waiting = queue.submit({ name: "b", steps: 1 });
    assert.throws(
      () => queue.submit({ name: "c", steps: 1 }),
      (e: unknown) => e instanceof QueueFullError && e.status === 429 && /queue is full/.test(e.message),
    );
    assert.equal(queue.stats().queued, 1);
    assert.equal(queue.stats().running!.id, running.id);
    await queue.close();
    assert.equal(queue.get(waiting.id)!.status, "cancelled");
  });

  it("cancels a queued job at once and a running one between steps", async () => {
    const queue = new MemoryQueue(stepper(10));
    const a = queue.submit({ name: "a", steps: 1000 });
    const b = queue.submit({ name: "b", steps: 1 });
    assert.equal(queue.cancel(b.id), true);
    assert.equal(queue.get(b.id)!.status, "cancelled");
    await sleep(40);
    assert.equal(queue.get(a.id)!.status, "running");
    const t0 = Date.now();
    assert.equal(queue.cancel(a.id), true);
    const info = await queue.wait(a.id);
    assert.equal(info.status, "cancelled");
    assert.ok(Date.now() - t0 < 500, "stopped within a step or so");
    assert.ok(info.progress.step < 1000);
    assert.equal(queue.cancel(a.id), false, "a finished job cannot be cancelled");
    assert.equal(queue.result(a.id), undefined);
  });

  it("stops a job that runs past the timeout with an error saying so", async () => {
    const queue = new MemoryQueue(stepper(10), { jobTimeoutSeconds: 0.05 });
    const info = await queue.wait(queue.submit({ name: "slow", steps: 1000 }).id);
    assert.equal(info.status, "error");
    assert.equal(info.error!.status, 503);
    assert.match(info.error!.message, /longer than the server's limit of 0.05 s/);
  });

  it("reports a failing job with its error's status, and runs the next one", async () => {
    const queue = new MemoryQueue<{ fail: boolean }, string>(async (req) => {
      if (req.fail) throw Object.assign(new Error("bad input"), { status: 400 });
      return "ok";
    });
    const bad = queue.submit({ fail: true });
    const good = queue.submit({ fail: false });
    assert.deepEqual((await queue.wait(bad.id)).error, { message: "bad input", status: 400 });
    assert.equal((await queue.wait(good.id)).status, "done");
  });

  it("keeps at most maxFinished finished jobs, dropping the oldest", async () => {
    const queue = new MemoryQueue(stepper(0), { maxFinished: 2 });
    const ids = [1, 2, 3].map((i) => queue.submit({ name: `j${i}`, steps: 1 }).id);
    for (const id of ids) await queue.wait(id);
    assert.equal(queue.get(ids[0]!), undefined);
    assert.equal(queue.result(ids[1]!), "j2");
    assert.equal(queue.result(ids[2]!), "j3");
  });
});
