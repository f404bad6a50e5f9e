// The prompts of the ComfyUI endpoints: each is one job of the shared queue. Its job's events become ComfyUI's
// WebSocket messages (execution_start, executing, progress, executed, execution_success / _error / _interrupted,
// executing with node null at the end), its images get ComfyUI names, and once finished it is a /history entry.
// A prompt is kept as long as the queue keeps its job (and with it the PNGs).
import type { ComfyImages, ImageRef } from "./comfyui-files.js";
import type { WorkflowPlan } from "./comfyui-workflow.js";
import type { ComfySockets } from "./comfyui-ws.js";
import type { ServerContext } from "./context.js";
import type { JobEvent, JobInfo } from "./queue.js";

/** One queued prompt and, once it ran, its outcome. */
export interface PromptRecord {
  id: string;
  number: number;
  jobId: string;
  /** The /ws client that gets its messages (all, when null). */
  clientId: string | null;
  /** The workflow as sent (long base64 images shortened). */
  workflow: Record<string, unknown>;
  extraData: Record<string, unknown>;
  plan: Omit<WorkflowPlan, "request">;
  state: "pending" | "running" | "success" | "error";
  /** The execution messages /history shows. */
  messages: [string, Record<string, unknown>][];
  outputs: Record<string, { images: ImageRef[] }>;
}

/** The workflow for /history and /queue: a base64 LoadImage image shown as its length, not kept. */
function storedWorkflow(workflow: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(workflow).map(([id, node]) => {
      const n = node as { class_type: string; inputs: Record<string, unknown> };
      const image = n.inputs.image;
      if (n.class_type !== "LoadImage" || typeof image !== "string" || image.length <= 1000)
        return [id, node];
      return [id, { ...n, inputs: { ...n.inputs, image: `<base64 image, ${image.length} characters>` } }];
    }),
  );
}

/** The ComfyUI prompts, by prompt id. */
export class ComfyPrompts {
  #prompts = new Map<string, PromptRecord>();
  #byJob = new Map<string, string>();
  #counter = 0;

  constructor(
    private readonly ctx: ServerContext,
    private readonly sockets: ComfySockets,
    private readonly images: ComfyImages,
  ) {}

  /** Records a prompt whose plan was queued as job `jobId` (before the job can start). */
  add(
    id: string,
    jobId: string,
    body: { prompt: unknown; client_id?: string; extra_data?: Record<string, unknown> },
    plan: WorkflowPlan,
  ): PromptRecord {
    const { request: _, ...kept } = plan;
    const record: PromptRecord = {
      id,
      number: this.#counter++,
      jobId,
      clientId: body.client_id ?? null,
      workflow: storedWorkflow(body.prompt as Record<string, unknown>),
      extraData: { ...body.extra_data, client_id: body.client_id ?? null, create_time: Date.now() },
      plan: kept,
      state: "pending",
      messages: [],
      outputs: {},
    };
    this.#prompts.set(id, record);
    this.#byJob.set(jobId, id);
    return record;
  }

  has(id: string): boolean {
    return this.#prompts.has(id);
  }

  /** The prompts in one state, in the order they were queued (pending ones: in the queue's order). */
  list(state: "pending" | "running" | "finished"): PromptRecord[] {
    this.#prune();
    const all = [...this.#prompts.values()];
    if (state === "finished") return all.filter((r) => r.state === "success" || r.state === "error");
    const position = (r: PromptRecord) => this.ctx.queue.get(r.jobId)?.position ?? 0;
    return all.filter((r) => r.state === state).sort((a, b) => position(a) - position(b));
  }

  /** The job of a prompt. */
  jobOf(id: string): string | undefined {
    return this.#prompts.get(id)?.jobId;
  }

  /** Drops a finished prompt and its images. */
  forget(record: PromptRecord): void {
    this.#prompts.delete(record.id);
    this.#byJob.delete(record.jobId);
    this.images.drop(record.id);
  }

  // finished prompts go when the queue drops their job
  #prune(): void {
    for (const r of this.#prompts.values()) if (!this.ctx.queue.get(r.jobId)) this.forget(r);
  }

  /** The /queue item: [number, prompt_id, workflow, extra_data, output node ids]. */
  static queueItem(r: PromptRecord): unknown[] {
    return [r.number, r.id, r.workflow, r.extraData, r.plan.outputs.map((o) => o.node)];
  }

  /** The /history entry of a finished prompt. */
  static historyEntry(r: PromptRecord): Record<string, unknown> {
    const success = r.state === "success";
    return {
      prompt: ComfyPrompts.queueItem(r),
      outputs: r.outputs,
      status: { status_str: success ? "success" : "error", completed: success, messages: r.messages },
      meta: Object.fromEntries(
        Object.keys(r.outputs).map((n) => [
          n,
          { node_id: n, display_node: n, parent_node: null, real_node_id: n },
        ]),
      ),
    };
  }

  /** A client that (re)connects while its prompt runs learns which node runs, as ComfyUI tells it. */
  onConnect(clientId: string): void {
    for (const r of this.#prompts.values()) {
      if (r.state === "running" && r.clientId === clientId) {
        const node = r.plan.samplerNode;
        this.sockets.send("executing", { node, display_node: node, prompt_id: r.id }, clientId);
      }
    }
  }

  /** Sees every job's events: a prompt's become its messages; any queue change is a `status` for all. */
  onJobEvent(info: JobInfo, event: JobEvent): void {
    const id = this.#byJob.get(info.id);
    const record = id === undefined ? undefined : this.#prompts.get(id);
    if (record) this.#onPromptEvent(record, event);
    if (event.type !== "progress") this.sockets.broadcastStatus();
  }

  #onPromptEvent(r: PromptRecord, event: JobEvent): void {
    const node = r.plan.samplerNode;
    const base = { prompt_id: r.id };
    const send = (type: string, data: Record<string, unknown>, keep = false) => {
      if (keep) r.messages.push([type, data]);
      this.sockets.send(type, data, r.clientId);
    };
    const executing = (n: string | null) => send("executing", { node: n, display_node: n, ...base });
    const stamp = () => ({ ...base, timestamp: Date.now() });
    // the whole generation runs as one job: it is reported on the KSampler, then the decode and output nodes
    switch (event.type) {
      case "started":
        r.state = "running";
        send("execution_start", stamp(), true);
        send("execution_cached", { nodes: [], ...stamp() }, true);
        executing(node);
        return;
      case "progress":
        send("progress", { value: event.step, max: event.total, ...base, node });
        return;
      case "done": {
        const { queue } = this.ctx;
        const pngs = queue.result(r.jobId)!.images.map((_, i) => () => queue.result(r.jobId)?.images[i]?.png);
        for (const d of r.plan.decodeNodes) executing(d);
        for (const out of r.plan.outputs) {
          const output = { images: this.images.addOutputs(r.id, out, pngs) };
          r.outputs[out.node] = output;
          executing(out.node);
          send("executed", { node: out.node, display_node: out.node, output, ...base });
        }
        r.state = "success";
        send("execution_success", stamp(), true);
        executing(null);
        return;
      }
      case "error": {
        r.state = "error";
        const type = event.status < 500 ? "diffuse.RequestError" : "diffuse.ServerError";
        const error = {
          node_id: node,
          node_type: "KSampler",
          executed: [],
          exception_message: event.message,
        };
        const rest = { exception_type: type, traceback: [], current_inputs: {}, current_outputs: {} };
        send("execution_error", { ...stamp(), ...error, ...rest }, true);
        executing(null);
        return;
      }
      case "cancelled":
        // taken off the queue before it ran: ComfyUI forgets such prompts
        if (r.state === "pending") {
          this.forget(r);
          return;
        }
        r.state = "error";
        send(
          "execution_interrupted",
          { ...stamp(), node_id: node, node_type: "KSampler", executed: [] },
          true,
        );
        executing(null);
        return;
    }
  }
}
