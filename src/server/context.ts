import type { GenerationRequest, GenerationResult } from "./engine.js";
import type { ServerLimits } from "./limits.js";
import type { ModelCatalog } from "./models.js";
import type { JobEvent, JobInfo, JobQueue } from "./queue.js";

/** What the route modules share: the models, the queue of generation jobs and the request limits. */
export interface ServerContext {
  catalog: ModelCatalog;
  queue: JobQueue<GenerationRequest, GenerationResult>;
  limits: ServerLimits;
  /** Calls `listener` with every job's events (of every API); returns the function that stops it. */
  observeJobs(listener: (info: JobInfo, event: JobEvent) => void): () => void;
}
