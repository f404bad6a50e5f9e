/**
 * `diffuse serve`: the HTTP server (src/server) on this machine: our API, A1111's and ComfyUI's. Models are offered
 * by name (--model entries, the models of --models-dir, and the shipped emoji and MNIST models); jobs run one at a time,
 * or with --redis on `diffuse worker` processes. Loopback only unless an API key (or --insecure) is given.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { ServerConfigError } from "../server/errors.js";
import { DEFAULT_LIMITS } from "../server/limits.js";
import { ModelCatalog } from "../server/models.js";
import type { JobEvent, JobInfo } from "../server/queue.js";
import { redactUrl } from "../server/redis-url.js";
import { checkBind, createServer } from "../server/server.js";
import { addDeviceOption, resolveDevice } from "./device-option.js";
import { CliError } from "./errors.js";
import { cliInt } from "./option-values.js";
import { progressReporter } from "./progress.js";

/** Options of `diffuse serve`, as commander parses them. */
export interface ServeCliOptions {
  model?: string[];
  modelsDir?: string;
  lorasDir?: string;
  tokenizer?: string;
  host: string;
  port: string;
  apiKey?: string;
  insecure?: boolean;
  cors?: string;
  maxQueue: string;
  jobTimeout: string;
  maxWidth: string;
  maxHeight: string;
  maxSteps: string;
  maxBatch: string;
  device?: string;
  json?: boolean;
  redis?: string;
  queue: string;
  resultTtl: string;
  /** The web app's folder; false with --no-web. */
  web: string | false;
}

/** The built web app of the package (`npm run build:web`): resolves from src/ and dist/ alike. */
export const WEB_APP_DIR = fileURLToPath(new URL("../../dist/web", import.meta.url));

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Shows job events: JSON lines with --json; else a progress bar per job on a TTY and a line when it ends. */
export function jobLogger(json: boolean | undefined): (info: JobInfo, event: JobEvent) => void {
  const bars = new Map<string, ReturnType<typeof progressReporter>>();
  return (info, event) => {
    if (json) {
      if (event.type !== "progress" || event.step === event.total || event.step % 5 === 0) {
        process.stdout.write(`${JSON.stringify({ type: "job", id: info.id, event })}\n`);
      }
      return;
    }
    const label = `job ${info.id.slice(0, 8)}`;
    if (event.type === "started") bars.set(info.id, progressReporter());
    else if (event.type === "progress") bars.get(info.id)?.onProgress({ stage: label, ...event });
    else if (event.type === "done" || event.type === "error" || event.type === "cancelled") {
      bars.get(info.id)?.stop();
      bars.delete(info.id);
      const why = event.type === "error" ? `: ${event.message}` : "";
      process.stderr.write(`diffuse: ${label} ${event.type}${why}\n`);
    } else if (event.type === "queued" && bars.has(info.id)) {
      // a worker that stops puts its job back in the queue
      bars.get(info.id)?.stop();
      bars.delete(info.id);
      process.stderr.write(`diffuse: ${label} put back in the queue\n`);
    }
  };
}

/** Reports Redis connection problems once each (BullMQ and ioredis retry on their own). */
export function redisErrorLogger(json: boolean | undefined): (err: Error) => void {
  let last = "";
  return (err) => {
    if (err.message === last) return;
    last = err.message;
    if (json) process.stdout.write(`${JSON.stringify({ type: "redis-error", message: err.message })}\n`);
    else process.stderr.write(`diffuse: warning: redis: ${err.message}\n`);
  };
}

/** Starts the server and resolves once it has stopped (SIGINT / SIGTERM). */
export async function runServe(o: ServeCliOptions): Promise<void> {
  const apiKey = o.apiKey ?? process.env.DIFFUSE_API_KEY;
  const port = cliInt("port", o.port, 0);
  if (port > 65535) throw new CliError(`--port must be at most 65535, got ${port}`);
  try {
    checkBind(o.host, apiKey, o.insecure ?? false);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const device = await resolveDevice(o.device, (text) => {
    if (!o.json) process.stderr.write(`diffuse: warning: ${text}\n`);
  });
  let catalog: ModelCatalog;
  try {
    catalog = await ModelCatalog.create({
      models: o.model,
      modelsDir: o.modelsDir,
      lorasDir: o.lorasDir,
      tokenizer: o.tokenizer,
      device,
    });
  } catch (err) {
    if (err instanceof ServerConfigError) throw new CliError(err.message);
    throw err;
  }
  let server: Awaited<ReturnType<typeof createServer>>;
  try {
    server = await createServer({
      catalog,
      apiKey,
      cors: o.cors,
      maxQueue: cliInt("max-queue", o.maxQueue, 1),
      jobTimeoutSeconds: cliInt("job-timeout", o.jobTimeout, 0),
      limits: {
        maxWidth: cliInt("max-width", o.maxWidth, 8),
        maxHeight: cliInt("max-height", o.maxHeight, 8),
        maxSteps: cliInt("max-steps", o.maxSteps, 1),
        maxBatch: cliInt("max-batch", o.maxBatch, 1),
      },
      onJobEvent: jobLogger(o.json),
      web: o.web === false ? undefined : o.web,
      redis: o.redis
        ? {
            url: o.redis,
            queueName: o.queue,
            resultTtlSeconds: cliInt("result-ttl", o.resultTtl, 1),
            onError: redisErrorLogger(o.json),
          }
        : undefined,
    });
  } catch (err) {
    if (err instanceof ServerConfigError) throw new CliError(err.message);
    throw err;
  }
  const url = await server.listen(o.host, port);
  const models = catalog.list().map((m) => m.name);
  const redis = o.redis ? redactUrl(o.redis) : undefined;
  if (o.json) process.stdout.write(`${JSON.stringify({ type: "listening", url, models, redis })}\n`);
  else {
    const queue = redis ? `; jobs queued on ${redis} (queue "${o.queue}") for \`diffuse worker\`` : "";
    const page =
      o.web === false
        ? ""
        : existsSync(join(o.web, "index.html"))
          ? `; the web app: ${url}/`
          : "; no web app at / (npm run build:web builds it)";
    process.stderr.write(
      `diffuse: serving ${models.join(", ")} at ${url}${page} (API: ${url}/openapi.json; A1111: ${url}/sdapi/v1; ComfyUI: ${url}/prompt, ${url.replace(/^http/, "ws")}/ws)${apiKey ? "; API key required" : ""}${queue}\n`,
    );
  }
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      server.close().then(resolve, resolve);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

/** Adds `serve` to the program. */
export function registerServe(program: Command): void {
  const cmd = program
    .command("serve")
    .description(
      "HTTP server: its own API (/api/v1), A1111- and ComfyUI-compatible endpoints (/sdapi/v1; /prompt, /ws), one job at a time (or on `diffuse worker` processes with --redis)",
    )
    .option(
      "--model <name-or-path>",
      "model folder or SD .safetensors, or a model name in --models-dir (repeatable; the first is the default; default: the shipped emoji text-to-image model)",
      collect,
    )
    .option("--models-dir <dir>", "offer every model folder and .safetensors checkpoint in this folder")
    .option("--loras-dir <dir>", "offer every .safetensors LoRA in this folder, by file name")
    .option("--tokenizer <dir>", "tokenizer folder for single-file checkpoints (which carry none)")
    .option(
      "--host <address>",
      "address to listen on (beyond loopback needs --api-key or --insecure)",
      "127.0.0.1",
    )
    .option("--port <n>", "port (0: any free one)", "7860")
    .option("--api-key <key>", "require this key on every request (default: $DIFFUSE_API_KEY)")
    .option("--insecure", "allow a non-loopback --host without an API key")
    .option("--cors <origin>", "let browser pages from this origin call the server (default: none)")
    .option("--max-queue <n>", "most jobs waiting; more are answered 429", "16")
    .option("--job-timeout <s>", "seconds a job may run (0: no limit)", "600")
    .option(
      "--redis <url>",
      "queue the jobs on Redis (redis://host:port) for `diffuse worker` processes instead of running them here",
    )
    .option("--queue <name>", "with --redis: the queue's name (the workers' --queue)", "diffuse")
    .option("--result-ttl <s>", "with --redis: seconds results are kept (in Redis and in memory)", "3600")
    .option("--max-width <px>", "largest image width", String(DEFAULT_LIMITS.maxWidth))
    .option("--max-height <px>", "largest image height", String(DEFAULT_LIMITS.maxHeight))
    .option("--max-steps <n>", "most steps", String(DEFAULT_LIMITS.maxSteps))
    .option("--max-batch <n>", "most images drawn together", String(DEFAULT_LIMITS.maxBatch))
    .option("--web <dir>", "serve this built web app at / (npm run build:web makes dist/web)", WEB_APP_DIR)
    .option("--no-web", "serve no web app at /")
    .option("--json", "print the address and job events as JSON lines");
  addDeviceOption(cmd);
  cmd.action((o: ServeCliOptions) => runServe(o));
}
