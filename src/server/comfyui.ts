// ComfyUI-compatible endpoints, so that ComfyUI's clients (scripts, bots, editor plug-ins) can drive this server.
// POST /prompt takes an API-format workflow of the core text-to-image / img2img nodes, reads it as one
// GenerationRequest (comfyui-workflow.ts) and queues it with the other APIs' jobs; the WebSocket (comfyui-ws.ts)
// reports it in ComfyUI's messages; /history, /view, /upload/image, /queue, /interrupt, /object_info and
// /system_stats answer in ComfyUI's shapes. Prompts are kept as long as the queue keeps their job.
import { randomUUID } from "node:crypto";
import { freemem, platform, totalmem } from "node:os";
import type { FastifyInstance } from "fastify";
import { decodeImage, ImageError } from "../io/image.js";
import { packageVersion } from "../io/package-version.js";
import { ComfyImages, registerImageRoutes } from "./comfyui-files.js";
import { nodeSpecs, objectInfo } from "./comfyui-nodes.js";
import { ComfyPrompts } from "./comfyui-prompts.js";
import { show, WorkflowError } from "./comfyui-validate.js";
import { planWorkflow, type WorkflowEnvironment } from "./comfyui-workflow.js";
import { ComfySockets } from "./comfyui-ws.js";
import type { ServerContext } from "./context.js";
import { HttpError } from "./errors.js";
import { decodeBase64Image } from "./limits.js";

/** The body of POST /prompt (fields ComfyUI clients send besides these are accepted and ignored). */
interface PromptBody {
  prompt: unknown;
  client_id?: string;
  prompt_id?: string;
  extra_data?: Record<string, unknown>;
}

const promptBody = {
  type: "object",
  required: ["prompt"],
  properties: {
    prompt: { type: "object", description: 'API-format workflow: { "<node id>": { class_type, inputs } }' },
    client_id: {
      type: "string",
      maxLength: 128,
      description: "the /ws clientId that gets this prompt's messages",
    },
    prompt_id: { type: "string", pattern: "^[\\w-]{1,64}$", description: "default: a fresh UUID" },
    extra_data: { type: "object", description: "kept in /history" },
    front: { type: "boolean", description: "accepted, ignored: jobs run in order" },
    number: { type: "number", description: "accepted, ignored" },
  },
} as const;

/** Registers the ComfyUI routes and the /ws WebSocket. */
export async function registerComfyUI(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const images = new ComfyImages();
  const queueRemaining = () => {
    const { running, queued } = ctx.queue.stats();
    return queued + (running?.status === "running" ? 1 : 0);
  };
  const sockets = new ComfySockets(queueRemaining, (clientId) => prompts.onConnect(clientId));
  const prompts = new ComfyPrompts(ctx, sockets, images);
  ctx.observeJobs((info, event) => prompts.onJobEvent(info, event));

  const env: WorkflowEnvironment = {
    catalog: ctx.catalog,
    limits: ctx.limits,
    imageNames: () => images.names(),
    loadImage: (value) => {
      const bytes = images.find(value);
      try {
        if (bytes) return decodeImage(bytes);
        if (value.startsWith("data:") || (value.length > 200 && /^[A-Za-z0-9+/=\s_-]+$/.test(value))) {
          return decodeBase64Image(value, "image", ctx.limits);
        }
      } catch (err) {
        if (err instanceof HttpError || err instanceof ImageError) return { error: err.message };
        throw err;
      }
      return {
        error: `image ${show(value)} is not an image sent to /upload/image, one this server made ("name.png [output]") or a base64 PNG / JPEG`,
      };
    },
  };

  await app.register(async (scope) => {
    // ComfyUI clients POST /interrupt, /queue, ... with a JSON content type and no body
    const parseJson = scope.getDefaultJsonParser("error", "error");
    scope.removeContentTypeParser("application/json");
    scope.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) =>
      body === "" ? done(null, undefined) : parseJson(request, body as string, done),
    );
    sockets.register(scope);
    registerImageRoutes(scope, images, ctx.limits);

    scope.post<{ Body: PromptBody }>(
      "/prompt",
      {
        schema: {
          summary: "ComfyUI: queue an API-format workflow; answers { prompt_id, number, node_errors }",
          body: promptBody,
        },
        attachValidation: true,
      },
      async (request, reply) => {
        try {
          const body = request.body;
          if (request.validationError) {
            const v = request.validationError.validation?.[0] as
              | { instancePath?: string; data?: unknown }
              | undefined;
            const where = `body${(v?.instancePath ?? "").replace(/\//g, ".")}`;
            throw new WorkflowError({
              type: body?.prompt === undefined ? "no_prompt" : "invalid_prompt",
              message: `${where} ${request.validationError.message.replace(/^body\S* /, "")} (found ${show(v?.data)})`,
              details: "",
              extra_info: {},
            });
          }
          const plan = planWorkflow(body.prompt, env);
          const id = body.prompt_id ?? randomUUID();
          if (prompts.has(id)) {
            throw new WorkflowError({
              type: "invalid_prompt",
              message: `prompt_id "${id}" is taken`,
              details: "",
              extra_info: {},
            });
          }
          const job = ctx.queue.submit(plan.request);
          const { number } = prompts.add(id, job.id, body, plan);
          return { prompt_id: id, number, node_errors: {} };
        } catch (err) {
          if (err instanceof WorkflowError) return reply.code(400).send(err.body());
          throw err;
        }
      },
    );
    scope.get("/prompt", { schema: { summary: "ComfyUI: the queue length" } }, async () => ({
      exec_info: { queue_remaining: queueRemaining() },
    }));
    scope.get("/queue", { schema: { summary: "ComfyUI: the running and waiting prompts" } }, async () => ({
      queue_running: prompts.list("running").map(ComfyPrompts.queueItem),
      queue_pending: prompts.list("pending").map(ComfyPrompts.queueItem),
    }));
    scope.post<{ Body: { clear?: boolean; delete?: string[] } | undefined }>(
      "/queue",
      {
        schema: {
          summary:
            "ComfyUI: take waiting prompts off the queue ({ delete: [prompt ids] } or { clear: true })",
        },
      },
      async (request) => {
        const { clear, delete: listed } = request.body ?? {};
        const ids: unknown[] = Array.isArray(listed) ? listed : [];
        for (const r of prompts.list("pending")) {
          if (clear === true || ids.includes(r.id)) ctx.queue.cancel(r.jobId);
        }
        return {};
      },
    );
    scope.post<{ Body: { prompt_id?: string } | undefined }>(
      "/interrupt",
      {
        schema: {
          summary: "ComfyUI: stop the running job between steps (only that prompt, with { prompt_id })",
        },
      },
      async (request, reply) => {
        const running = ctx.queue.stats().running;
        const only = request.body?.prompt_id;
        if (running && (only === undefined || prompts.jobOf(only) === running.id))
          ctx.queue.cancel(running.id);
        return reply.code(200).send();
      },
    );
    scope.get<{ Querystring: { max_items?: number; offset?: number } }>(
      "/history",
      {
        schema: {
          summary: "ComfyUI: finished prompts with their outputs (the last max_items, or from offset)",
          querystring: {
            type: "object",
            properties: {
              max_items: { type: "integer", minimum: 1 },
              offset: { type: "integer", minimum: 0 },
            },
          },
        },
      },
      async (request) => {
        const { max_items, offset } = request.query;
        const all = prompts.list("finished");
        const from = offset ?? (max_items === undefined ? 0 : Math.max(0, all.length - max_items));
        const picked = all.slice(from, max_items === undefined ? undefined : from + max_items);
        return Object.fromEntries(picked.map((r) => [r.id, ComfyPrompts.historyEntry(r)]));
      },
    );
    scope.get<{ Params: { prompt_id: string } }>(
      "/history/:prompt_id",
      { schema: { summary: "ComfyUI: one finished prompt ({} while it waits or runs, or once dropped)" } },
      async (request) => {
        const r = prompts.list("finished").find((p) => p.id === request.params.prompt_id);
        return r ? { [r.id]: ComfyPrompts.historyEntry(r) } : {};
      },
    );
    scope.post<{ Body: { clear?: boolean; delete?: string[] } | undefined }>(
      "/history",
      {
        schema: {
          summary: "ComfyUI: forget finished prompts and their images ({ delete: [ids] } or { clear: true })",
        },
      },
      async (request) => {
        const { clear, delete: listed } = request.body ?? {};
        const ids: unknown[] = Array.isArray(listed) ? listed : [];
        for (const r of prompts.list("finished")) if (clear === true || ids.includes(r.id)) prompts.forget(r);
        return {};
      },
    );
    scope.get(
      "/object_info",
      { schema: { summary: "ComfyUI: the nodes this server runs, with their inputs" } },
      async () =>
        Object.fromEntries(
          Object.entries(nodeSpecs(env)).map(([name, spec]) => [name, objectInfo(name, spec)]),
        ),
    );
    scope.get<{ Params: { node_class: string } }>(
      "/object_info/:node_class",
      { schema: { summary: "ComfyUI: one node class ({} when this server has no such node)" } },
      async (request) => {
        const name = request.params.node_class;
        const specs = nodeSpecs(env);
        return Object.hasOwn(specs, name) ? { [name]: objectInfo(name, specs[name]!) } : {};
      },
    );
    scope.get("/system_stats", { schema: { summary: "ComfyUI: this server and its device" } }, async () => {
      const device = ctx.catalog.options.device ?? "cpu";
      return {
        system: {
          os: platform(),
          ram_total: totalmem(),
          ram_free: freemem(),
          comfyui_version: `diffuse ${packageVersion()}`,
          python_version: "",
          pytorch_version: "",
          embedded_python: false,
          argv: [], // not the command line: it may hold the API key
        },
        devices: [
          {
            name: device,
            type: device.split(":")[0],
            index: 0,
            vram_total: 0,
            vram_free: 0,
            torch_vram_total: 0,
            torch_vram_free: 0,
          },
        ],
      };
    });
  });
}
