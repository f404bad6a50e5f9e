// `diffuse serve`'s HTTP server (fastify): our API under /api/v1, A1111's under /sdapi/v1, ComfyUI's (/prompt, /ws,
// /history, ...), the OpenAPI document at /openapi.json, one job queue: in this process, or on Redis with the jobs
// run by `diffuse worker` processes (redis-queue.ts, loaded only then). Safe by default: loopback only
// unless an API key (or --insecure) is given, the key checked on every route (the WebSocket's upgrade request
// too), bounded bodies, checked input images, CORS off unless an origin is named.
import { createHash, timingSafeEqual } from "node:crypto";
import { STATUS_CODES } from "node:http";
import cors from "@fastify/cors";
import websocket from "@fastify/websocket";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import { packageVersion } from "../io/package-version.js";
import { registerA1111 } from "./a1111.js";
import { registerApi } from "./api.js";
import { registerComfyUI } from "./comfyui.js";
import type { ServerContext } from "./context.js";
import { type GenerationRequest, type GenerationResult, runGeneration } from "./engine.js";
import { HttpError, ServerConfigError } from "./errors.js";
import { DEFAULT_LIMITS, type ServerLimits } from "./limits.js";
import type { ModelCatalog } from "./models.js";
import { collectOpenApi } from "./openapi.js";
import { type JobEvent, type JobInfo, type JobQueue, MemoryQueue } from "./queue.js";
import type { RedisTarget } from "./redis-queue.js";
import { isWebAppRequest, registerWebApp } from "./web-app.js";

/** Options of {@link createServer}. */
export interface ServerOptions {
  catalog: ModelCatalog;
  limits?: Partial<ServerLimits>;
  /** Required on every request (Authorization: Bearer KEY, or x-api-key: KEY) when set. */
  apiKey?: string;
  /** The one origin browsers may call from (CORS); none when absent. */
  cors?: string;
  /** Most jobs waiting (429 beyond). Default 16. */
  maxQueue?: number;
  /** Seconds a job may run. Default 600. */
  jobTimeoutSeconds?: number;
  /** Finished jobs kept with their images. Default 100. */
  maxFinished?: number;
  /** Sees every job event (the CLI shows them). */
  onJobEvent?: (info: JobInfo, event: JobEvent) => void;
  /** The built web app (`npm run build:web`: dist/web) to serve at `/`; none when absent. */
  web?: string;
  /** Queue the jobs on Redis for `diffuse worker` processes instead of running them here. */
  redis?: RedisTarget & {
    /** Seconds results are kept (in Redis, and finished jobs here). Default 3600. */
    resultTtlSeconds?: number;
  };
}

/** A server made by {@link createServer}. */
export interface DiffuseServer {
  app: FastifyInstance;
  queue: JobQueue<GenerationRequest, GenerationResult>;
  /** Starts listening; resolves to the base URL. */
  listen(host: string, port: number): Promise<string>;
  /** Stops the running job, then the server. */
  close(): Promise<void>;
}

/** True for the loopback addresses (only this machine can connect). */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Refuses to bind beyond loopback without an API key, unless `insecure` says that is meant. */
export function checkBind(host: string, apiKey: string | undefined, insecure: boolean): void {
  if (isLoopback(host) || apiKey || insecure) return;
  throw new ServerConfigError(
    `--host ${host} lets other machines connect, and no --api-key was given: anyone who reaches the port could run jobs; add --api-key KEY (clients send "Authorization: Bearer KEY"), or --insecure if that is really meant`,
  );
}

/** "body.steps must be <= 150 (found 1000)": what fastify's validator said, with the value it found. */
function validationMessage(err: FastifyError): string {
  const where = err.validationContext ?? "request";
  return (err.validation ?? [])
    .map((v) => {
      const e = v as typeof v & { data?: unknown };
      const path = `${where}${e.instancePath.replace(/\//g, ".")}`;
      const params = e.params as Record<string, unknown>;
      if (e.keyword === "additionalProperties") {
        return `${path} has an unknown field ${JSON.stringify(params.additionalProperty)}`;
      }
      if (e.keyword === "required")
        return `${path} must have the field ${JSON.stringify(params.missingProperty)}`;
      const found = JSON.stringify(e.data);
      const shown =
        found === undefined ? "" : ` (found ${found.length > 60 ? `${found.slice(0, 60)}...` : found})`;
      return `${path} ${e.message}${shown}`;
    })
    .join("; ");
}

/** Builds the server (not yet listening). */
export async function createServer(opts: ServerOptions): Promise<DiffuseServer> {
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const app = Fastify({
    bodyLimit: limits.bodyLimit,
    logger: false,
    // unknown fields of our API are errors (not silently dropped); `verbose` keeps the value found for messages
    ajv: { customOptions: { removeAdditional: false, verbose: true } },
  });
  const openapi = collectOpenApi(app, { title: "diffuse serve", version: packageVersion() });
  // before the API key hook: the plugin's hooks then see every upgrade request, and close the socket of one that
  // is answered over HTTP (a 401 too) instead of leaving it half open
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  if (opts.cors) await app.register(cors, { origin: opts.cors });
  if (opts.apiKey) {
    const want = createHash("sha256").update(opts.apiKey).digest();
    app.addHook("onRequest", async (request, reply) => {
      if (opts.cors && request.method === "OPTIONS") return; // CORS preflights carry no credentials
      if (isWebAppRequest(request)) return; // the page's own files (its API calls carry the key)
      const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "")?.[1];
      const given = bearer ?? request.headers["x-api-key"];
      if (typeof given !== "string") {
        reply.header("www-authenticate", "Bearer");
        throw new HttpError(401, "an API key is required: send Authorization: Bearer KEY or x-api-key: KEY");
      }
      // compare digests: same length, constant time
      if (!timingSafeEqual(createHash("sha256").update(given).digest(), want)) {
        throw new HttpError(401, "wrong API key");
      }
    });
  }
  app.setErrorHandler((err: FastifyError, _request, reply) => {
    let status = err instanceof HttpError ? err.status : (err.statusCode ?? 500);
    let message = err.message;
    if (err.validation) {
      status = 400;
      message = validationMessage(err);
    }
    if (status >= 500) message = `internal error: ${message}`;
    return reply.code(status).send({ error: STATUS_CODES[status] ?? "Error", message });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: STATUS_CODES[404],
      message: `no route ${request.method} ${request.url.split("?")[0]}; the routes are listed at /openapi.json`,
    }),
  );
  const jobObservers = new Set<(info: JobInfo, event: JobEvent) => void>();
  if (opts.onJobEvent) jobObservers.add(opts.onJobEvent);
  const queueOptions = {
    maxQueue: opts.maxQueue,
    jobTimeoutSeconds: opts.jobTimeoutSeconds,
    maxFinished: opts.maxFinished,
  };
  const observe = (info: JobInfo, event: JobEvent) => {
    for (const observer of jobObservers) observer(info, event);
  };
  let queue: JobQueue<GenerationRequest, GenerationResult>;
  if (opts.redis) {
    const [{ RedisQueue }, { generationCodec }] = await Promise.all([
      import("./redis-queue.js"),
      import("./job-codec.js"),
    ]);
    const codec = {
      ...generationCodec,
      // the model is named now: the workers' default model may differ from this server's current default
      encodeRequest: (request: GenerationRequest) =>
        generationCodec.encodeRequest({ ...request, model: request.model ?? opts.catalog.defaultModel }),
    };
    queue = await RedisQueue.connect(codec, { ...opts.redis, ...queueOptions }, observe);
  } else {
    queue = new MemoryQueue<GenerationRequest, GenerationResult>(
      (request, ctx) => runGeneration(request, opts.catalog, ctx),
      queueOptions,
      observe,
    );
  }
  const ctx: ServerContext = {
    catalog: opts.catalog,
    queue,
    limits,
    observeJobs: (listener) => {
      jobObservers.add(listener);
      return () => jobObservers.delete(listener);
    },
  };
  registerApi(app, ctx);
  registerA1111(app, ctx);
  await registerComfyUI(app, ctx);
  app.get("/openapi.json", { schema: { summary: "This document" } }, async () => openapi.document());
  if (opts.web) await registerWebApp(app, opts.web);
  return {
    app,
    queue,
    async listen(host, port) {
      await app.listen({ host, port });
      const address = app.server.address();
      const boundPort = typeof address === "object" && address ? address.port : port;
      return `http://${host.includes(":") ? `[${host}]` : host}:${boundPort}`;
    },
    async close() {
      await queue.close();
      await app.close();
    },
  };
}
