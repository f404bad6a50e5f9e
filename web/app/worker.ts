// The page's in-browser back end, in a Web Worker so that the page stays responsive: opens WebGPU (or stays on
// the CPU, the library's reference backend), loads a Stable Diffusion model (the shipped emoji model fetched once
// into the cache, or a diffusers folder / .safetensors file picked from disk, read in pieces), and generates with
// previews after each step and cancel between steps. Errors go back to the page by name and message.
import {
  formatParameters,
  type GenerationSettings,
  initWebGpu,
  listDevices,
  loadStableDiffusionPipeline,
  noGrad,
  type PipelineSource,
  type StableDiffusionPipeline,
  setBackend,
  type Tensor,
  tensorToImages,
} from "../../src/browser.js";
import { cachedModelFiles } from "./model-cache.js";
import { encodePng } from "./png.js";
import { latentPreview, PreviewPacer } from "./preview.js";
import type { DeviceChoice, FromWorker, ModelChoice, RunRequest, ToWorker } from "./protocol.js";

const scope = globalThis as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};
const post = (message: FromWorker) => scope.postMessage(message);

let device: "cpu" | "webgpu" = "cpu";
let pipe: StableDiffusionPipeline | null = null;
let modelName = "";
const running = new Map<number, AbortController>();

/** Opens WebGPU when asked for (or, for "auto", when the adapter is a real GPU); else the CPU. */
async function init(id: number, choice: DeviceChoice): Promise<void> {
  setBackend("reference");
  if (choice === "cpu") {
    device = "cpu";
    post({ type: "ready", id, device });
    return;
  }
  let notice: string | undefined;
  try {
    const gpu = await initWebGpu();
    if (gpu.info.software && choice === "auto") {
      device = "cpu";
      notice = `WebGPU here is a software adapter (${gpu.info.description}), slower than the CPU path: computing on the CPU. Images take seconds to minutes; choose WebGPU to use it anyway.`;
    } else {
      device = "webgpu";
      if (gpu.info.software) notice = `WebGPU on a software adapter (${gpu.info.description}): slow.`;
    }
  } catch (err) {
    if (choice === "webgpu") throw err;
    device = "cpu";
    notice = `No WebGPU in this browser (${(err as Error).message}). Computing on the CPU: images take seconds to minutes.`;
  }
  if (device === "webgpu" && !listDevices().includes("webgpu")) device = "cpu";
  post({ type: "ready", id, device, notice });
}

/** A model choice as something the library loads. */
async function sourceOf(
  id: number,
  model: ModelChoice,
): Promise<{ source: PipelineSource; tokenizer?: Map<string, Blob> }> {
  if (model.kind === "url") {
    const { files } = await cachedModelFiles(model.base, model.files, (progress) =>
      post({ type: "progress", id, progress }),
    );
    return { source: files };
  }
  if (model.kind === "folder") return { source: new Map(model.files) };
  return { source: model.file, tokenizer: model.tokenizer && new Map(model.tokenizer) };
}

async function load(id: number, model: ModelChoice): Promise<void> {
  const { source, tokenizer } = await sourceOf(id, model);
  pipe = null;
  pipe = await loadStableDiffusionPipeline(source, {
    name: model.name,
    tokenizer,
    device,
    // float16 weights on the GPU: half the memory of float32 (the kernels widen them)
    dtype: device === "webgpu" ? "float16" : undefined,
    onProgress: (e) =>
      post({
        type: "progress",
        id,
        progress: { stage: "load", step: e.step, total: e.total ?? 0, message: e.message },
      }),
  });
  modelName = model.name;
  const size = pipe.defaultSize;
  post({
    type: "loaded",
    id,
    info: {
      name: modelName,
      family: pipe.unet.config.cross_attention_dim === 2048 ? "sdxl" : "sd",
      width: size.width,
      height: size.height,
      sampler: pipe.defaultSampler,
      inpainting: pipe.isInpaintingUNet,
      device,
    },
  });
}

/**
 * A preview of the latents after a step: the VAE's decode for small images (paced: at most a fifth of the time
 * goes to previews), else their first three channels. One at a time; none for the last step.
 */
function preview(id: number, sample: Tensor, state: { busy: boolean; pacer: PreviewPacer }): void {
  if (state.busy || !pipe) return;
  const [, , h, w] = sample.shape as [number, number, number, number];
  const small = h * w <= 16 * 16;
  if (small && !state.pacer.due()) return;
  state.busy = true;
  const started = performance.now();
  const p = pipe;
  const images = small ? tensorToImages(noGrad(() => p.decodeLatents(sample))) : latentPreview(sample);
  images
    .then((list) => {
      if (small) state.pacer.made(performance.now() - started);
      post({ type: "preview", id, images: list });
    })
    .catch(() => {})
    .finally(() => {
      state.busy = false;
    });
}

async function generate(id: number, req: RunRequest): Promise<void> {
  if (!pipe) throw new Error("no model is loaded yet");
  const controller = new AbortController();
  running.set(id, controller);
  const p = pipe;
  try {
    for (const l of req.loras) if (l.file) await p.loadLora(l.file, { scale: l.scale, name: l.name });
    const seed = req.seed >= 0 ? req.seed : Math.floor(Math.random() * 2 ** 32);
    const state = { busy: false, pacer: new PreviewPacer() };
    const result = await p.generate({
      prompt: req.prompt,
      negativePrompt: req.negativePrompt,
      sampler: req.sampler || undefined,
      steps: req.steps,
      guidanceScale: req.guidance,
      seed,
      width: req.width,
      height: req.height,
      numImages: req.batch,
      initImage: req.initImage,
      mask: req.mask,
      strength: req.initImage ? req.strength : undefined,
      signal: controller.signal,
      onProgress: (e) => {
        post({ type: "progress", id, progress: { stage: e.stage, step: e.step, total: e.total ?? 0 } });
        if (e.stage === "sample" && e.sample && e.step < (e.total ?? 0)) preview(id, e.sample, state);
      },
    });
    const modelHash = await p.modelHash();
    const images = [];
    for (const [i, image] of result.images.entries()) {
      const settings: GenerationSettings = {
        ...result.settings,
        batchPos: i,
        extra: { Version: `diffuse ${DIFFUSE_VERSION}` },
      };
      if (modelHash) settings.modelHash = modelHash;
      const parameters = formatParameters(settings);
      images.push({ png: await encodePng(image, parameters), parameters, seed });
    }
    post({ type: "result", id, images, warnings: result.warnings });
  } finally {
    running.delete(id);
    p.unloadLoras();
  }
}

scope.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "cancel") {
    running.get(msg.id)?.abort(new DOMException("cancelled", "AbortError"));
    return;
  }
  const work =
    msg.type === "init"
      ? init(msg.id, msg.device)
      : msg.type === "load"
        ? load(msg.id, msg.model)
        : generate(msg.id, msg.request);
  work.catch((err: unknown) => {
    const e = err as { name?: string; message?: string };
    post({ type: "error", id: msg.id, name: e?.name ?? "Error", message: e?.message ?? String(err) });
  });
};
