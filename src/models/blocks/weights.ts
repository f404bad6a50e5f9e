// The one checkpoint loader of the models: diffusers model folders (`config.json` +
// `diffusion_pytorch_model[.fp16].safetensors`), transformers folders (`config.json` + `model[.fp16].safetensors`),
// either sharded with an `.index.json`, and the tensor sources of single-file checkpoints. A folder is a path
// (Node.js), a base URL or a map of files (io/folder.ts). Keys and shapes are checked against the safetensors
// headers before any tensor data is read, then tensors are read a few at a time and copied into the module, so a
// checkpoint never sits in memory twice.
import { type ModelSource, modelFolder } from "../../io/folder.js";
import {
  openSafetensors,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsFile,
} from "../../io/safetensors-read.js";
import { describeInput, type FileInput } from "../../io/source.js";
import { type LayerOptions, type Module, type ShapeMismatch, StateDictError } from "../../nn/index.js";
import { reshape } from "../../ops/index.js";
import type { Device } from "../../tensor/device.js";
import type { DType } from "../../tensor/dtype.js";
import type { ProgressCallback } from "../../tensor/progress.js";
import { shapesEqual } from "../../tensor/shape.js";
import type { Tensor } from "../../tensor/tensor.js";
import { CheckpointError } from "./errors.js";

/**
 * Options of the models' `fromPretrained` (UNet2DConditionModel, AutoencoderKL, CLIPTextModel,
 * CLIPTextModelWithProjection): one dtype policy for all of them.
 */
export interface FromPretrainedOptions {
  /**
   * Parameter dtype. Default: the checkpoint's float dtype (that of most of its bytes), so a float16 file stays
   * float16 in memory (ops widen half weights per kernel); `"float32"` converts while loading.
   */
  dtype?: DType;
  /** @deprecated The checkpoint's dtype is now kept by default; this flag changes nothing. */
  keepDtype?: boolean;
  /** Weights variant as diffusers' `variant`: "fp16" reads `diffusion_pytorch_model.fp16.safetensors`. */
  variant?: string;
  /** Throw on missing or unexpected keys (default true). Shape mismatches always throw. */
  strict?: boolean;
  /** The device the model computes on (default "cpu"; `"webgpu"` after `await initWebGpu()`). */
  device?: Device;
  /** Loading progress: stage "load", `step` / `total` in MiB of weights loaded. */
  onProgress?: ProgressCallback;
}

/** How a model folder names its weights: diffusers models or transformers models (the CLIP text encoders). */
export type WeightNaming = "diffusers" | "transformers";

/** The weights file stem of each naming (`<stem>[.variant].safetensors`). */
const WEIGHT_STEMS: Record<WeightNaming, string> = {
  diffusers: "diffusion_pytorch_model",
  transformers: "model",
};

/**
 * Reads the file `name` of a folder (a path, URL or map of files) as JSON that must hold one object. Errors are
 * CheckpointErrors naming the file and what it should be (`what`, e.g. "config.json"), prefixed with `who` (the
 * model being loaded) when given.
 */
export async function readJsonObject(
  dir: ModelSource,
  name: string,
  what: string,
  who?: string,
): Promise<Record<string, unknown>> {
  const folder = modelFolder(dir);
  const path = folder.describe(name);
  const where = who ? `${who}: ${path}` : path;
  let text: string | null;
  try {
    text = await folder.readText(name);
  } catch (err) {
    throw new CheckpointError(`${where}: cannot read ${what}: ${String(err)}`, { cause: err });
  }
  if (text === null) throw new CheckpointError(`${where}: ${what} not found`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${where}: ${what} is not a valid JSON object (${(err as Error).message})`, {
      cause: err,
    });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const found = Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`;
    throw new CheckpointError(`${where}: ${what} is not a valid JSON object (found ${found})`);
  }
  return value as Record<string, unknown>;
}

/** Reads `<dir>/config.json` as a JSON object (`dir`: a path, URL or map of files; `who`: the model, for errors). */
export function readConfigJson(dir: ModelSource, who: string): Promise<Record<string, unknown>> {
  return readJsonObject(dir, "config.json", "config.json", who);
}

/** Options of {@link findWeightFiles}. */
export interface FindWeightFilesOptions {
  /** The model being loaded, for errors. */
  who: string;
  /** diffusers' `variant`: "fp16" reads `<stem>.fp16.safetensors`. */
  variant?: string;
  /** File naming of the folder (default "diffusers"). */
  naming?: WeightNaming;
}

/**
 * The safetensors file(s) of a model folder, in diffusers' order: `<stem>[.variant].safetensors`, then its sharded
 * `.index.json`; without a variant the `.fp16` files are the fallback when they are all there is. The stem is
 * `diffusion_pytorch_model` (diffusers) or `model` (transformers). A folder path yields file paths; a URL folder
 * URLs; a map of files its Blobs or buffers.
 */
export async function findWeightFiles(dir: ModelSource, opts: FindWeightFilesOptions): Promise<FileInput[]> {
  const folder = modelFolder(dir);
  const base = WEIGHT_STEMS[opts.naming ?? "diffusers"];
  const stems = opts.variant ? [`${base}.${opts.variant}`] : [base, `${base}.fp16`];
  for (const stem of stems) {
    const single = `${stem}.safetensors`;
    if (await folder.exists(single)) return [folder.file(single)];
    const indexName = `${stem}.safetensors.index.json`;
    if (await folder.exists(indexName)) {
      const map = (await readJsonObject(folder, indexName, "safetensors index", opts.who)).weight_map;
      if (typeof map !== "object" || map === null || Array.isArray(map))
        throw new CheckpointError(`${opts.who}: ${folder.describe(indexName)} has no "weight_map" object`);
      return [...new Set(Object.values(map as Record<string, unknown>).map(String))].map((f) =>
        folder.file(f),
      );
    }
  }
  let present: string[];
  try {
    present = ((await folder.list()) ?? []).filter((f) => /\.(safetensors|bin|ckpt|pt|json)$/.test(f));
  } catch (err) {
    throw new CheckpointError(`${opts.who}: folder ${folder.label} not found`, { cause: err });
  }
  const tried = stems.flatMap((s) => [`${s}.safetensors`, `${s}.safetensors.index.json`]).join(", ");
  const pickle = present.some((f) => /\.(bin|ckpt|pt)$/.test(f))
    ? " (PyTorch pickle checkpoints are not read; convert them to safetensors)"
    : "";
  throw new CheckpointError(
    `${opts.who}: no weights in ${folder.label}; looked for ${tried}; the folder has ${present.length ? present.join(", ") : "no weight files"}${pickle}`,
  );
}

/** How {@link loadWeights} adapts checkpoint tensors before checking them. */
export interface LoadWeightsOptions {
  /** Throw on missing or unexpected keys (default true). */
  strict?: boolean;
  /** Renames a checkpoint key to the module's key (e.g. deprecated names); return it unchanged otherwise. */
  renameKey?: (key: string) => string;
  /** Accept [out, in, 1, 1] (a 1x1 conv kernel) where the module has a Linear weight [out, in]. */
  squeezeConv1x1?: boolean;
  /** Leaves a checkpoint key (after renaming) out, as if the file did not hold it. */
  skipKey?: (key: string) => boolean;
  /** Name of the model in error messages. */
  label: string;
  /**
   * The module takes the file's tensors as they are where dtype and layout match (no copy; views of a
   * memory-mapped file): for a module built only to be loaded (Module.loadStateDict's `adopt`).
   */
  adopt?: boolean;
  /** Called with each tensor's byte count in the file once it is loaded (see {@link byteProgress}). */
  onLoaded?: (bytes: number) => void;
}

/**
 * Turns loaded byte counts into "load" progress events in MiB, at most about one per percent of `totalBytes`
 * (a checkpoint has a thousand tensors or more); the last one has step === total.
 */
export function byteProgress(
  onProgress: ProgressCallback,
  totalBytes: number,
  message?: string,
): (bytes: number) => void {
  const mib = 2 ** 20;
  const total = Math.max(1, Math.round(totalBytes / mib));
  let done = 0;
  let shown = -1;
  return (bytes) => {
    done += bytes;
    const step = done >= totalBytes ? total : Math.min(total - 1, Math.round(done / mib));
    if (step === shown || (step - shown < total / 100 && step < total)) return;
    shown = step;
    onProgress({ stage: "load", step, total, message });
  };
}

/** Tensors read per loadStateDict call: bounded so a checkpoint is never held twice. */
const BATCH_BYTES = 64 * 1024 * 1024;

function isConv1x1Of(found: readonly number[], expected: readonly number[]): boolean {
  return (
    expected.length === 2 &&
    found.length === 4 &&
    found[2] === 1 &&
    found[3] === 1 &&
    shapesEqual(found.slice(0, 2), expected)
  );
}

/** The tensor dtype a safetensors float dtype is read as, or null for non-float dtypes. */
export function floatDType(dtype: SafetensorsDType): DType | null {
  return dtype === "F16" ? "float16" : dtype === "BF16" ? "bfloat16" : dtype === "F32" ? "float32" : null;
}

/** The float dtype holding most bytes among `entries` (float32 when there are no float tensors). */
export function dominantDType(entries: Iterable<Pick<SafetensorsEntry, "dtype" | "byteLength">>): DType {
  const bytes = new Map<DType, number>();
  for (const e of entries) {
    const dt = floatDType(e.dtype);
    if (dt) bytes.set(dt, (bytes.get(dt) ?? 0) + e.byteLength);
  }
  let best: DType = "float32";
  for (const [dt, n] of bytes) if (n > (bytes.get(best) ?? 0)) best = dt;
  return best;
}

/** One tensor to load: its shape (known before reading) and how to read it. */
export interface TensorSource {
  readonly shape: readonly number[];
  /** Its dtype in the file. */
  readonly dtype: SafetensorsDType;
  /** Bytes it occupies in the file (bounds how much is read before it is copied into the module). */
  readonly byteLength: number;
  read(): Promise<Tensor>;
}

/**
 * Loads tensors into `module` with Module.loadStateDict semantics: every key and shape is checked first (from
 * `sources`, before any data is read) and all problems are reported in one StateDictError; then the tensors are
 * read a few at a time and copied in (converted to the parameters' dtype).
 */
export async function loadTensorSources(
  module: Module,
  sources: ReadonlyMap<string, TensorSource>,
  opts: Pick<LoadWeightsOptions, "strict" | "squeezeConv1x1" | "label" | "adopt" | "onLoaded">,
): Promise<void> {
  const expected = module.stateDict();
  const missing = [...expected.keys()].filter((k) => !sources.has(k));
  const unexpected = [...sources.keys()].filter((k) => !expected.has(k));
  const mismatched: ShapeMismatch[] = [];
  const squeeze = new Set<string>();
  for (const [name, t] of expected) {
    const src = sources.get(name);
    if (!src || shapesEqual(src.shape, t.shape)) continue;
    if (opts.squeezeConv1x1 && isConv1x1Of(src.shape, t.shape)) squeeze.add(name);
    else mismatched.push({ key: name, expected: t.shape, found: src.shape });
  }
  if (mismatched.length > 0 || ((opts.strict ?? true) && (missing.length > 0 || unexpected.length > 0))) {
    throw new StateDictError(opts.label, missing, unexpected, mismatched);
  }
  let batch = new Map<string, Tensor>();
  let batchBytes = 0;
  const flush = (): void => {
    if (batch.size > 0) module.loadStateDict(batch, { strict: false, adopt: opts.adopt });
    batch = new Map();
    batchBytes = 0;
  };
  for (const [name, t] of expected) {
    const src = sources.get(name);
    if (!src) continue;
    let value = await src.read();
    if (squeeze.has(name)) value = reshape(value, t.shape);
    batch.set(name, value);
    batchBytes += src.byteLength;
    if (batchBytes >= BATCH_BYTES) flush();
    opts.onLoaded?.(src.byteLength);
  }
  flush();
}

/** Bytes in the file of the sources that `module` has a slot for (what a load reads). */
export function loadedBytes(module: Module, sources: ReadonlyMap<string, TensorSource>): number {
  let n = 0;
  for (const key of module.stateDict().keys()) n += sources.get(key)?.byteLength ?? 0;
  return n;
}

/** The tensors of a set of safetensors files, by (renamed) key, and the files to close after reading them. */
export interface WeightSources {
  sources: Map<string, TensorSource>;
  /** Closes every file; call it once the tensors are read. */
  close(): void;
}

/**
 * Opens safetensors files (headers only) and maps their tensors by key, renamed by `opts.renameKey` and without
 * the keys `opts.skipKey` drops. A key in two files is a CheckpointError naming both.
 */
export async function openWeightSources(
  paths: readonly FileInput[],
  opts: Pick<LoadWeightsOptions, "renameKey" | "skipKey" | "label">,
): Promise<WeightSources> {
  const files: SafetensorsFile[] = [];
  const close = () => {
    for (const f of files) f.close();
  };
  try {
    const sources = new Map<string, TensorSource & { file: SafetensorsFile; key: string }>();
    for (const path of paths) {
      const file = await openSafetensors(path);
      files.push(file);
      for (const e of file.entries) {
        const key = opts.renameKey ? opts.renameKey(e.name) : e.name;
        if (opts.skipKey?.(key)) continue;
        const prev = sources.get(key);
        if (prev) {
          throw new CheckpointError(
            `${opts.label}: tensor ${key} appears twice (${prev.file.path}: ${prev.key}; ${describeInput(path)}: ${e.name})`,
          );
        }
        const name = e.name;
        sources.set(key, {
          file,
          key: name,
          shape: e.shape,
          byteLength: e.byteLength,
          dtype: e.dtype,
          read: () => file.getAsync(name),
        });
      }
    }
    return { sources, close };
  } catch (err) {
    close();
    throw err;
  }
}

/**
 * Loads safetensors files into `module` with Module.loadStateDict semantics: every key and shape is checked from
 * the headers first and all problems are reported in one StateDictError; then the tensors are read and copied in
 * (converted to the parameters' dtype).
 */
export async function loadWeights(
  module: Module,
  paths: readonly FileInput[],
  opts: LoadWeightsOptions,
): Promise<void> {
  const { sources, close } = await openWeightSources(paths, opts);
  try {
    await loadTensorSources(module, sources, opts);
  } finally {
    close();
  }
}

/** How {@link loadPretrained} reads one model class's folders. */
export interface PretrainedSpec<C, M extends Module> {
  /** The model class, for errors ("UNet2DConditionModel"). */
  who: string;
  /** File naming of the folder (default "diffusers"). */
  naming?: WeightNaming;
  /** Checks `config.json`'s contents (`path`: the file, for errors). */
  config: (raw: Record<string, unknown>, path: string) => C;
  /** Builds the model (no random init: `layer.skipInit` is set). */
  build: (config: C, layer: LayerOptions) => M;
  /** Checkpoint keys to leave out (e.g. other towers of a combined checkpoint); the config is at hand. */
  skipKey?: (key: string, config: C) => boolean;
  /** See {@link LoadWeightsOptions}. */
  renameKey?: (key: string) => string;
  /** See {@link LoadWeightsOptions}. */
  squeezeConv1x1?: boolean;
}

/**
 * The one folder loader of every model's `fromPretrained` (`dir`: a path, a base URL or a map of files; see
 * ModelSource): reads `config.json`, finds the weights (variant, fp16
 * fallback, shards), opens their headers, builds the model in `opts.dtype` or else the dtype of most of the
 * checkpoint's bytes (float16 files stay float16), checks every key and shape before any data is read, then reads
 * the tensors a few at a time into the model. Returns the model in eval mode.
 */
export async function loadPretrained<C, M extends Module>(
  dir: ModelSource,
  opts: FromPretrainedOptions,
  spec: PretrainedSpec<C, M>,
): Promise<M> {
  const { who } = spec;
  const folder = modelFolder(dir);
  const config = spec.config(await readConfigJson(folder, who), folder.describe("config.json"));
  const paths = await findWeightFiles(folder, { who, variant: opts.variant, naming: spec.naming });
  const single = paths.length === 1 ? paths[0]! : undefined;
  const where =
    single === undefined
      ? `${paths.length} shards in ${folder.label}`
      : typeof single === "string" || single instanceof URL
        ? String(single)
        : `${describeInput(single)} in ${folder.label}`;
  const label = `${who} (${where})`;
  const skipKey = spec.skipKey;
  const { sources, close } = await openWeightSources(paths, {
    label,
    renameKey: spec.renameKey,
    skipKey: skipKey && ((key) => skipKey(key, config)),
  });
  try {
    const dtype = opts.dtype ?? dominantDType(sources.values());
    const model = spec.build(config, { dtype, skipInit: true });
    model.eval();
    await loadTensorSources(model, sources, {
      strict: opts.strict,
      squeezeConv1x1: spec.squeezeConv1x1,
      label,
      adopt: true,
      onLoaded: opts.onProgress && byteProgress(opts.onProgress, loadedBytes(model, sources), who),
    });
    if (opts.device && opts.device !== "cpu") model.toDevice(opts.device);
    return model;
  } finally {
    close();
  }
}
