// AUTOMATIC1111-compatible endpoints (/sdapi/v1/*) with A1111's request fields and response shapes, so that its
// clients (web front ends, editor plug-ins, bots) work unchanged. txt2img / img2img wait for their job in the same
// queue as our own API and answer with base64 PNGs, the request as `parameters` and `info` as a JSON string.
import type { FastifyInstance, FastifyReply } from "fastify";
import { a1111SamplerName, samplerFromA1111 } from "../pipelines/params.js";
import { SAMPLERS, samplerSpec } from "../schedulers/samplers.js";
import type { ServerContext } from "./context.js";
import { checkRequest, type GenerationRequest } from "./engine.js";
import { HttpError } from "./errors.js";
import { decodeBase64Image } from "./limits.js";
import { errorSchema } from "./schemas.js";

/** The A1111 request fields this server reads (others are accepted and ignored, as A1111 clients send many). */
interface A1111Body {
  prompt?: string;
  negative_prompt?: string;
  steps?: number;
  sampler_name?: string;
  sampler_index?: string;
  scheduler?: string;
  cfg_scale?: number;
  seed?: number;
  width?: number;
  height?: number;
  batch_size?: number;
  n_iter?: number;
  init_images?: string[];
  mask?: string | null;
  denoising_strength?: number;
  override_settings?: { sd_model_checkpoint?: string };
}

const txt2imgProperties = {
  prompt: { type: "string", maxLength: 20000, default: "" },
  negative_prompt: { type: "string", maxLength: 20000 },
  steps: { type: "integer", minimum: 1 },
  sampler_name: { type: "string", description: 'A1111 sampler name, e.g. "DPM++ 2M Karras", "Euler a"' },
  sampler_index: { type: "string", description: "older clients' spelling of sampler_name" },
  scheduler: { type: "string", description: 'A1111 1.9+ schedule type: "Karras" or "Automatic"' },
  cfg_scale: { type: "number", minimum: 0 },
  seed: { type: "integer", minimum: -1, description: "-1: random" },
  width: { type: "integer", minimum: 8 },
  height: { type: "integer", minimum: 8 },
  batch_size: { type: "integer", minimum: 1, default: 1 },
  n_iter: { type: "integer", minimum: 1, default: 1 },
  override_settings: {
    type: "object",
    properties: { sd_model_checkpoint: { type: "string" } },
  },
} as const;

const txt2imgBody = { type: "object", properties: txt2imgProperties } as const;
const img2imgBody = {
  type: "object",
  required: ["init_images"],
  properties: {
    ...txt2imgProperties,
    init_images: { type: "array", minItems: 1, maxItems: 1, items: { type: "string" } },
    mask: { type: ["string", "null"] },
    denoising_strength: { type: "number", minimum: 0, maximum: 1 },
  },
} as const;

const imagesResponse = {
  type: "object",
  properties: {
    images: { type: "array", items: { type: "string", description: "base64 PNG" } },
    parameters: { type: "object", additionalProperties: true },
    info: { type: "string", description: "JSON text: seeds, sampler, infotexts, ..." },
  },
} as const;

/** The A1111 display name of each sampler ("DPM++ 2M Karras", "Euler a", "UniPC", ...). */
function displayName(name: string): string {
  return SAMPLERS.find((s) => s.name === name)?.aka.split(" / ")[0] ?? name;
}

/** Our sampler name of an A1111 sampler_name (+ scheduler), or a 400 listing A1111's names. */
function samplerOf(name: string | undefined, scheduler: string | undefined): string | undefined {
  if (name === undefined || name === "") return undefined;
  try {
    return samplerSpec(samplerFromA1111(name, scheduler)).name;
  } catch {
    const known = SAMPLERS.map((s) => displayName(s.name));
    const found = scheduler
      ? `${JSON.stringify(name)} with scheduler ${JSON.stringify(scheduler)}`
      : JSON.stringify(name);
    throw new HttpError(400, `unknown sampler_name ${found}; known: ${known.join(", ")}`);
  }
}

/** The model name of an A1111 checkpoint title ("name.safetensors [hash]" or "name"). */
function checkpointName(title: string): string {
  return title.replace(/\s*\[[0-9a-f]+\]$/i, "").replace(/\.(safetensors|ckpt)$/i, "");
}

/** A1111's `<lora:name:scale>` prompt tags: taken out of the prompt, applied as LoRAs. */
function takeLoras(prompt: string): { prompt: string; loras: { name: string; scale: number }[] } {
  const loras: { name: string; scale: number }[] = [];
  const rest = prompt.replace(/<lora:([^:>]+)(?::([^:>]*))?>/g, (_, name: string, scale?: string) => {
    const s = scale === undefined || scale === "" ? 1 : Number(scale);
    if (!Number.isFinite(s)) throw new HttpError(400, `<lora:${name}:${scale}>: the scale must be a number`);
    loras.push({ name, scale: s });
    return "";
  });
  return { prompt: rest.replace(/\s+,/g, ",").trim(), loras };
}

function toRequest(body: A1111Body, ctx: ServerContext, img2img: boolean): GenerationRequest {
  const { prompt, loras } = takeLoras(body.prompt ?? "");
  const checkpoint = body.override_settings?.sd_model_checkpoint;
  return {
    model: checkpoint ? checkpointName(checkpoint) : undefined,
    prompt,
    negativePrompt: body.negative_prompt ?? "",
    sampler: samplerOf(body.sampler_name ?? body.sampler_index, body.scheduler),
    steps: body.steps,
    guidance: body.cfg_scale,
    seed: body.seed === undefined || body.seed === -1 ? undefined : body.seed,
    width: body.width,
    height: body.height,
    batchSize: body.batch_size ?? 1,
    iterations: body.n_iter ?? 1,
    initImage: img2img ? decodeBase64Image(body.init_images![0]!, "init_images[0]", ctx.limits) : undefined,
    mask: img2img && body.mask ? decodeBase64Image(body.mask, "mask", ctx.limits) : undefined,
    strength: img2img ? (body.denoising_strength ?? 0.75) : undefined,
    loras,
  };
}

/** Registers the /sdapi/v1 routes. */
export function registerA1111(app: FastifyInstance, ctx: ServerContext): void {
  // the job /sdapi/v1/interrupt stopped, so /progress can say "interrupted" until the next one starts
  let interrupted: string | null = null;

  const generate = async (body: A1111Body, img2img: boolean, reply: FastifyReply) => {
    const request = toRequest(body, ctx, img2img);
    checkRequest(request, ctx.catalog, ctx.limits);
    const job = ctx.queue.submit(request);
    // a client that hangs up does not leave its job running for nobody
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) ctx.queue.cancel(job.id);
    });
    const info = await ctx.queue.wait(job.id);
    const parameters = { ...body, ...(img2img && { init_images: null, mask: null }) };
    if (info.status === "error") throw new HttpError(info.error!.status, info.error!.message);
    if (info.status === "cancelled") {
      return { images: [], parameters, info: JSON.stringify({ interrupted: true, infotexts: [] }) };
    }
    const result = ctx.queue.result(job.id)!;
    const s = result.settings;
    const n = result.images.length;
    const stamp = new Date(info.startedAt ?? info.createdAt).toISOString().replace(/\D/g, "").slice(0, 14);
    const a1111Info = {
      prompt: s.prompt,
      all_prompts: Array(n).fill(s.prompt),
      negative_prompt: s.negativePrompt,
      all_negative_prompts: Array(n).fill(s.negativePrompt),
      seed: result.images[0]?.seed,
      all_seeds: result.images.map((im) => im.seed),
      subseed: -1,
      all_subseeds: Array(n).fill(-1),
      subseed_strength: 0,
      width: s.width,
      height: s.height,
      sampler_name: displayName(s.sampler),
      scheduler: a1111SamplerName(s.sampler).schedule ?? "Automatic",
      cfg_scale: s.guidanceScale,
      steps: s.steps,
      batch_size: request.batchSize,
      restore_faces: false,
      sd_model_name: result.model,
      sd_model_hash: s.modelHash ?? null,
      seed_resize_from_w: -1,
      seed_resize_from_h: -1,
      denoising_strength: s.strength ?? 0,
      extra_generation_params: {},
      index_of_first_image: 0,
      infotexts: result.images.map((im) => im.parameters),
      styles: [],
      job_timestamp: stamp,
      clip_skip: (s.clipSkip ?? 0) + 1,
      is_using_inpainting_conditioning: false,
      warnings: result.warnings,
    };
    return {
      images: result.images.map((im) => im.png.toString("base64")),
      parameters,
      info: JSON.stringify(a1111Info),
    };
  };

  const responses = { 200: imagesResponse, "4xx": errorSchema };
  app.post<{ Body: A1111Body }>(
    "/sdapi/v1/txt2img",
    {
      schema: { summary: "A1111 text-to-image (waits for the job)", body: txt2imgBody, response: responses },
    },
    async (request, reply) => generate(request.body, false, reply),
  );
  app.post<{ Body: A1111Body }>(
    "/sdapi/v1/img2img",
    {
      schema: {
        summary: "A1111 img2img / inpainting (waits for the job)",
        body: img2imgBody,
        response: responses,
      },
    },
    async (request, reply) => generate(request.body, true, reply),
  );
  app.get("/sdapi/v1/progress", { schema: { summary: "A1111 progress of the running job" } }, async () => {
    const { running, queued } = ctx.queue.stats();
    const p = running?.progress;
    return {
      progress: p && p.total > 0 ? p.step / p.total : 0,
      eta_relative: p?.etaSeconds ?? 0,
      state: {
        skipped: false,
        interrupted: running !== null && running.id === interrupted,
        job: running ? `job ${running.id}` : "",
        job_count: (running ? 1 : 0) + queued,
        job_timestamp: running
          ? new Date(running.startedAt!).toISOString().replace(/\D/g, "").slice(0, 14)
          : "0",
        job_no: 0,
        sampling_step: p?.step ?? 0,
        sampling_steps: p?.total ?? 0,
      },
      current_image: null,
      textinfo: null,
    };
  });
  app.post(
    "/sdapi/v1/interrupt",
    { schema: { summary: "A1111: stop the running job between steps" } },
    async () => {
      const running = ctx.queue.stats().running;
      if (running && ctx.queue.cancel(running.id)) interrupted = running.id;
      return {};
    },
  );
  app.get("/sdapi/v1/samplers", { schema: { summary: "A1111 sampler list" } }, async () =>
    SAMPLERS.map((s) => {
      const [name, ...others] = s.aka.split(" / ");
      return {
        name: name!,
        aliases: [s.name, ...others],
        options: name!.endsWith(" Karras") ? { scheduler: "karras" } : {},
      };
    }),
  );
  app.get("/sdapi/v1/sd-models", { schema: { summary: "A1111 checkpoint list" } }, async () =>
    ctx.catalog.list().map((m) => ({
      title: m.name,
      model_name: m.name,
      hash: null,
      sha256: null,
      filename: m.name,
      config: null,
    })),
  );
  app.get("/sdapi/v1/loras", { schema: { summary: "A1111 LoRA list" } }, async () =>
    ctx.catalog.loraNames().map((name) => ({ name, alias: name, path: name, metadata: {} })),
  );
  app.get(
    "/sdapi/v1/options",
    { schema: { summary: "A1111 options (the default checkpoint)" } },
    async () => ({
      sd_model_checkpoint: ctx.catalog.defaultModel,
      samples_format: "png",
    }),
  );
  app.post<{ Body: { sd_model_checkpoint?: string } }>(
    "/sdapi/v1/options",
    {
      schema: {
        summary: "A1111 options: sd_model_checkpoint switches the default model (other keys are ignored)",
        body: { type: "object", properties: { sd_model_checkpoint: { type: "string" } } },
      },
    },
    async (request) => {
      const checkpoint = request.body.sd_model_checkpoint;
      if (checkpoint !== undefined) ctx.catalog.setDefault(checkpointName(checkpoint));
      return {};
    },
  );
}
