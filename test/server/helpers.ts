// Test helpers: a server on a free loopback port, JSON requests and Server-Sent Events read with fetch.
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SHIPPED_MODEL_DIR } from "../../src/pipelines/model-kind.js";
import { ModelCatalog, type ModelCatalogOptions } from "../../src/server/models.js";
import { createServer, type DiffuseServer, type ServerOptions } from "../../src/server/server.js";

/** A listening server and its base URL. */
export interface TestServer {
  server: DiffuseServer;
  url: string;
  close(): Promise<void>;
}

/** Starts a server on 127.0.0.1, port 0 (a free one). */
export async function startServer(opts: ServerOptions): Promise<TestServer> {
  const server = await createServer(opts);
  const url = await server.listen("127.0.0.1", 0);
  return { server, url, close: () => server.close() };
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are free-form JSON, checked field by field
type Json = any;

/** A JSON request; resolves to the status, headers and parsed body (text when not JSON). */
export async function request(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Json }> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed };
}

/** One Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: Json;
}

/** Reads a Server-Sent Events stream until the server ends it; `onEvent` sees each event as it arrives. */
export async function readEvents(
  url: string,
  onEvent: (e: SseEvent) => void = () => {},
  headers: Record<string, string> = {},
): Promise<{ contentType: string | null; events: SseEvent[] }> {
  const res = await fetch(url, { headers });
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null");
      events.push({ event, data });
      onEvent({ event, data });
      end = buffer.indexOf("\n\n");
    }
  }
  return { contentType: res.headers.get("content-type"), events };
}

export { pngHeaderOnly } from "../helpers.js";

/**
 * Runs `fn` while a long MNIST job occupies the worker, so the jobs `fn` submits are still queued when it
 * subscribes to their events (no race with a fast job); the blocker is cancelled when `fn` has submitted.
 */
export async function behindBlocker<T>(
  url: string,
  fn: () => Promise<T>,
  headers: Record<string, string> = {},
): Promise<T> {
  const blocker = await request(
    `${url}/api/v1/generate`,
    "POST",
    { model: "mnist", prompt: "0", steps: 150 },
    headers,
  );
  if (blocker.status !== 202) throw new Error(`blocker job refused: ${JSON.stringify(blocker.body)}`);
  try {
    return await fn();
  } finally {
    await request(`${url}/api/v1/jobs/${blocker.body.id}/cancel`, "POST", undefined, headers);
  }
}

/** {@link readEvents}, with a promise that resolves at the first event (the stream is then surely open). */
export function openEvents(url: string): { stream: ReturnType<typeof readEvents>; first: Promise<void> } {
  let opened!: () => void;
  const first = new Promise<void>((resolve) => {
    opened = resolve;
  });
  return { stream: readEvents(url, () => opened()), first };
}

/**
 * A diffusers folder at `dir` linking the tiny fixture components of ../shared/fixtures/models (the caller skips
 * without fixtures), with `scheduler` as its scheduler config.
 */
export function assembleTinySd(dir: string, fixtures: string, scheduler: Record<string, unknown>): void {
  const models = join(fixtures, "models");
  mkdirSync(join(dir, "scheduler"), { recursive: true });
  for (const [link, target] of [
    ["unet", "tiny_unet"],
    ["vae", "tiny_vae"],
    ["text_encoder", "tiny_text_encoder"],
    ["tokenizer", "tiny_tokenizer"],
  ] as const) {
    symlinkSync(join(models, target), join(dir, link));
  }
  const index = {
    _class_name: "StableDiffusionPipeline",
    unet: ["diffusers", "UNet2DConditionModel"],
    vae: ["diffusers", "AutoencoderKL"],
    text_encoder: ["transformers", "CLIPTextModel"],
    tokenizer: ["transformers", "CLIPTokenizer"],
    scheduler: ["diffusers", String(scheduler._class_name)],
  };
  writeFileSync(join(dir, "model_index.json"), JSON.stringify(index));
  writeFileSync(join(dir, "scheduler", "scheduler_config.json"), JSON.stringify(scheduler));
}

/** The shipped models with MNIST as the default (the shipped emoji model is served too, second). */
export function mnistCatalog(opts: ModelCatalogOptions = {}): Promise<ModelCatalog> {
  return ModelCatalog.create({ ...opts, models: [SHIPPED_MODEL_DIR] });
}
