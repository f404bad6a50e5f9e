// The job queue on Redis (BullMQ), for a server whose jobs run on worker processes, any number, on any machine.
// RedisQueue is the server's side: a JobQueue (queue.ts) like MemoryQueue, so every API works unchanged on it. It
// keeps what it knows of its own jobs in memory (the interface answers synchronously) and learns the rest from
// BullMQ's event stream: started, progress (a worker's job.updateProgress), completed, failed. RedisWorker is the
// workers' side: a BullMQ Worker running a JobProcessor. Cancelling sets a flag key and publishes the job id; the
// worker that runs the job aborts it between steps (BullMQ's cancelJob), the one that picks it up later checks the
// flag first. A worker leaves each job's outcome (the result, or the error) in a key with a TTL, which the server
// reads once BullMQ says the job has finished. A worker that dies loses its job's lock; BullMQ's stalled-job check
// on the other workers puts the job back in the queue, once (maxStalledCount).
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { type Job, Queue, QueueEvents, WaitingError, Worker } from "bullmq";
import { Redis } from "ioredis";
import { QueueFullError, ServerConfigError } from "./errors.js";
import {
  errorOf,
  type JobEvent,
  type JobInfo,
  type JobProcessor,
  type JobQueue,
  ProgressClock,
  timeoutError,
} from "./queue.js";
import { redactUrl } from "./redis-url.js";

/** How requests and results travel through Redis (as JSON): images as base64, typed arrays as bytes. */
export interface JobCodec<Req, Res> {
  encodeRequest(request: Req): unknown;
  decodeRequest(data: unknown): Req;
  encodeResult(result: Res): unknown;
  decodeResult(data: unknown): Res;
}

/** Where the queue lives: a Redis URL and a queue name (other names are other queues on the same Redis). */
export interface RedisTarget {
  /** redis://[user:password@]host[:port][/db] or rediss:// (TLS). */
  url: string;
  /** Default "diffuse". */
  queueName?: string;
  /** Told about connection problems after start-up (BullMQ and ioredis reconnect on their own). */
  onError?: (err: Error) => void;
}

/** Options of {@link RedisQueue}. */
export interface RedisQueueOptions extends RedisTarget {
  /** Most of this server's jobs waiting; more are refused with 429. Default 16. */
  maxQueue?: number;
  /** Seconds a job may run on its worker before it is stopped (0 = no limit). Default 600. */
  jobTimeoutSeconds?: number;
  /** Finished jobs kept with their results in this server's memory. Default 100. */
  maxFinished?: number;
  /** Seconds results (and finished jobs) are kept, in Redis and here. Default 3600. */
  resultTtlSeconds?: number;
}

/** Options of {@link RedisWorker}. */
export interface RedisWorkerOptions extends RedisTarget {
  /** Jobs this worker runs at once. Default 1. */
  concurrency?: number;
  /**
   * Seconds a job's lock lasts without renewal (renewed every half of it while the job runs): a worker that dies
   * holds its job this long before another worker's stalled check can take it. Default 30.
   */
  lockDurationSeconds?: number;
  /** Seconds between this worker's checks for jobs whose worker died. Default 30. */
  stalledIntervalSeconds?: number;
  /** Times a job may be taken back from a dead worker before it fails. Default 1. */
  maxStalledCount?: number;
  /** Shown in logs and in Redis' CLIENT LIST. Default host:pid. */
  name?: string;
}

/** What a BullMQ job carries: the request and the server's limits for it. */
interface JobData {
  request: unknown;
  timeoutSeconds: number;
  resultTtlSeconds: number;
}

/** What a worker leaves in Redis for the server when a job ends. */
type Outcome =
  | { status: "done"; result: unknown }
  | { status: "error"; error: { message: string; status: number } }
  | { status: "cancelled" };

const DEFAULT_QUEUE = "diffuse";
// reasons given to BullMQ's cancelJob (the processor's AbortSignal), and the timeout's own
const CANCELLED = "diffuse: cancelled";
const REQUEUED = "diffuse: requeued";
const TIMED_OUT = Symbol("timed out");

/**
 * Checks that Redis answers at `url`, failing fast (one try, 5 s) with a ServerConfigError that names the URL:
 * BullMQ itself would retry for ever in the background.
 */
export async function checkRedis(url: string): Promise<void> {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = "";
  }
  if (protocol !== "redis:" && protocol !== "rediss:") {
    throw new ServerConfigError(`--redis must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
  }
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // connect() then only says "Connection is closed": the error event has the cause (ECONNREFUSED, ...)
  let cause: Error | undefined;
  client.on("error", (err: Error) => {
    cause ??= err;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    const e = (cause ?? err) as NodeJS.ErrnoException;
    const why = e.code && !e.message.includes(e.code) ? `${e.code} ${e.message}` : e.message;
    throw new ServerConfigError(`cannot reach Redis at ${redactUrl(url)}: ${why}`);
  } finally {
    client.disconnect();
  }
}

/** Waits for `work`, at most `ms` milliseconds. */
async function atMost(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** The keys and channel of our own next to BullMQ's, under the queue's BullMQ prefix. */
function ourKeys(toKey: (type: string) => string) {
  return {
    outcome: (id: string) => toKey(`outcome:${id}`),
    cancelFlag: (id: string) => toKey(`cancel:${id}`),
    cancelChannel: toKey("cancel"),
  };
}

interface LocalJob<Res> {
  info: JobInfo;
  result?: Res;
  listeners: Set<(event: JobEvent) => void>;
  finished: Promise<JobInfo>;
  resolve: (info: JobInfo) => void;
  /** Settles once BullMQ has the job (rejections are handled where it is made). */
  added: Promise<void>;
  /** "started" was sent: a job a worker lost and another took over does not send it again. */
  started: boolean;
}

const isFinished = (status: JobInfo["status"]) => status !== "queued" && status !== "running";

/** The server's side of the Redis queue: submits jobs for workers and follows them (see {@link JobQueue}). */
export class RedisQueue<Req, Res> implements JobQueue<Req, Res> {
  readonly maxQueue: number;
  readonly jobTimeoutSeconds: number;
  readonly maxFinished: number;
  readonly resultTtlSeconds: number;
  #jobs = new Map<string, LocalJob<Res>>();
  #finished: string[] = [];
  /** Redis work begun by submit / cancel, awaited by close. */
  #pending = new Set<Promise<unknown>>();
  readonly #keys: ReturnType<typeof ourKeys>;

  private constructor(
    private readonly codec: JobCodec<Req, Res>,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly client: Redis,
    private readonly onError: (err: Error) => void,
    opts: RedisQueueOptions,
    private readonly observer?: (info: JobInfo, event: JobEvent) => void,
  ) {
    this.maxQueue = opts.maxQueue ?? 16;
    this.jobTimeoutSeconds = opts.jobTimeoutSeconds ?? 600;
    this.maxFinished = opts.maxFinished ?? 100;
    this.resultTtlSeconds = opts.resultTtlSeconds ?? 3600;
    this.#keys = ourKeys((type) => queue.toKey(type));
    events.on("active", ({ jobId }) => this.#onActive(jobId));
    events.on("progress", ({ jobId, data }) => this.#onProgress(jobId, data));
    events.on("stalled", ({ jobId }) => this.#onStalled(jobId));
    events.on("completed", ({ jobId }) => this.#track(this.#settle(jobId)));
    events.on("failed", ({ jobId, failedReason }) => this.#track(this.#settle(jobId, failedReason)));
    events.on("removed", ({ jobId }) => {
      const job = this.#jobs.get(jobId);
      if (job && !isFinished(job.info.status)) this.#finish(job, "cancelled");
    });
  }

  /** Connects to Redis (a ServerConfigError when it does not answer) and starts following the queue's events. */
  static async connect<Req, Res>(
    codec: JobCodec<Req, Res>,
    opts: RedisQueueOptions,
    observer?: (info: JobInfo, event: JobEvent) => void,
  ): Promise<RedisQueue<Req, Res>> {
    await checkRedis(opts.url);
    const onError = (err: Error) => opts.onError?.(err);
    const name = opts.queueName ?? DEFAULT_QUEUE;
    const ttl = opts.resultTtlSeconds ?? 3600;
    const client = new Redis(opts.url);
    client.on("error", onError);
    const queue = new Queue(name, {
      connection: { url: opts.url },
      // failed jobs are not retried (a generation that failed fails again); finished ones are kept as the results
      defaultJobOptions: {
        attempts: 1,
        removeOnComplete: { age: ttl, count: 10000 },
        removeOnFail: { age: ttl, count: 10000 },
      },
    });
    queue.on("error", onError);
    // read the event stream from its current end, so no event of a job submitted from now on is missed
    const last = await client.xrevrange(queue.keys.events!, "+", "-", "COUNT", 1);
    const events = new QueueEvents(name, {
      connection: { url: opts.url },
      lastEventId: last[0]?.[0] ?? "0-0",
    });
    events.on("error", onError);
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    return new RedisQueue(codec, queue, events, client, onError, opts, observer);
  }

  submit(request: Req): JobInfo {
    this.#prune();
    if (this.#queued().length >= this.maxQueue) throw new QueueFullError(this.maxQueue);
    const data: JobData = {
      request: this.codec.encodeRequest(request),
      timeoutSeconds: this.jobTimeoutSeconds,
      resultTtlSeconds: this.resultTtlSeconds,
    };
    let resolve!: (info: JobInfo) => void;
    const finished = new Promise<JobInfo>((r) => {
      resolve = r;
    });
    const id = randomUUID();
    const job: LocalJob<Res> = {
      info: { id, status: "queued", createdAt: Date.now(), progress: { step: 0, total: 0 } },
      listeners: new Set(),
      finished,
      resolve,
      added: Promise.resolve(),
      started: false,
    };
    this.#jobs.set(id, job);
    this.#emit(job, { type: "queued", position: this.#queued().length - 1 });
    job.added = this.#track(
      this.queue.add("job", data, { jobId: id }).then(
        () => {},
        (err: Error) => {
          if (isFinished(job.info.status)) return;
          this.#finish(job, "error", {
            message: `could not queue the job in Redis: ${err.message}`,
            status: 503,
          });
        },
      ),
    );
    return this.get(id)!;
  }

  get(id: string): JobInfo | undefined {
    const job = this.#jobs.get(id);
    if (!job) return undefined;
    const info = { ...job.info, progress: { ...job.info.progress } };
    if (job.info.status === "queued") info.position = this.#queued().indexOf(job);
    return info;
  }

  result(id: string): Res | undefined {
    return this.#jobs.get(id)?.result;
  }

  cancel(id: string): boolean {
    const job = this.#jobs.get(id);
    if (!job || isFinished(job.info.status)) return false;
    // a queued job is cancelled at once, as in MemoryQueue; should a worker have just taken it, the flag stops it
    this.#track(job.added.then(() => this.#requestCancel(id)));
    if (job.info.status === "queued") this.#finish(job, "cancelled");
    return true;
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

  /** The running job (the one that started first, when several workers run this server's jobs) and the waiting. */
  stats(): { running: JobInfo | null; queued: number } {
    const running = [...this.#jobs.values()]
      .filter((j) => j.info.status === "running")
      .sort((a, b) => a.info.startedAt! - b.info.startedAt!)[0];
    return { running: running ? this.get(running.info.id)! : null, queued: this.#queued().length };
  }

  /** Cancels this server's jobs (waits a few seconds for the running ones to stop), then disconnects. */
  async close(): Promise<void> {
    const open = [...this.#jobs.values()].filter((j) => !isFinished(j.info.status));
    for (const job of open) this.cancel(job.info.id);
    await atMost(Promise.all(open.map((j) => j.finished)), 5000);
    for (const job of open) if (!isFinished(job.info.status)) this.#finish(job, "cancelled");
    await atMost(Promise.allSettled(this.#pending), 5000);
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.client.disconnect();
  }

  /** Removes a job from the queue, or, when a worker holds it, raises its cancel flag and tells the workers. */
  async #requestCancel(id: string): Promise<void> {
    if ((await this.queue.remove(id)) === 1) return;
    await this.client.set(this.#keys.cancelFlag(id), "1", "EX", this.resultTtlSeconds);
    await this.client.publish(this.#keys.cancelChannel, id);
  }

  #onActive(id: string): void {
    const job = this.#jobs.get(id);
    if (!job || isFinished(job.info.status)) return;
    job.info.status = "running";
    job.info.progress = { step: 0, total: 0 };
    if (job.started) return; // taken over from a worker that died: its steps start again, silently
    job.started = true;
    job.info.startedAt = Date.now();
    this.#emit(job, { type: "started" });
  }

  #onProgress(id: string, data: unknown): void {
    const job = this.#jobs.get(id);
    const p = data as { step?: unknown; total?: unknown; etaSeconds?: unknown } | null;
    if (job?.info.status !== "running" || typeof p?.step !== "number" || typeof p.total !== "number") return;
    job.info.progress = { step: p.step, total: p.total };
    if (typeof p.etaSeconds === "number") job.info.progress.etaSeconds = p.etaSeconds;
    this.#emit(job, { type: "progress", ...job.info.progress });
  }

  /** Its worker died; the job waits for another. */
  #onStalled(id: string): void {
    const job = this.#jobs.get(id);
    if (job && job.info.status === "running") job.info.status = "queued";
  }

  /** A job BullMQ says has finished: its outcome is read from Redis. */
  async #settle(id: string, failedReason?: string): Promise<void> {
    const job = this.#jobs.get(id);
    if (!job || isFinished(job.info.status)) return;
    let outcome: Outcome | undefined;
    let result: Res | undefined;
    try {
      const text = await this.client.get(this.#keys.outcome(id));
      outcome = text === null ? undefined : (JSON.parse(text) as Outcome);
      if (outcome?.status === "done") result = this.codec.decodeResult(outcome.result);
    } catch (err) {
      outcome = {
        status: "error",
        error: { message: `cannot read the job's outcome: ${errorOf(err).message}`, status: 500 },
      };
    }
    if (isFinished(job.info.status)) return;
    if (outcome?.status === "done") {
      job.result = result;
      this.#finish(job, "done");
    } else if (outcome?.status === "cancelled") this.#finish(job, "cancelled");
    else if (outcome?.status === "error") this.#finish(job, "error", outcome.error);
    else {
      const message =
        failedReason === undefined
          ? "the job finished but its outcome is not in Redis (expired or deleted)"
          : `the job failed on its worker: ${failedReason}`;
      this.#finish(job, "error", { message, status: 500 });
    }
  }

  #queued(): LocalJob<Res>[] {
    return [...this.#jobs.values()].filter((j) => j.info.status === "queued");
  }

  #track<T>(work: Promise<T>): Promise<T> {
    const tracked = work.catch((err: Error) => {
      this.onError(err);
      return undefined as T;
    });
    this.#pending.add(tracked);
    void tracked.finally(() => this.#pending.delete(tracked));
    return tracked;
  }

  #emit(job: LocalJob<Res>, event: JobEvent): void {
    this.observer?.(job.info, event);
    for (const listener of [...job.listeners]) listener(event);
  }

  #finish(
    job: LocalJob<Res>,
    status: "done" | "error" | "cancelled",
    error?: { message: string; status: number },
  ): void {
    job.info.status = status;
    job.info.finishedAt = Date.now();
    if (status === "error") {
      job.info.error = error!;
      this.#emit(job, { type: "error", ...job.info.error });
    } else this.#emit(job, { type: status } as JobEvent);
    job.listeners.clear();
    job.resolve(this.get(job.info.id)!);
    this.#finished.push(job.info.id);
    this.#prune();
  }

  /** Drops finished jobs beyond maxFinished, and those older than the result TTL (gone from Redis too). */
  #prune(): void {
    const expired = Date.now() - this.resultTtlSeconds * 1000;
    while (
      this.#finished.length > this.maxFinished ||
      (this.#finished.length > 0 && this.#jobs.get(this.#finished[0]!)!.info.finishedAt! < expired)
    ) {
      this.#jobs.delete(this.#finished.shift()!);
    }
  }
}

/** The workers' side of the Redis queue: runs jobs with a JobProcessor, reports their progress and outcome. */
export class RedisWorker {
  readonly name: string;
  #closing: Promise<void> | null = null;

  private constructor(
    private readonly worker: Worker<JobData>,
    private readonly client: Redis,
    private readonly subscriber: Redis,
    name: string,
  ) {
    this.name = name;
  }

  /** Connects (a ServerConfigError when Redis does not answer) and starts taking jobs. */
  static async start<Req, Res>(
    processor: JobProcessor<Req, Res>,
    codec: JobCodec<Req, Res>,
    opts: RedisWorkerOptions,
    /** Sees the events of the jobs this worker runs (the CLI logs them). */
    observer?: (info: JobInfo, event: JobEvent) => void,
  ): Promise<RedisWorker> {
    await checkRedis(opts.url);
    const onError = (err: Error) => opts.onError?.(err);
    const name = opts.name ?? `${hostname()}:${process.pid}`;
    const client = new Redis(opts.url);
    client.on("error", onError);
    const subscriber = new Redis(opts.url);
    subscriber.on("error", onError);
    let keys!: ReturnType<typeof ourKeys>;
    // three parameters: BullMQ then gives the processor an AbortSignal, which its cancelJob() aborts
    const run = async (job: Job<JobData>, token: string | undefined, signal: AbortSignal | undefined) => {
      const id = job.id!;
      const { timeoutSeconds, resultTtlSeconds } = job.data;
      const info: JobInfo = {
        id,
        status: "running",
        createdAt: job.timestamp,
        startedAt: Date.now(),
        progress: { step: 0, total: 0 },
      };
      const emit = (event: JobEvent) => observer?.(info, event);
      const controller = new AbortController();
      const onAbort = () => controller.abort(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      const timer =
        timeoutSeconds > 0 ? setTimeout(() => controller.abort(TIMED_OUT), timeoutSeconds * 1000) : undefined;
      const clock = new ProgressClock();
      const store = (outcome: Outcome) =>
        client.set(keys.outcome(id), JSON.stringify(outcome), "EX", Math.max(1, resultTtlSeconds));
      emit({ type: "started" });
      try {
        // cancelled before this worker took it (the message went out before cancelJob could see the job)
        if ((await client.exists(keys.cancelFlag(id))) === 1) controller.abort(CANCELLED);
        controller.signal.throwIfAborted();
        const result = await processor(codec.decodeRequest(job.data.request), {
          signal: controller.signal,
          onStep: (step, total) => {
            info.progress = clock.progress(step, total);
            emit({ type: "progress", ...info.progress });
            job.updateProgress({ ...info.progress }).catch(onError);
          },
        });
        // a job that finished its last step as it was cancelled still counts as cancelled (as in MemoryQueue)
        controller.signal.throwIfAborted();
        await store({ status: "done", result: codec.encodeResult(result) });
        emit({ type: "done" });
        return null;
      } catch (err) {
        const reason = controller.signal.aborted ? controller.signal.reason : undefined;
        if (reason === REQUEUED && token) {
          // back to the queue for another worker; BullMQ then leaves the job alone
          await job.moveToWait(token);
          info.status = "queued";
          emit({ type: "queued", position: 0 });
          throw new WaitingError();
        }
        const outcome: Outcome =
          reason === CANCELLED
            ? { status: "cancelled" }
            : { status: "error", error: reason === TIMED_OUT ? timeoutError(timeoutSeconds) : errorOf(err) };
        await store(outcome);
        emit(outcome.status === "cancelled" ? { type: "cancelled" } : { type: "error", ...outcome.error });
        throw new Error(outcome.status === "cancelled" ? "cancelled" : outcome.error.message);
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      }
    };
    const worker = new Worker<JobData>(opts.queueName ?? DEFAULT_QUEUE, run, {
      connection: { url: opts.url },
      name,
      autorun: false,
      concurrency: opts.concurrency ?? 1,
      lockDuration: (opts.lockDurationSeconds ?? 30) * 1000,
      stalledInterval: (opts.stalledIntervalSeconds ?? 30) * 1000,
      maxStalledCount: opts.maxStalledCount ?? 1,
    });
    worker.on("error", onError);
    keys = ourKeys((type) => worker.toKey(type));
    subscriber.on("message", (_channel: string, id: string) => worker.cancelJob(id, CANCELLED));
    await subscriber.subscribe(keys.cancelChannel);
    void worker.run().catch(onError);
    await worker.waitUntilReady();
    return new RedisWorker(worker, client, subscriber, name);
  }

  /** Takes no more jobs, lets the running ones finish, then disconnects. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.worker.close();
      await this.subscriber.quit().catch(() => {});
      await this.client.quit().catch(() => {});
    })();
    return this.#closing;
  }

  /** Stops the running jobs between steps and puts them back in the queue for other workers, then disconnects. */
  requeueAndClose(): Promise<void> {
    this.worker.cancelAllJobs(REQUEUED);
    return this.close();
  }
}
