// The server's own API under /api/v1: submit a generation (202 + job id), follow it (status, Server-Sent Events),
// cancel it, fetch its PNGs; list models, samplers and LoRAs. Every route has a JSON schema (validation, and the
// OpenAPI document of openapi.ts).
import type { FastifyInstance, FastifyReply } from "fastify";
import { SAMPLERS } from "../schedulers/samplers.js";
import type { ServerContext } from "./context.js";
import { checkRequest, type GenerationRequest } from "./engine.js";
import { HttpError } from "./errors.js";
import { decodeBase64Image } from "./limits.js";
import type { JobEvent, JobInfo } from "./queue.js";
import { errorSchema, jobIdParams, jobSchema } from "./schemas.js";

/** The body of POST /api/v1/generate. */
interface GenerateBody {
  model?: string;
  prompt: string;
  negative_prompt?: string;
  sampler?: string;
  steps?: number;
  guidance?: number;
  seed?: number;
  width?: number;
  height?: number;
  num_images?: number;
  init_image?: string;
  mask?: string;
  strength?: number;
  loras?: { name: string; scale?: number }[];
}

const generateBody = {
  type: "object",
  required: ["prompt"],
  additionalProperties: false,
  properties: {
    model: { type: "string", description: "model name (GET /api/v1/models); default: the server's default" },
    prompt: {
      type: "string",
      maxLength: 20000,
      description: "text; a class number for class-conditional models",
    },
    negative_prompt: { type: "string", maxLength: 20000 },
    sampler: { type: "string", description: "sampler name (GET /api/v1/samplers); default: the model's" },
    steps: { type: "integer", minimum: 1 },
    guidance: { type: "number", minimum: 0, description: "classifier-free guidance scale" },
    seed: { type: "integer", minimum: -1, description: "seed of the first image; -1 or absent: random" },
    width: { type: "integer", minimum: 8 },
    height: { type: "integer", minimum: 8 },
    num_images: { type: "integer", minimum: 1, default: 1 },
    init_image: { type: "string", description: "img2img / inpainting source: base64 PNG or JPEG" },
    mask: { type: "string", description: "inpainting mask (white = repaint), base64 PNG or JPEG" },
    strength: {
      type: "number",
      minimum: 0,
      maximum: 1,
      description: "how much of the init image to repaint",
    },
    loras: {
      type: "array",
      maxItems: 16,
      items: {
        type: "object",
        required: ["name"],
        additionalProperties: false,
        properties: { name: { type: "string" }, scale: { type: "number", default: 1 } },
      },
    },
  },
} as const;

/** Our request body as the engine's request (images decoded after their headers are checked). */
function toRequest(body: GenerateBody, ctx: ServerContext): GenerationRequest {
  return {
    model: body.model,
    prompt: body.prompt,
    negativePrompt: body.negative_prompt ?? "",
    sampler: body.sampler,
    steps: body.steps,
    guidance: body.guidance,
    seed: body.seed === undefined || body.seed === -1 ? undefined : body.seed,
    width: body.width,
    height: body.height,
    batchSize: body.num_images ?? 1,
    iterations: 1,
    initImage: body.init_image ? decodeBase64Image(body.init_image, "init_image", ctx.limits) : undefined,
    mask: body.mask ? decodeBase64Image(body.mask, "mask", ctx.limits) : undefined,
    strength: body.strength,
    loras: (body.loras ?? []).map((l) => ({ name: l.name, scale: l.scale ?? 1 })),
  };
}

/** The job as GET /api/v1/jobs/:id shows it, with links to its images once done. */
export function jobView(ctx: ServerContext, info: JobInfo): Record<string, unknown> {
  const result = ctx.queue.result(info.id);
  return {
    ...info,
    ...(result && {
      result: {
        model: result.model,
        warnings: result.warnings,
        images: result.images.map((im, n) => ({
          url: `/api/v1/jobs/${info.id}/images/${n}.png`,
          seed: im.seed,
          parameters: im.parameters,
        })),
      },
    }),
  };
}

function jobOr404(ctx: ServerContext, id: string): JobInfo {
  const info = ctx.queue.get(id);
  if (!info) throw new HttpError(404, `no job ${id} (finished jobs are kept for a while, then dropped)`);
  return info;
}

/** Registers the /api/v1 routes. */
export function registerApi(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: GenerateBody }>(
    "/api/v1/generate",
    {
      schema: {
        summary: "Queue a generation (text-to-image, img2img, inpainting)",
        body: generateBody,
        response: { 202: jobSchema, "4xx": errorSchema },
      },
    },
    async (request, reply) => {
      const info = ctx.queue.submit(checked(ctx, toRequest(request.body, ctx)));
      return reply.code(202).header("location", `/api/v1/jobs/${info.id}`).send(jobView(ctx, info));
    },
  );
  app.get<{ Params: { id: string } }>(
    "/api/v1/jobs/:id",
    {
      schema: {
        summary: "A job's status, progress and images",
        params: jobIdParams,
        response: { 200: jobSchema },
      },
    },
    async (request) => jobView(ctx, jobOr404(ctx, request.params.id)),
  );
  app.post<{ Params: { id: string } }>(
    "/api/v1/jobs/:id/cancel",
    { schema: { summary: "Cancel a queued or running job (between steps)", params: jobIdParams } },
    async (request) => {
      const info = jobOr404(ctx, request.params.id);
      if (!ctx.queue.cancel(info.id))
        throw new HttpError(409, `job ${info.id} has already finished (${info.status})`);
      return { id: info.id, cancelled: true };
    },
  );
  app.get<{ Params: { id: string; file: string } }>(
    "/api/v1/jobs/:id/images/:file",
    {
      schema: {
        summary: "An image of a finished job: PNG with A1111's parameters chunk",
        params: {
          type: "object",
          required: ["id", "file"],
          properties: {
            id: jobIdParams.properties.id,
            file: { type: "string", pattern: "^[0-9]{1,4}\\.png$" },
          },
        },
      },
    },
    async (request, reply) => {
      const info = jobOr404(ctx, request.params.id);
      const images = ctx.queue.result(info.id)?.images;
      if (!images) throw new HttpError(409, `job ${info.id} has no images (status ${info.status})`);
      const n = Number.parseInt(request.params.file, 10);
      const image = images[n];
      if (!image) throw new HttpError(404, `job ${info.id} has images 0..${images.length - 1}, not ${n}`);
      return reply.type("image/png").send(image.png);
    },
  );
  app.get<{ Params: { id: string } }>(
    "/api/v1/jobs/:id/events",
    {
      schema: {
        summary:
          "Server-Sent Events: queued, started, progress (step, total, etaSeconds), done, error, cancelled",
        params: jobIdParams,
      },
    },
    async (request, reply) => {
      streamEvents(ctx, jobOr404(ctx, request.params.id), reply);
      return reply;
    },
  );
  app.get("/api/v1/models", { schema: { summary: "The models, the default first" } }, async () =>
    ctx.catalog.list().map((m) => ({
      name: m.name,
      kind: m.kind,
      default: m.name === ctx.catalog.defaultModel,
      ...(m.classes !== undefined && { classes: m.classes, width: m.size!.width, height: m.size!.height }),
    })),
  );
  app.get("/api/v1/samplers", { schema: { summary: "The sampler names" } }, async () =>
    SAMPLERS.map((s) => ({ name: s.name, a1111: s.aka.split(" / ")[0], description: s.description })),
  );
  app.get("/api/v1/loras", { schema: { summary: "The LoRA names" } }, async () =>
    ctx.catalog.loraNames().map((name) => ({ name })),
  );
}

/** Checks a request before it is queued (400s), then hands it on. */
function checked(ctx: ServerContext, req: GenerationRequest): GenerationRequest {
  checkRequest(req, ctx.catalog, ctx.limits);
  return req;
}

/** Writes a job's events as Server-Sent Events until it finishes or the client goes away. */
function streamEvents(ctx: ServerContext, info: JobInfo, reply: FastifyReply): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  let ended = false;
  const send = (event: JobEvent) => {
    if (ended) return;
    const { type, ...data } = event;
    res.write(`event: ${type}\ndata: ${JSON.stringify({ id: info.id, ...data })}\n\n`);
    if (type === "done" || type === "error" || type === "cancelled") {
      ended = true;
      unsubscribe();
      res.end();
    }
  };
  // subscribe first, then replay the current state, so no event falls between the two
  const unsubscribe = ctx.queue.subscribe(info.id, send);
  res.on("close", unsubscribe);
  const now = ctx.queue.get(info.id) ?? info;
  if (now.status === "queued") send({ type: "queued", position: now.position ?? 0 });
  else if (now.status === "running") {
    send({ type: "started" });
    if (now.progress.total > 0) send({ type: "progress", ...now.progress });
  } else if (now.status === "error") send({ type: "error", ...now.error! });
  else send({ type: now.status });
}
