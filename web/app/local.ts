// The page's side of the in-browser back end: the worker (worker.ts) behind promises, one request id per call.
import type {
  DeviceChoice,
  FromWorker,
  ModelChoice,
  ModelInfo,
  Progress,
  RunCallbacks,
  RunImage,
  RunRequest,
  ToWorker,
} from "./protocol.js";

/** An error the worker reported, with the library's error class name. */
export class WorkerError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** A run in progress: its result, and a way to stop it (between steps). */
export interface Run {
  done: Promise<{ images: RunImage[]; warnings: string[] }>;
  cancel(): void;
}

interface Pending {
  resolve(message: FromWorker): void;
  reject(err: Error): void;
  onMessage?(message: FromWorker): void;
}

/** Generation in this browser, on WebGPU or the CPU, in a worker. */
export class LocalEngine {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #next = 1;

  constructor(workerUrl: URL) {
    this.#worker = new Worker(workerUrl, { type: "module" });
    this.#worker.onmessage = (event: MessageEvent<FromWorker>) => this.#receive(event.data);
    this.#worker.onerror = (event) => {
      const err = new WorkerError("WorkerError", event.message || "the worker failed to start");
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
  }

  #receive(message: FromWorker): void {
    const p = this.#pending.get(message.id);
    if (!p) return;
    if (message.type === "error") {
      this.#pending.delete(message.id);
      p.reject(new WorkerError(message.name, message.message));
    } else if (message.type === "progress" || message.type === "preview" || message.type === "notice") {
      p.onMessage?.(message);
    } else {
      this.#pending.delete(message.id);
      p.resolve(message);
    }
  }

  #call(message: ToWorker, onMessage?: (m: FromWorker) => void): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      this.#pending.set(message.id, { resolve, reject, onMessage });
      this.#worker.postMessage(message);
    });
  }

  /** Stops the worker (a run in progress rejects). */
  terminate(): void {
    this.#worker.terminate();
    const err = new WorkerError("AbortError", "stopped");
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  /** Opens the device: resolves to the one used ("webgpu" or "cpu") and a notice to show, if any. */
  async init(device: DeviceChoice): Promise<{ device: string; notice?: string }> {
    const m = await this.#call({ type: "init", id: this.#next++, device });
    if (m.type !== "ready") throw new WorkerError("Error", `unexpected answer ${m.type}`);
    return { device: m.device, notice: m.notice };
  }

  /** Loads a model (downloading or reading its files, with progress). */
  async load(model: ModelChoice, onProgress: (p: Progress) => void): Promise<ModelInfo> {
    const m = await this.#call({ type: "load", id: this.#next++, model }, (msg) => {
      if (msg.type === "progress") onProgress(msg.progress);
    });
    if (m.type !== "loaded") throw new WorkerError("Error", `unexpected answer ${m.type}`);
    return m.info;
  }

  /** Starts a run on the loaded model. */
  generate(request: RunRequest, callbacks: RunCallbacks): Run {
    const id = this.#next++;
    const done = this.#call({ type: "generate", id, request }, (msg) => {
      if (msg.type === "progress") callbacks.onProgress(msg.progress);
      else if (msg.type === "preview") callbacks.onPreview?.(msg.images);
    }).then((m) => {
      if (m.type !== "result") throw new WorkerError("Error", `unexpected answer ${m.type}`);
      return { images: m.images, warnings: m.warnings };
    });
    return { done, cancel: () => this.#worker.postMessage({ type: "cancel", id } satisfies ToWorker) };
  }
}
