// Loading transformers text-encoder folders (`config.json` + safetensors weights) into the CLIP models. Keys and
// shapes are checked from the safetensors headers before any tensor data is read; tensors are then read and
// copied one at a time, so a checkpoint never sits in memory twice.
import { type ModelFolder, type ModelSource, modelFolder } from "../../io/folder.js";
import { openSafetensors, type SafetensorsFile } from "../../io/safetensors-read.js";
import type { FileInput } from "../../io/source.js";
import { type LayerOptions, type Module, type ShapeMismatch, StateDictError } from "../../nn/index.js";
import { ArgumentError } from "../../tensor/errors.js";
import { shapesEqual } from "../../tensor/shape.js";
import { dominantDType, type FromPretrainedOptions } from "../blocks/weights.js";
import { type CLIPTextConfig, clipTextConfig } from "./config.js";
import { CLIPLoadError } from "./errors.js";

/**
 * Options of `CLIPTextModel.fromPretrained` / `CLIPTextModelWithProjection.fromPretrained`: the same as every
 * model's `fromPretrained` (the checkpoint's dtype is kept unless `dtype` is given; `variant: "fp16"` reads
 * `model.fp16.safetensors`).
 */
export type CLIPFromPretrainedOptions = FromPretrainedOptions;

/** The buffer older transformers versions saved; the models compute positions themselves. */
const POSITION_IDS = "text_model.embeddings.position_ids";

async function readJson(folder: ModelFolder, name: string, what: string): Promise<Record<string, unknown>> {
  const path = folder.describe(name);
  let text: string | null;
  try {
    text = await folder.readText(name);
  } catch (err) {
    throw new CLIPLoadError(`${path}: cannot read ${what}: ${String(err)}`, { cause: err });
  }
  if (text === null) throw new CLIPLoadError(`${path}: ${what} not found`);
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (err) {
    throw new CLIPLoadError(`${path}: ${what} is not a valid JSON object (${(err as Error).message})`, {
      cause: err,
    });
  }
}

/** Reads and checks `<dir>/config.json`; `full` tells whether it was a whole CLIPConfig (with `text_config`). */
export async function readCLIPTextConfig(
  dir: ModelSource,
): Promise<{ config: CLIPTextConfig; full: boolean }> {
  const folder = modelFolder(dir);
  const path = folder.describe("config.json");
  const raw = await readJson(folder, "config.json", "config.json");
  try {
    return { config: clipTextConfig(raw), full: raw.text_config != null };
  } catch (err) {
    if (err instanceof ArgumentError) throw new CLIPLoadError(`${path}: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * The safetensors file(s) of a folder, in diffusers' order of preference: `model[.variant].safetensors`, then
 * its sharded `.index.json`; without a variant, the fp16 files are the fallback.
 */
export async function findWeightFiles(dir: ModelSource, variant?: string): Promise<FileInput[]> {
  const stems = variant ? [`model.${variant}`] : ["model", "model.fp16"];
  const folder = modelFolder(dir);
  for (const stem of stems) {
    const single = `${stem}.safetensors`;
    if (await folder.exists(single)) return [folder.file(single)];
    const index = `${stem}.safetensors.index.json`;
    if (await folder.exists(index)) {
      const weightMap = (await readJson(folder, index, "safetensors index")).weight_map;
      if (typeof weightMap !== "object" || weightMap === null)
        throw new CLIPLoadError(`${folder.describe(index)}: no "weight_map" object`);
      const shards = [...new Set(Object.values(weightMap as Record<string, unknown>).map(String))];
      return shards.map((s) => folder.file(s));
    }
  }
  let present: string[] = [];
  try {
    present = ((await folder.list()) ?? []).filter((f) => /\.(safetensors|bin|json)$/.test(f));
  } catch {
    throw new CLIPLoadError(`${folder.label}: folder not found`);
  }
  const tried = stems.flatMap((s) => [`${s}.safetensors`, `${s}.safetensors.index.json`]).join(", ");
  const bin = present.some((f) => f.endsWith(".bin"))
    ? " (PyTorch .bin checkpoints are not read; convert them to safetensors)"
    : "";
  throw new CLIPLoadError(
    `${folder.label}: no weights found; looked for ${tried}; the folder has ${present.length ? present.join(", ") : "no weight files"}${bin}`,
  );
}

/**
 * Builds a model from a transformers folder: reads the config, builds the model with `build` (no random init),
 * checks every key and shape against the file headers, then copies the tensors in one by one.
 */
export async function loadPretrained<M extends Module>(
  dir: ModelSource,
  opts: CLIPFromPretrainedOptions,
  className: string,
  withProjection: boolean,
  build: (config: CLIPTextConfig, layerOpts: LayerOptions) => M,
): Promise<M> {
  const { config, full } = await readCLIPTextConfig(dir);
  const paths = await findWeightFiles(dir, opts.variant);
  const files: SafetensorsFile[] = [];
  try {
    const where = new Map<string, SafetensorsFile>();
    for (const path of paths) {
      const file = await openSafetensors(path);
      files.push(file);
      for (const e of file.entries) {
        if (where.has(e.name))
          throw new CLIPLoadError(
            `${file.path}: tensor ${e.name} also appears in ${where.get(e.name)!.path}`,
          );
        where.set(e.name, file);
      }
    }
    where.delete(POSITION_IDS);
    if (full) {
      // a whole CLIPModel checkpoint: keep the text tower (and its projection where the model has one)
      for (const name of [...where.keys()]) {
        const keep =
          name.startsWith("text_model.") || (withProjection && name.startsWith("text_projection."));
        if (!keep) where.delete(name);
      }
    }
    const dtype = opts.dtype ?? dominantDType([...where].map(([name, file]) => file.entry(name)));
    const model = build(config, { dtype, skipInit: true });
    model.eval();
    const label = `${className} (${files.length === 1 ? files[0]!.path : `${files.length} shards in ${modelFolder(dir).label}`})`;
    const expected = model.stateDict();
    const missing = [...expected.keys()].filter((k) => !where.has(k));
    const unexpected = [...where.keys()].filter((k) => !expected.has(k));
    const mismatched: ShapeMismatch[] = [];
    for (const [name, t] of expected) {
      const found = where.get(name)?.entry(name).shape;
      if (found && !shapesEqual(found, t.shape)) mismatched.push({ key: name, expected: t.shape, found });
    }
    const strict = opts.strict ?? true;
    if (mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0))) {
      throw new StateDictError(label, missing, unexpected, mismatched);
    }
    for (const name of expected.keys()) {
      const file = where.get(name);
      if (!file) continue;
      model.loadStateDict(new Map([[name, await file.getAsync(name)]]), { strict: false });
    }
    return model;
  } finally {
    for (const f of files) f.close();
  }
}
