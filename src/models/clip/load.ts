// The CLIP text encoders' part of loading transformers folders (`config.json` + `model[.fp16].safetensors`, or
// sharded): the config check and which keys of the checkpoint belong to the text tower. Reading the files is the
// models' one loader (blocks/weights.ts). A folder is a path (Node.js), a base URL or a map of files.
import { type ModelSource, modelFolder } from "../../io/folder.js";
import type { LayerOptions, Module } from "../../nn/index.js";
import { ArgumentError } from "../../tensor/errors.js";
import { CheckpointError } from "../blocks/errors.js";
import { type FromPretrainedOptions, loadPretrained, readConfigJson } from "../blocks/weights.js";
import { type CLIPTextConfig, clipTextConfig } from "./config.js";

/**
 * Options of `CLIPTextModel.fromPretrained` / `CLIPTextModelWithProjection.fromPretrained`: the same as every
 * model's `fromPretrained` (the checkpoint's dtype is kept unless `dtype` is given; `variant: "fp16"` reads
 * `model.fp16.safetensors`).
 */
export type CLIPFromPretrainedOptions = FromPretrainedOptions;

/** The buffer older transformers versions saved; the models compute positions themselves. */
const POSITION_IDS = "text_model.embeddings.position_ids";

/** A checked text config, and whether `config.json` was a whole CLIPConfig (with `text_config`). */
interface ReadCLIPConfig {
  config: CLIPTextConfig;
  full: boolean;
}

/** Checks a text encoder's `config.json` contents; `path` names the file in errors. */
function clipConfigOf(raw: Record<string, unknown>, path: string): ReadCLIPConfig {
  try {
    return { config: clipTextConfig(raw), full: raw.text_config != null };
  } catch (err) {
    if (err instanceof ArgumentError) throw new CheckpointError(`${path}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Reads and checks `<dir>/config.json`; `full` tells whether it was a whole CLIPConfig (with `text_config`). */
export async function readCLIPTextConfig(dir: ModelSource): Promise<ReadCLIPConfig> {
  const folder = modelFolder(dir);
  return clipConfigOf(await readConfigJson(folder, "CLIPTextModel"), folder.describe("config.json"));
}

/**
 * Builds a text encoder from a transformers folder with the models' one loader: a saved `position_ids` buffer is
 * ignored, and of a whole CLIPModel checkpoint only the text tower (and its projection where the model has one) is
 * read.
 */
export function loadCLIPPretrained<M extends Module>(
  dir: ModelSource,
  opts: CLIPFromPretrainedOptions,
  className: string,
  withProjection: boolean,
  build: (config: CLIPTextConfig, layerOpts: LayerOptions) => M,
): Promise<M> {
  return loadPretrained(dir, opts, {
    who: className,
    naming: "transformers",
    config: clipConfigOf,
    build: (c, layer) => build(c.config, layer),
    skipKey: (key, c) =>
      key === POSITION_IDS ||
      (c.full && !(key.startsWith("text_model.") || (withProjection && key.startsWith("text_projection.")))),
  });
}
