// The job queue behind the server, as a small interface (JobQueue) so that a shared queue (Redis / BullMQ with
// workers on other machines: redis-queue.ts) can replace the in-process one without touching the HTTP layer.
// MemoryQueue runs one job at a time in this process, bounded, with a per-job timeout, and keeps finished jobs up to
// a cap.
import { randomUUID } from "node:crypto";
import { QueueFullError } from "./errors.js";

/** Where a job is in its life. */
export type JobStatus = "queued" | "running" | "done" | "error" | "cancelled";

/** A job's progress: steps done of all steps, and the estimated seconds left once a step has timed it. */
export interface JobProgress {
  step: number;
  total: number;
  etaSeconds?: number;
}

/** What the queue says about a job (no result payload). */
export interface JobInfo {
  id: string;
  status: JobStatus;
  /** Jobs ahead of it (queued jobs only). */
  position?: number;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  progress: JobProgress;
  /** Why it failed or stopped: a message and the HTTP status it maps to (4xx: the request, 5xx: the server). */
  error?: { message: string; status: number };
}

/** What a job's subscribers receive, in order; the last is "done", "error" or "cancelled". */
export type JobEvent =
  | { type: "queued"; position: number }
  | { type: "started" }
  | ({ type: "progress" } & JobProgress)
  | { type: "done" }
  | { type: "error"; message: string; status: number }
  | { type: "cancelled" };

/** Runs one job: must stop (reject) soon after `signal` aborts; reports steps with `onStep`. */
export type JobProcessor<Req, Res> = (
  request: Req,
  ctx: { signal: AbortSignal; onStep: (step: number, total: number) => void },
) => Promise<Res>;

/** A job queue: submit, look up, follow, cancel. */
export interface JobQueue<Req, Res> {
  /** Queues a job; throws QueueFullError (429) when `maxQueue` jobs already wait. */
  submit(request: Req): JobInfo;
  get(id: string): JobInfo | undefined;
  /** The result of a "done" job. */
  result(id: string): Res | undefined;
  /** Cancels a queued job, or stops a running one between steps; false when unknown or already finished. */
  cancel(id: string): boolean;
  /** Calls `listener` with the job's events from now on; returns the unsubscribe function. */
  subscribe(id: string, listener: (event: JobEvent) => void): () => void;
  /** Resolves when the job has finished (any way). */
  wait(id: string): Promise<JobInfo>;
  /** The running job and the number waiting. */
  stats(): { running: JobInfo | null; queued: number };
  /** Cancels everything and waits for the running job to stop. */
  close(): Promise<void>;
}

/** Options of {@link MemoryQueue}. */
export interface MemoryQueueOptions {
  /** Most jobs waiting (not counting the running one); more are refused with 429. Default 16. */
  maxQueue?: number;
  /** Seconds a job may run before it is stopped (0 = no limit). Default 600. */
  jobTimeoutSeconds?: number;
  /** Finished jobs kept with their results; the oldest are dropped first. Default 100. */
  maxFinished?: number;
}

/** Turns step reports into progress with an ETA. */
export class ProgressClock {
  /** First progress report: ETA is measured from it, so model loading does not skew the rate. */
  #first?: { time: number; step: number };

  progress(step: number, total: number): JobProgress {
    const now = performance.now();
    this.#first ??= { time: now, step };
    const progress: JobProgress = { step, total };
    const done = step - this.#first.step;
    if (done > 0) progress.etaSeconds = (((now - this.#first.time) / done) * (total - step)) / 1000;
    return progress;
  }
}

/** The error of a job stopped by the per-job timeout. */
export function timeoutError(seconds: number): { message: string; status: number } {
  return {
    message: `the job ran longer than the server's limit of ${seconds} s (--job-timeout) and was stopped`,
    status: 503,
  };
}

/** Message and status of a failed job: an error's own `status` (HttpError), else 500. */
export function errorOf(err: unknown): { message: string; status: number } {
  const e = err as { status?: unknown; message?: unknown } | null;
  const status = typeof e?.status === "number" ? e.status : 500;
  return { message: typeof e?.message === "string" ? e.message : String(err), status };
}

interface Job<Req, Res> {
  info: JobInfo;
  request: Req;
  result?: Res;
  controller: AbortController;
  listeners: Set<(event: JobEvent) => void>;
  finished: Promise<JobInfo>;
  resolve: (info: JobInfo) => void;
  clock: ProgressClock;
}

const CANCELLED = Symbol("cancelled");
const TIMED_OUT = Symbol("timed out");

/** The in-process queue: one job at a time (see {@link JobQueue}). */
export class MemoryQueue<Req, Res> implements JobQueue<Req, Res> {
  readonly maxQueue: number;
  readonly jobTimeoutSeconds: number;
  readonly maxFinished: number;
  #jobs = new Map<string, Job<Req, Res>>();
  #waiting: Job<Req, Res>[] = [];
  #running: Job<Req, Res> | null = null;
  #finished: string[] = [];

  constructor(
    private readonly processor: JobProcessor<Req, Res>,
    opts: MemoryQueueOptions = {},
    /** Sees every job's events (the CLI logs them). */
    private readonly observer?: (info: JobInfo, event: JobEvent) => void,
  ) {
    this.maxQueue = opts.maxQueue ?? 16;
    this.jobTimeoutSeconds = opts.jobTimeoutSeconds ?? 600;
    this.maxFinished = opts.maxFinished ?? 100;
  }

  submit(request: Req): JobInfo {
    if (this.#waiting.length >= this.maxQueue) throw new QueueFullError(this.maxQueue);
    let resolve!: (info: JobInfo) => void;
    const finished = new Promise<JobInfo>((r) => {
      resolve = r;
    });
    const job: Job<Req, Res> = {
      info: { id: randomUUID(), status: "queued", createdAt: Date.now(), progress: { step: 0, total: 0 } },
      request,
      controller: new AbortController(),
      listeners: new Set(),
      finished,
      resolve,
      clock: new ProgressClock(),
    };
    this.#jobs.set(job.info.id, job);
    this.#waiting.push(job);
    this.#emit(job, { type: "queued", position: this.#waiting.length - 1 + (this.#running ? 1 : 0) });
    queueMicrotask(() => this.#pump());
    return this.get(job.info.id)!;
  }

  get(id: string): JobInfo | undefined {
    const job = this.#jobs.get(id);
    if (!job) return undefined;
    const info = { ...job.info, progress: { ...job.info.progress } };
    if (job.info.status === "queued") info.position = this.#waiting.indexOf(job) + (this.#running ? 1 : 0);
    return info;
  }

  result(id: string): Res | undefined {
    return this.#jobs.get(id)?.result;
  }

  cancel(id: string): boolean {
    const job = this.#jobs.get(id);
    if (!job) return false;
    if (job.info.status === "queued") {
      this.#waiting.splice(this.#waiting.indexOf(job), 1);
      this.#finish(job, "cancelled");
      return true;
    }
    if (job.info.status === "running") {
      job.controller.abort(CANCELLED);
      return true;
    }
    return false;
  }

  subscribe(id: string, listener: (event: JobEvent) => void): () => void {
    const job = this.#jobs.get(id);
    if (!job) return () => {};
    job.listeners.add(listener);
    return () => job.listeners.delete(listener);
  }

  wait(id: string): Promise<JobInfo> {
    const job = this.#jobs.get(id);
    if (!job) return Promise.reject(new Error(`unknown job ${id}`));
    return job.finished;
  }

  stats(): { running: JobInfo | null; queued: number } {
    return { running: this.#running ? this.get(this.#running.info.id)! : null, queued: this.#waiting.length };
  }

  async close(): Promise<void> {
    for (const job of [...this.#waiting]) this.cancel(job.info.id);
    const running = this.#running;
    if (running) {
      this.cancel(running.info.id);
      await running.finished;
    }
  }

  #emit(job: Job<Req, Res>, event: JobEvent): void {
    this.observer?.(job.info, event);
    for (const listener of [...job.listeners]) listener(event);
  }

  async #pump(): Promise<void> {
    if (this.#running || this.#waiting.length === 0) return;
    const job = this.#waiting.shift()!;
    this.#running = job;
    job.info.status = "running";
    job.info.startedAt = Date.now();
    this.#emit(job, { type: "started" });
    const timer =
      this.jobTimeoutSeconds > 0
        ? setTimeout(() => job.controller.abort(TIMED_OUT), this.jobTimeoutSeconds * 1000)
        : undefined;
    try {
      job.result = await this.processor(job.request, {
        signal: job.controller.signal,
        onStep: (step, total) => this.#progress(job, step, total),
      });
      // a job that finished its last step as it was cancelled still counts as cancelled
      this.#finish(job, job.controller.signal.aborted ? this.#abortStatus(job) : "done");
    } catch (err) {
      if (job.controller.signal.aborted) this.#finish(job, this.#abortStatus(job));
      else this.#finish(job, "error", err);
    } finally {
      clearTimeout(timer);
      this.#running = null;
      this.#pump();
    }
  }

  #abortStatus(job: Job<Req, Res>): "cancelled" | "error" {
    return job.controller.signal.reason === TIMED_OUT ? "error" : "cancelled";
  }

  #progress(job: Job<Req, Res>, step: number, total: number): void {
    const progress = job.clock.progress(step, total);
    job.info.progress = progress;
    this.#emit(job, { type: "progress", ...progress });
  }

  #finish(job: Job<Req, Res>, status: "done" | "error" | "cancelled", err?: unknown): void {
    job.info.status = status;
    job.info.finishedAt = Date.now();
    if (status === "error") {
      job.info.error =
        job.controller.signal.reason === TIMED_OUT ? timeoutError(this.jobTimeoutSeconds) : errorOf(err);
      this.#emit(job, { type: "error", ...job.info.error });
    } else this.#emit(job, { type: status } as JobEvent);
    job.listeners.clear();
    job.resolve(this.get(job.info.id)!);
    this.#finished.push(job.info.id);
    while (this.#finished.length > this.maxFinished) this.#jobs.delete(this.#finished.shift()!);
  }
}
