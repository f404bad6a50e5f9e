// Loading diffusers model folders (`config.json` + `diffusion_pytorch_model[.fp16].safetensors`, or sharded with an
// `.index.json`): keys and shapes are checked against the safetensors headers before any tensor data is read, then
// tensors are read a few at a time and copied into the module, so a checkpoint never sits in memory twice.
import { type ModelSource, modelFolder } from "../../io/folder.js";
import {
  openSafetensors,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsFile,
} from "../../io/safetensors-read.js";
import { describeInput, type FileInput } from "../../io/source.js";
import { type Module, type ShapeMismatch, StateDictError } from "../../nn/index.js";
import { reshape } from "../../ops/index.js";
import type { DType } from "../../tensor/dtype.js";
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
}

/** Reads `<dir>/config.json` as a JSON object (`dir`: a path, URL or map of files). */
export async function readConfigJson(dir: ModelSource, who: string): Promise<Record<string, unknown>> {
  const folder = modelFolder(dir);
  const path = folder.describe("config.json");
  let text: string | null;
  try {
    text = await folder.readText("config.json");
  } catch (err) {
    throw new CheckpointError(`${who}: cannot read ${path}: ${String(err)}`, { cause: err });
  }
  if (text === null) {
    throw new CheckpointError(
      `${who}: ${path} not found (a diffusers model folder has config.json next to its weights)`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${who}: ${path} is not valid JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new CheckpointError(`${who}: ${path} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * The safetensors file(s) of a diffusers model folder, in diffusers' order: `<stem>[.variant].safetensors`, then
 * its sharded `.index.json`; without a variant the `.fp16` files are the fallback when they are all there is.
 */
export async function findWeightFiles(dir: ModelSource, who: string, variant?: string): Promise<FileInput[]> {
  const base = "diffusion_pytorch_model";
  const stems = variant ? [`${base}.${variant}`] : [base, `${base}.fp16`];
  const folder = modelFolder(dir);
  for (const stem of stems) {
    const single = `${stem}.safetensors`;
    if (await folder.exists(single)) return [folder.file(single)];
    const indexName = `${stem}.safetensors.index.json`;
    const index = folder.describe(indexName);
    if (await folder.exists(indexName)) {
      let map: unknown;
      try {
        map = JSON.parse((await folder.readText(indexName)) ?? "{}").weight_map;
      } catch (err) {
        throw new CheckpointError(`${who}: cannot read ${index}: ${(err as Error).message}`, { cause: err });
      }
      if (typeof map !== "object" || map === null)
        throw new CheckpointError(`${who}: ${index} has no "weight_map" object`);
      return [...new Set(Object.values(map as Record<string, unknown>).map(String))].map((f) =>
        folder.file(f),
      );
    }
  }
  let present: string[];
  try {
    present = ((await folder.list()) ?? []).filter((f) => /\.(safetensors|bin|ckpt|pt|json)$/.test(f));
  } catch (err) {
    throw new CheckpointError(`${who}: folder ${folder.label} not found`, { cause: err });
  }
  const tried = stems.flatMap((s) => [`${s}.safetensors`, `${s}.safetensors.index.json`]).join(", ");
  const pickle = present.some((f) => /\.(bin|ckpt|pt)$/.test(f))
    ? " (PyTorch pickle checkpoints are not read; convert them to safetensors)"
    : "";
  throw new CheckpointError(
    `${who}: no weights in ${folder.label}; looked for ${tried}; the folder has ${present.length ? present.join(", ") : "no weight files"}${pickle}`,
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
  /** Name of the model in error messages. */
  label: string;
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

/** The float dtype of most bytes of the files: what `fromPretrained` keeps by default. */
export async function checkpointDType(paths: readonly FileInput[]): Promise<DType> {
  const entries: SafetensorsEntry[] = [];
  for (const path of paths) {
    const file = await openSafetensors(path);
    entries.push(...file.entries);
    file.close();
  }
  return dominantDType(entries);
}

/** The parameter dtype of a `fromPretrained` call: `opts.dtype`, else the checkpoint's (see FromPretrainedOptions). */
export async function resolveLoadDType(
  opts: FromPretrainedOptions,
  paths: readonly FileInput[],
): Promise<DType> {
  return opts.dtype ?? (await checkpointDType(paths));
}

/** One tensor to load: its shape (known before reading) and how to read it. */
export interface TensorSource {
  readonly shape: readonly number[];
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
  opts: Pick<LoadWeightsOptions, "strict" | "squeezeConv1x1" | "label">,
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
    if (batch.size > 0) module.loadStateDict(batch, { strict: false });
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
  }
  flush();
}

/**
 * Loads safetensors files (paths, URLs, bytes or Blobs) into `module` with Module.loadStateDict semantics: every
 * key and shape is checked from the headers first and all problems are reported in one StateDictError; then the
 * tensors are read and copied in (converted to the parameters' dtype).
 */
export async function loadWeights(
  module: Module,
  paths: readonly FileInput[],
  opts: LoadWeightsOptions,
): Promise<void> {
  const files: SafetensorsFile[] = [];
  try {
    const sources = new Map<string, TensorSource & { file: SafetensorsFile; key: string }>();
    for (const path of paths) {
      const file = await openSafetensors(path);
      files.push(file);
      for (const e of file.entries) {
        const key = opts.renameKey ? opts.renameKey(e.name) : e.name;
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
          read: () => file.getAsync(name),
        });
      }
    }
    await loadTensorSources(module, sources, opts);
  } finally {
    for (const f of files) f.close();
  }
}
