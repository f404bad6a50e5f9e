/**
 * `diffuse worker`: runs the jobs of a `diffuse serve --redis` server, from the same Redis, with the same model
 * options as the server (models and LoRAs are named alike). Any number of workers, on any machine. SIGTERM (or
 * Ctrl-C) lets the running job finish, then exits 0; a second one puts the job back in the queue for another worker.
 */
import type { Command } from "commander";
import { ServerConfigError } from "../server/errors.js";
import { redactUrl } from "../server/redis-url.js";
import { addDeviceOption, resolveDevice } from "./device-option.js";
import { CliError } from "./errors.js";
import { cliInt, cliNumber } from "./option-values.js";
import { jobLogger, redisErrorLogger } from "./serve.js";

/** Options of `diffuse worker`, as commander parses them. */
export interface WorkerCliOptions {
  redis: string;
  queue: string;
  model?: string[];
  modelsDir?: string;
  lorasDir?: string;
  tokenizer?: string;
  concurrency: string;
  lockDuration: string;
  stalledInterval: string;
  device?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Starts a worker and resolves once it has stopped (SIGINT / SIGTERM). */
export async function runWorker(o: WorkerCliOptions): Promise<void> {
  const concurrency = cliInt("concurrency", o.concurrency, 1);
  const lockDurationSeconds = cliNumber("lock-duration", o.lockDuration, 0.1);
  const stalledIntervalSeconds = cliNumber("stalled-interval", o.stalledInterval, 0.1);
  const device = await resolveDevice(o.device, (text) => {
    if (!o.json) process.stderr.write(`diffuse: warning: ${text}\n`);
  });
  // loaded here, not with the CLI: BullMQ is only needed by this command and serve --redis
  const { startGenerationWorker } = await import("../server/worker.js");
  const log = jobLogger(o.json);
  let started: Awaited<ReturnType<typeof startGenerationWorker>>;
  try {
    started = await startGenerationWorker(
      {
        url: o.redis,
        queueName: o.queue,
        concurrency,
        lockDurationSeconds,
        stalledIntervalSeconds,
        onError: redisErrorLogger(o.json),
        catalog: {
          models: o.model,
          modelsDir: o.modelsDir,
          lorasDir: o.lorasDir,
          tokenizer: o.tokenizer,
          device,
        },
      },
      log,
    );
  } catch (err) {
    if (err instanceof ServerConfigError) throw new CliError(err.message);
    throw err;
  }
  const { worker, models } = started;
  const redis = redactUrl(o.redis);
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ type: "worker", name: worker.name, redis, queue: o.queue, models, concurrency })}\n`,
    );
  } else {
    process.stderr.write(
      `diffuse: worker ${worker.name} runs jobs of queue "${o.queue}" on ${redis} with ${models.join(", ")} (${concurrency} at a time)\n`,
    );
  }
  await new Promise<void>((resolve) => {
    let signals = 0;
    const stop = () => {
      signals += 1;
      if (signals === 1) {
        if (!o.json)
          process.stderr.write("diffuse: finishing the running job, then stopping (again: put it back)\n");
        worker.close().then(resolve, resolve);
      } else {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        worker.requeueAndClose().then(resolve, resolve);
      }
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  if (o.json) process.stdout.write(`${JSON.stringify({ type: "stopped", name: worker.name })}\n`);
}

/** Adds `worker` to the program. */
export function registerWorker(program: Command): void {
  const cmd = program
    .command("worker")
    .description(
      "run the jobs of `diffuse serve --redis` servers: give it the same --redis, --queue and model options as the server",
    )
    .requiredOption("--redis <url>", "the server's Redis (redis://host:port)")
    .option("--queue <name>", "the queue's name (the server's --queue)", "diffuse")
    .option(
      "--model <name-or-path>",
      "model folder or SD .safetensors, or a model name in --models-dir (repeatable; as the server's)",
      collect,
    )
    .option("--models-dir <dir>", "offer every model folder and .safetensors checkpoint in this folder")
    .option("--loras-dir <dir>", "offer every .safetensors LoRA in this folder, by file name")
    .option("--tokenizer <dir>", "tokenizer folder for single-file checkpoints (which carry none)")
    .option("--concurrency <n>", "jobs run at once (each with its own copy of its model in memory)", "1")
    .option(
      "--lock-duration <s>",
      "seconds a job stays with a worker that stopped answering before another worker takes it over (the lock is renewed between steps: keep it above the longest step)",
      "30",
    )
    .option("--stalled-interval <s>", "seconds between checks for jobs of workers that died", "30")
    .option("--json", "print the worker's start and its job events as JSON lines");
  addDeviceOption(cmd);
  cmd.action((o: WorkerCliOptions) => runWorker(o));
}
