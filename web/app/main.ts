// The diffuse web app: text-to-image (and image-to-image, inpainting, LoRAs) computed in this browser (a worker on
// WebGPU or the CPU) or by a `diffuse serve` server. Plain DOM; index.html holds the markup.
import { byId, fillSamplers, readForm, restoreFromParameters, writeForm } from "./form.js";
import { Gallery } from "./gallery.js";
import { wireImageInputs } from "./inputs.js";
import { LocalEngine, type Run } from "./local.js";
import { LoraList } from "./loras.js";
import { InitImageEditor } from "./mask.js";
import { Messages } from "./messages.js";
import { drawPixels } from "./png.js";
import type { DeviceChoice, ModelChoice, Pixels, Progress, RunImage, RunRequest } from "./protocol.js";
import { RemoteEngine } from "./remote.js";

/** A shipped model as models/index.json lists it (written by scripts/build-web.js). */
interface ShippedModel {
  name: string;
  path: string;
  files: { name: string; size: number }[];
  defaults?: { steps?: number; guidance?: number };
}

const messages = new Messages(byId("messages"));
const status = byId("status");
const generateButton = byId<HTMLButtonElement>("generate");
const cancelButton = byId<HTMLButtonElement>("cancel");
const loras = new LoraList(byId("lora-list"));
const editor = new InitImageEditor(byId("init-canvas"), byId("mask-canvas"), byId("brush"));
let mode: "browser" | "server" = "browser";
let local: LocalEngine | null = null;
let localReady: Promise<void> | null = null;
/** A model is loaded in the worker. */
let localLoaded = false;
let remote: RemoteEngine | null = null;
let run: Run | null = null;
let shipped: ShippedModel[] = [];
let tokenizerFiles: [string, File][] | undefined;

// every error reaches the page as a message, never only the console
window.addEventListener("error", (e) => messages.error(e.error ?? e.message));
window.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  messages.error(e.reason);
});

function setStatus(text: string): void {
  status.textContent = text;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

/** Shows progress (or hides the bar with null). */
function showProgress(p: Progress | null): void {
  const box = byId("progress");
  box.hidden = p === null;
  if (!p) return;
  const bar = byId<HTMLProgressElement>("bar");
  bar.max = p.total || 1;
  bar.value = p.total ? p.step : 0;
  const what =
    p.stage === "download"
      ? `downloading the model: ${mib(p.step)} of ${mib(p.total)}`
      : p.stage === "load"
        ? `loading ${p.message ?? "the model"}: ${p.step} of ${p.total} MB`
        : p.stage === "sample"
          ? `step ${p.step} of ${p.total}`
          : p.stage === "queued"
            ? `waiting in the server's queue (${p.message})`
            : p.stage === "decode"
              ? "decoding"
              : p.stage;
  byId("progress-text").textContent = what;
}

function showPreviews(images: Pixels[]): void {
  const box = byId("previews");
  while (box.children.length > images.length) box.lastChild?.remove();
  images.forEach((image, i) => {
    let canvas = box.children[i] as HTMLCanvasElement | undefined;
    if (!canvas) {
      canvas = document.createElement("canvas");
      box.append(canvas);
    }
    drawPixels(canvas, image);
  });
}

function updateButtons(): void {
  const ready = mode === "server" ? remote !== null : localLoaded && localReady === null;
  generateButton.disabled = run !== null || !ready;
  cancelButton.disabled = run === null;
}

// --- in the browser ---------------------------------------------------------------------------------------------

function modelChoice(value: string): ModelChoice | null {
  if (!value.startsWith("shipped:")) return null;
  const m = shipped.find((s) => `shipped:${s.name}` === value);
  if (!m) throw new Error(`models/index.json lists no model ${value.slice(8)}`);
  return { kind: "url", name: m.name, base: new URL(m.path, location.href).href, files: m.files };
}

/** The model last asked for (loaded again when the device changes). */
let lastModel: ModelChoice | null = null;
/** The model select's value for it. */
let lastModelValue = "";

/** Starts the worker on the chosen device (again after a change) and loads `model` on it. */
function startLocal(model: ModelChoice): void {
  lastModel = model;
  lastModelValue = model.kind === "url" ? `shipped:${model.name}` : model.kind;
  byId<HTMLSelectElement>("model").value = lastModelValue;
  const device = byId<HTMLSelectElement>("device").value as DeviceChoice;
  local ??= new LocalEngine(new URL("./worker.js", import.meta.url));
  const engine = local;
  setStatus("starting…");
  localLoaded = false;
  const ready = (async () => {
    const { notice } = await engine.init(device);
    if (notice) messages.show("notice", notice);
    setStatus(`loading ${model.name}…`);
    const info = await engine.load(model, showProgress);
    localLoaded = true;
    const where = model.kind === "url" ? "" : " (from disk)";
    setStatus(`${info.name}${where} on ${info.device === "webgpu" ? "WebGPU" : "the CPU"} (in this browser)`);
    byId<HTMLInputElement>("width").placeholder = String(info.width);
    byId<HTMLInputElement>("height").placeholder = String(info.height);
    const defaults = shipped.find((s) => s.name === info.name)?.defaults;
    if (defaults) writeForm({ steps: defaults.steps, guidanceScale: defaults.guidance });
  })();
  localReady = ready;
  updateButtons();
  ready
    .catch((err: unknown) => {
      messages.error(err);
      setStatus("no model loaded");
    })
    .finally(() => {
      if (localReady === ready) localReady = null;
      showProgress(null);
      updateButtons();
    });
}

/** A new worker (on the chosen device) with `model`, by default the model loaded last, else the first shipped one. */
function restartLocal(model?: ModelChoice | null): void {
  local?.terminate();
  local = null;
  const next = model ?? lastModel ?? modelChoice(`shipped:${shipped[0]?.name}`);
  if (next) startLocal(next);
}

/** The files of a folder picked with `webkitdirectory`, relative to the folder; and the folder's name. */
function folderFiles(list: FileList): { name: string; files: [string, File][] } {
  const files: [string, File][] = [];
  let name = "model";
  for (const f of list) {
    const parts = f.webkitRelativePath.split("/");
    name = parts[0] ?? name;
    files.push([parts.slice(1).join("/"), f]);
  }
  return { name, files };
}

byId<HTMLSelectElement>("model").addEventListener("change", (e) => {
  const value = (e.target as HTMLSelectElement).value;
  byId("pick-tokenizer").hidden = value !== "file";
  if (value === "folder") byId<HTMLInputElement>("model-folder").click();
  else if (value === "file") byId<HTMLInputElement>("model-file").click();
  else startLocal(modelChoice(value)!);
});
// a file picker closed without a choice: the select shows the model loaded
for (const id of ["model-folder", "model-file"])
  byId(id).addEventListener("cancel", () => {
    byId<HTMLSelectElement>("model").value = lastModelValue;
    byId("pick-tokenizer").hidden = lastModel?.kind !== "file";
  });
byId<HTMLInputElement>("model-folder").addEventListener("change", (e) => {
  const list = (e.target as HTMLInputElement).files;
  if (!list?.length) return;
  const { name, files } = folderFiles(list);
  startLocal({ kind: "folder", name, files });
});
byId<HTMLInputElement>("model-file").addEventListener("change", (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (!file) return;
  byId("pick-tokenizer").hidden = false;
  startLocal({ kind: "file", name: file.name.replace(/\.[^.]+$/, ""), file, tokenizer: tokenizerFiles });
});
byId("pick-tokenizer").addEventListener("click", () => byId<HTMLInputElement>("tokenizer-folder").click());
byId<HTMLInputElement>("tokenizer-folder").addEventListener("change", (e) => {
  const list = (e.target as HTMLInputElement).files;
  if (!list?.length) return;
  tokenizerFiles = folderFiles(list).files;
  const file = byId<HTMLInputElement>("model-file").files?.[0];
  if (file)
    startLocal({ kind: "file", name: file.name.replace(/\.[^.]+$/, ""), file, tokenizer: tokenizerFiles });
  else messages.show("info", "Tokenizer folder chosen; now pick the checkpoint file.");
});
byId("device").addEventListener("change", () => restartLocal());

// --- on a server ------------------------------------------------------------------------------------------------

async function connect(): Promise<void> {
  const engine = new RemoteEngine(
    byId<HTMLInputElement>("server-url").value.trim(),
    byId<HTMLInputElement>("api-key").value.trim(),
  );
  setStatus(`connecting to ${engine.base}…`);
  const info = await engine.info();
  remote = engine;
  const select = byId<HTMLSelectElement>("server-model");
  select.replaceChildren(
    ...info.models.map((m) => new Option(`${m.name} (${m.kind})`, m.name, m.default, m.default)),
  );
  fillSamplers(info.samplers.map((s) => s.name));
  byId<HTMLSelectElement>("server-loras").replaceChildren(
    ...info.loras.map((l) => new Option(l.name, l.name)),
  );
  setStatus(`on the server ${engine.base}`);
  updateButtons();
}

function setMode(next: "browser" | "server"): void {
  mode = next;
  byId("browser-options").hidden = next !== "browser";
  byId("server-options").hidden = next !== "server";
  byId("lora-pick").hidden = next !== "browser";
  byId("lora-server").hidden = next !== "server";
  if (next === "server" && !remote) connect().catch((err: unknown) => messages.error(err));
  if (next === "browser") {
    fillSamplers();
    if (!local) restartLocal(modelChoice(byId<HTMLSelectElement>("model").value));
    else setStatus("in this browser");
  }
  updateButtons();
}

for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="mode"]'))
  radio.addEventListener("change", () => setMode(radio.value as "browser" | "server"));
byId("connect").addEventListener("click", () => {
  remote = null;
  connect().catch((err: unknown) => {
    messages.error(err);
    updateButtons();
  });
});
byId("add-server-lora").addEventListener("click", () => {
  const name = byId<HTMLSelectElement>("server-loras").value;
  if (name) loras.add(name);
});
byId<HTMLInputElement>("lora-files").addEventListener("change", (e) => {
  for (const f of (e.target as HTMLInputElement).files ?? [])
    loras.add(f.name.replace(/\.safetensors$/i, ""), f);
});

// --- a run ------------------------------------------------------------------------------------------------------

function request(): RunRequest {
  const req = readForm();
  req.loras = loras.choices(mode === "server");
  if (editor.image) {
    req.initImage = editor.image;
    req.mask = editor.mask();
  } else req.strength = undefined;
  if (mode === "server") req.model = byId<HTMLSelectElement>("server-model").value;
  return req;
}

async function generate(): Promise<void> {
  const req = request();
  const engine = mode === "server" ? remote : local;
  if (!engine) throw new Error("nothing to generate with yet: wait for the model, or connect to a server");
  showPreviews([]);
  showProgress({ stage: "sample", step: 0, total: req.steps });
  run = engine.generate(req, { onProgress: showProgress, onPreview: showPreviews });
  updateButtons();
  try {
    const { images, warnings } = await run.done;
    for (const w of warnings) messages.show("notice", w);
    gallery.add(images);
  } finally {
    run = null;
    showProgress(null);
    showPreviews([]);
    updateButtons();
  }
}

const gallery = new Gallery(byId("gallery"), {
  restore: (image: RunImage) => {
    restoreFromParameters(image.parameters);
    messages.show("info", "Settings restored from the image.");
  },
  useAsInit: (image: RunImage) => {
    imageInputs.setInitImage(image.png).catch((err: unknown) => messages.error(err));
  },
});

byId("settings").addEventListener("submit", (e) => {
  e.preventDefault();
  generate().catch((err: unknown) => messages.error(err));
});
cancelButton.addEventListener("click", () => run?.cancel());

// --- images in -------------------------------------------------------------------------------------------------

const imageInputs = wireImageInputs(editor, messages);

// --- start ------------------------------------------------------------------------------------------------------

async function start(): Promise<void> {
  fillSamplers();
  const response = await fetch(new URL("models/index.json", location.href));
  if (!response.ok)
    throw new Error(`models/index.json: HTTP ${response.status}; is this the built app (npm run build:web)?`);
  shipped = (await response.json()) as ShippedModel[];
  const select = byId<HTMLSelectElement>("model");
  for (const m of shipped.slice(1).reverse())
    select.prepend(new Option(`${m.name} (shipped)`, `shipped:${m.name}`));
  select.value = `shipped:${shipped[0]?.name}`;
  const params = new URLSearchParams(location.search);
  const device = params.get("device");
  if (device === "cpu" || device === "webgpu" || device === "auto")
    byId<HTMLSelectElement>("device").value = device;
  const server = document.querySelector<HTMLInputElement>('input[name="mode"][value="server"]');
  if (params.get("mode") === "server" && server) server.checked = true;
  setMode(params.get("mode") === "server" ? "server" : "browser");
}

start().catch((err: unknown) => messages.error(err));
