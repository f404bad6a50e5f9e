// Generation on a `diffuse serve` server through its own API: POST /api/v1/generate, the job's Server-Sent Events
// (read with fetch, so that an API key can go in a header), cancel, and the finished PNGs (with their parameters
// chunk). Same-origin when the page is served by `diffuse serve`.
import type { Run } from "./local.js";
import { encodePng } from "./png.js";
import type { Pixels, RunCallbacks, RunImage, RunRequest } from "./protocol.js";

/** An answer of the server that is not a success: its `message` says what was wrong. */
export class ServerError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ServerError";
  }
}

/** What the server offers. */
export interface ServerInfo {
  models: { name: string; kind: string; default: boolean; width?: number; height?: number }[];
  samplers: { name: string }[];
  loras: { name: string }[];
}

interface JobView {
  id: string;
  status: string;
  error?: { message: string };
  result?: { warnings: string[]; images: { url: string; seed: number; parameters: string }[] };
}

async function base64Png(image: Pixels): Promise<string> {
  const bytes = new Uint8Array(await (await encodePng(image)).arrayBuffer());
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(s);
}

/** The `diffuse serve` API at `base` (default: this page's origin), with an API key if the server wants one. */
export class RemoteEngine {
  readonly base: string;

  constructor(
    base: string,
    readonly apiKey = "",
  ) {
    this.base = new URL(base || "/", location.href).href.replace(/\/$/, "");
  }

  async #fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.apiKey) headers.set("authorization", `Bearer ${this.apiKey}`);
    let response: Response;
    try {
      response = await fetch(this.base + path, { ...init, headers });
    } catch (err) {
      throw new ServerError(`cannot reach the server at ${this.base} (${(err as Error).message})`, 0);
    }
    if (!response.ok) {
      const body = (await response.json().catch(() => null)) as { message?: string } | null;
      throw new ServerError(body?.message ?? `${path}: HTTP ${response.status}`, response.status);
    }
    return response;
  }

  async #json<T>(path: string, init?: RequestInit): Promise<T> {
    return (await (await this.#fetch(path, init)).json()) as T;
  }

  /** The server's models, samplers and LoRAs. */
  async info(): Promise<ServerInfo> {
    const [models, samplers, loras] = await Promise.all([
      this.#json<ServerInfo["models"]>("/api/v1/models"),
      this.#json<ServerInfo["samplers"]>("/api/v1/samplers"),
      this.#json<ServerInfo["loras"]>("/api/v1/loras"),
    ]);
    return { models, samplers, loras };
  }

  /** Queues a run and follows it to its images. */
  generate(request: RunRequest, callbacks: RunCallbacks): Run {
    let jobId: string | null = null;
    let cancelled = false;
    const done = (async () => {
      const body: Record<string, unknown> = {
        prompt: request.prompt,
        negative_prompt: request.negativePrompt,
        steps: request.steps,
        guidance: request.guidance,
        seed: request.seed,
        ...(request.width && { width: request.width }),
        ...(request.height && { height: request.height }),
        num_images: request.batch,
        loras: request.loras.map((l) => ({ name: l.name, scale: l.scale })),
      };
      if (request.model) body.model = request.model;
      if (request.sampler) body.sampler = request.sampler;
      if (request.initImage) {
        body.init_image = await base64Png(request.initImage);
        if (request.strength !== undefined) body.strength = request.strength;
        if (request.mask) body.mask = await base64Png(request.mask);
      }
      const job = await this.#json<JobView>("/api/v1/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      jobId = job.id;
      if (cancelled) await this.#cancel(job.id);
      const end = await this.#follow(job.id, callbacks);
      if (end === "cancelled") throw new DOMException("cancelled", "AbortError");
      const view = await this.#json<JobView>(`/api/v1/jobs/${job.id}`);
      if (view.status === "error") throw new ServerError(view.error?.message ?? "the job failed", 500);
      const images: RunImage[] = [];
      for (const im of view.result?.images ?? []) {
        const png = await (await this.#fetch(im.url)).blob();
        images.push({ png, parameters: im.parameters, seed: im.seed });
      }
      return { images, warnings: view.result?.warnings ?? [] };
    })();
    return {
      done,
      cancel: () => {
        cancelled = true;
        if (jobId) this.#cancel(jobId).catch(() => {});
      },
    };
  }

  async #cancel(id: string): Promise<void> {
    await this.#fetch(`/api/v1/jobs/${id}/cancel`, { method: "POST" }).catch((err: unknown) => {
      // 409: it finished first
      if (!(err instanceof ServerError && err.status === 409)) throw err;
    });
  }

  /** Reads the job's events until it ends; resolves to how it ended. */
  async #follow(id: string, callbacks: RunCallbacks): Promise<string> {
    const response = await this.#fetch(`/api/v1/jobs/${id}/events`, {
      headers: { accept: "text/event-stream" },
    });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return "closed";
      buffer += value;
      let cut = buffer.indexOf("\n\n");
      while (cut >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        cut = buffer.indexOf("\n\n");
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "{}") as Record<string, unknown>;
        if (type === "progress") {
          callbacks.onProgress({ stage: "sample", step: Number(data.step), total: Number(data.total) });
        } else if (type === "queued") {
          callbacks.onProgress({ stage: "queued", step: 0, total: 0, message: `position ${data.position}` });
        } else if (type === "error") {
          throw new ServerError(String(data.message ?? "the job failed"), Number(data.status ?? 500));
        } else if (type === "done" || type === "cancelled") {
          await reader.cancel().catch(() => {});
          return type;
        }
      }
    }
  }
}
