import type { GenerationRequest, GenerationResult } from "./engine.js";
import type { ServerLimits } from "./limits.js";
import type { ModelCatalog } from "./models.js";
import type { JobQueue } from "./queue.js";

/** What the route modules share: the models, the queue of generation jobs and the request limits. */
export interface ServerContext {
  catalog: ModelCatalog;
  queue: JobQueue<GenerationRequest, GenerationResult>;
  limits: ServerLimits;
}
