// A worker of `diffuse serve --redis`: takes generation jobs from the Redis queue and runs them through the same
// engine as the in-process queue, on a catalog built from the same options as the server's, so that models and
// LoRAs have the same names on both.
import type { GenerationRequest, GenerationResult } from "./engine.js";
import { runGeneration } from "./engine.js";
import { HttpError } from "./errors.js";
import { generationCodec } from "./job-codec.js";
import { ModelCatalog, type ModelCatalogOptions } from "./models.js";
import type { JobEvent, JobInfo, JobProcessor } from "./queue.js";
import { RedisWorker, type RedisWorkerOptions } from "./redis-queue.js";

/** Options of {@link startGenerationWorker}. */
export interface GenerationWorkerOptions extends RedisWorkerOptions {
  /** The models and LoRAs, as the server's --model / --models-dir / --loras-dir give them. */
  catalog: ModelCatalogOptions;
}

/** A running generation worker and the models it serves. */
export interface GenerationWorker {
  worker: RedisWorker;
  models: string[];
}

/**
 * Starts a worker (throws ServerConfigError for a model path that does not exist or a Redis that does not answer).
 * Each concurrent job gets a catalog of its own (its own copy of a model in memory): a job loads its LoRAs into
 * its model, so two jobs must not share one.
 */
export async function startGenerationWorker(
  opts: GenerationWorkerOptions,
  observer?: (info: JobInfo, event: JobEvent) => void,
): Promise<GenerationWorker> {
  const concurrency = opts.concurrency ?? 1;
  const catalogs = [await ModelCatalog.create(opts.catalog)];
  while (catalogs.length < concurrency) catalogs.push(await ModelCatalog.create(opts.catalog));
  const free = [...catalogs];
  const models = catalogs[0]!.list().map((m) => m.name);
  let workerName = "";
  const processor: JobProcessor<GenerationRequest, GenerationResult> = async (request, ctx) => {
    const catalog = free.pop()!; // BullMQ runs at most `concurrency` jobs at once
    try {
      checkNames(request, catalog, workerName);
      return await runGeneration(request, catalog, ctx);
    } finally {
      free.push(catalog);
    }
  };
  const worker = await RedisWorker.start(processor, generationCodec, opts, observer);
  workerName = worker.name;
  return { worker, models };
}

/** The server named a model or LoRA this worker lacks: it was started with other options (a 500, not the client's fault). */
function checkNames(request: GenerationRequest, catalog: ModelCatalog, worker: string): void {
  const fix = "start the workers with the server's --model, --models-dir and --loras-dir";
  const models = catalog.list().map((m) => m.name);
  if (request.model !== undefined && !models.includes(request.model)) {
    throw new HttpError(
      500,
      `worker ${worker} has no model ${JSON.stringify(request.model)} (it has ${models.join(", ")}); ${fix}`,
    );
  }
  const loras = catalog.loraNames();
  for (const { name } of request.loras) {
    if (!loras.includes(name)) {
      throw new HttpError(
        500,
        `worker ${worker} has no LoRA ${JSON.stringify(name)} (it has ${loras.join(", ") || "none"}); ${fix}`,
      );
    }
  }
}
