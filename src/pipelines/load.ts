// Loading a Stable Diffusion pipeline's parts from what users have: a diffusers folder (`model_index.json` with
// unet/, vae/, text_encoder(_2)/, tokenizer(_2)/, scheduler/) or a single-file checkpoint in the original LDM /
// SGM naming (see load-single-file.ts). A folder is a path (Node.js), a base URL or a map of files, read through
// modelFolder(); a single file is a path, a URL or a Blob / File read slice by slice: this runs in browsers too.
import { CheckpointError } from "../io/errors.js";
import { type ModelFolder, type ModelSource, modelFolder } from "../io/folder.js";
import {
  type CheckpointDetection,
  type CheckpointFamily,
  detectCheckpointFamily,
  type PredictionType,
} from "../io/ldm/detect.js";
import type { SafetensorsFile } from "../io/safetensors-read.js";
import { describeInput, type FileInput } from "../io/source.js";
import type { RawConfig } from "../models/blocks/config-values.js";
import { findWeightFiles, readConfigJson } from "../models/blocks/weights.js";
import { CLIPTextModel, CLIPTextModelWithProjection } from "../models/clip/text-model.js";
import { CLIPTokenizer } from "../models/clip/tokenizer.js";
import { UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import { parseSchedulerConfigJson, schedulerFromConfig } from "../schedulers/registry.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import type { Device } from "../tensor/device.js";
import type { DType } from "../tensor/dtype.js";
import type { ProgressCallback } from "../tensor/progress.js";
import type { ConfigSource, PipelineConfigs } from "./family-configs.js";
import { loadSingleFileModels, openCheckpointFile, shapeMap } from "./load-single-file.js";
import { MODEL_INDEX, type ModelIndex, readModelIndex } from "./model-index.js";
import {
  baseName,
  folderName,
  hasFolder,
  type PipelineSource,
  resolveSource,
  stem,
} from "./pipeline-source.js";
import { embeddedTokenizer } from "./single-file-metadata.js";

export type { PipelineSource } from "./pipeline-source.js";

/** Options of {@link loadPipelineComponents}. */
export interface LoadPipelineOptions {
  /**
   * Tokenizer folder for a single-file checkpoint (which carries none): a CLIP tokenizer folder (vocab.json +
   * merges.txt, or tokenizer.json), or a diffusers pipeline folder with `tokenizer/` (and `tokenizer_2/` for
   * SDXL). For a diffusers folder it replaces the folder's own tokenizers.
   */
  tokenizer?: ModelSource;
  /** The model's name in generation parameters (default: the folder's or file's name without extension). */
  name?: string;
  /** Parameter dtype of every model. Default: each checkpoint's own (float16 files stay float16 in memory). */
  dtype?: DType;
  /**
   * Single files: configs replacing the family's released ones (non-standard sizes); any folder: `scheduler`
   * replaces the scheduler config.
   */
  configs?: PipelineConfigs;
  /**
   * Overrides the prediction type (scheduler `prediction_type`). Single files guess it (see
   * detectCheckpointFamily: SD 2.x defaults to v_prediction; pass "epsilon" for the 512px 2.x-base models).
   */
  predictionType?: PredictionType;
  /** Diffusers folders: weights variant ("fp16" reads `*.fp16.safetensors`). */
  variant?: string;
  /** Loading progress: stage "load", `step` / `total` in MiB of each model in turn (the message names it). */
  onProgress?: ProgressCallback;
  /**
   * The device the models compute on (default "cpu"): `"webgpu"` after `await initWebGpu()`. The text encoders
   * take their token ids from the CPU and run there too.
   */
  device?: Device;
}

/** The parts of a Stable Diffusion pipeline and what was loaded. */
export interface PipelineComponents {
  family: CheckpointFamily;
  /** The UNet takes 9 channels (latents + mask + masked image). */
  inpainting: boolean;
  predictionType: PredictionType;
  format: "diffusers" | "single-file";
  /** The folder's or file's path, URL or name (for messages). */
  path: string;
  /** A name for generation parameters: the file name without extension, or the folder name. */
  modelName: string;
  /**
   * The file whose hash identifies the model (A1111 "Model hash"): the single file, or the UNet weights (a path in
   * Node.js, else a URL, Blob or buffer).
   */
  hashPath: FileInput;
  unet: UNet2DConditionModel;
  vae: AutoencoderKL;
  /** CLIP ViT-L (SD 1.x, SDXL) or OpenCLIP ViT-H (SD 2.x); null for the SDXL refiner. */
  textEncoder: CLIPTextModel | null;
  tokenizer: CLIPTokenizer | null;
  /** SDXL's OpenCLIP ViT-bigG with projection; null for SD 1.x / 2.x. */
  textEncoder2: CLIPTextModelWithProjection | null;
  tokenizer2: CLIPTokenizer | null;
  scheduler: Scheduler;
  /** The parameter dtype of each model (null where there is none). */
  dtypes: { unet: DType; vae: DType; textEncoder: DType | null; textEncoder2: DType | null };
  /** Single files: what detection found (family, layouts, ignored tensors); null for folders. */
  detection: CheckpointDetection | null;
  /** Diffusers folders: their model_index.json; null for single files. */
  modelIndex: ModelIndex | null;
  /** Single files: where each model's config came from (given, file metadata, released, inferred); {} for folders. */
  configSources: Readonly<Record<string, ConfigSource | null>>;
  /** Single files whose configs were inferred from shapes: what that assumed (heads, groups, ...); else []. */
  assumed: readonly string[];
}

/** Pipelines `_class_name`s this loader reads. */
export const PIPELINE_CLASSES = [
  "StableDiffusionPipeline",
  "StableDiffusionImg2ImgPipeline",
  "StableDiffusionInpaintPipeline",
  "StableDiffusionXLPipeline",
  "StableDiffusionXLImg2ImgPipeline",
  "StableDiffusionXLInpaintPipeline",
] as const;

/** The family of a diffusers pipeline: SDXL by its UNet's text_time embedding, SD 2.x by a 1024-wide context. */
export function folderFamily(unetConfig: RawConfig, hasTextEncoder: boolean): CheckpointFamily {
  if (unetConfig.addition_embed_type === "text_time") return hasTextEncoder ? "sdxl" : "sdxl-refiner";
  return unetConfig.cross_attention_dim === 1024 ? "sd2" : "sd1";
}

/**
 * Tokenizers for `family` from a `--tokenizer` folder: the folder itself when it holds tokenizer files, else its
 * `tokenizer/` and (SDXL) `tokenizer_2/` subfolders.
 */
async function tokenizersFrom(
  source: ModelSource,
  family: CheckpointFamily,
): Promise<{ tokenizer: CLIPTokenizer | null; tokenizer2: CLIPTokenizer | null }> {
  const dir = modelFolder(source);
  const xl = family === "sdxl" || family === "sdxl-refiner";
  const subs = [await hasFolder(dir, "tokenizer"), await hasFolder(dir, "tokenizer_2")];
  let nested = subs.includes(true);
  // a URL folder cannot be listed: it is a tokenizer folder itself when its files are there
  if (!nested && subs.includes(null))
    nested = !((await dir.exists("vocab.json")) || (await dir.exists("tokenizer.json")));
  if (!nested) {
    if (xl) {
      throw new CheckpointError(
        `${dir.label}: an SDXL checkpoint needs two tokenizers; pass a folder with tokenizer/ and tokenizer_2/ subfolders (e.g. a diffusers SDXL pipeline folder)`,
      );
    }
    return { tokenizer: await CLIPTokenizer.fromPretrained(dir), tokenizer2: null };
  }
  const needs1 = family !== "sdxl-refiner";
  return {
    tokenizer: needs1 ? await CLIPTokenizer.fromPretrained(dir.sub("tokenizer")) : null,
    tokenizer2: xl ? await CLIPTokenizer.fromPretrained(dir.sub("tokenizer_2")) : null,
  };
}

/** The scheduler of a config, with `prediction_type` replaced when asked. */
function buildScheduler(config: RawConfig, predictionType: PredictionType | undefined): Scheduler {
  return schedulerFromConfig(predictionType ? { ...config, prediction_type: predictionType } : config);
}

async function loadFolder(dir: ModelFolder, opts: LoadPipelineOptions): Promise<PipelineComponents> {
  let index: ModelIndex;
  try {
    index = await readModelIndex(dir);
  } catch (err) {
    if (!(await dir.exists(MODEL_INDEX)) && (await dir.exists("config.json"))) {
      throw new CheckpointError(
        `${dir.label}: this is one model's folder (config.json), not a pipeline; pass the folder that holds model_index.json`,
      );
    }
    throw err;
  }
  const where = index.path;
  if (!(PIPELINE_CLASSES as readonly string[]).includes(index.className)) {
    throw new CheckpointError(
      `${where}: pipeline class ${JSON.stringify(index.className)} is not a Stable Diffusion pipeline; expected one of ${PIPELINE_CLASSES.join(", ")}`,
    );
  }
  const c = index.components;
  const present = async (
    name: string,
    expectedClasses: readonly string[],
    required: boolean,
  ): Promise<boolean> => {
    const entry = c[name];
    if (!entry) {
      if (required) throw new CheckpointError(`${where}: the pipeline has no "${name}" component`);
      return false;
    }
    if (!expectedClasses.includes(entry[1])) {
      throw new CheckpointError(`${where}: ${name} is ${entry[1]}, expected ${expectedClasses.join(" or ")}`);
    }
    if ((await hasFolder(dir, name)) === false) {
      throw new CheckpointError(
        `${dir.label}: component folder ${name}/ is missing (model_index.json lists ${name}: ${entry[1]})`,
      );
    }
    return true;
  };
  await present("unet", ["UNet2DConditionModel"], true);
  await present("vae", ["AutoencoderKL"], true);
  const hasTE = await present("text_encoder", ["CLIPTextModel"], false);
  const hasTE2 = await present("text_encoder_2", ["CLIPTextModelWithProjection"], false);
  const hasTok = await present("tokenizer", ["CLIPTokenizer", "CLIPTokenizerFast"], false);
  const hasTok2 = await present("tokenizer_2", ["CLIPTokenizer", "CLIPTokenizerFast"], false);
  const schedulerEntry = c.scheduler;
  if (!schedulerEntry && !opts.configs?.scheduler)
    throw new CheckpointError(`${where}: the pipeline has no "scheduler" component`);

  // everything that can be checked cheaply is checked before any weights are read
  const unetDir = dir.sub("unet");
  const family = folderFamily(await readConfigJson(unetDir, "UNet2DConditionModel"), hasTE);
  if ((family === "sdxl" || family === "sdxl-refiner") && !hasTE2)
    throw new CheckpointError(
      `${where}: an SDXL pipeline needs text_encoder_2 (CLIPTextModelWithProjection)`,
    );
  if (family !== "sdxl-refiner" && !hasTE)
    throw new CheckpointError(`${where}: the pipeline has no "text_encoder" component`);
  let tokenizer: CLIPTokenizer | null = null;
  let tokenizer2: CLIPTokenizer | null = null;
  if (opts.tokenizer) ({ tokenizer, tokenizer2 } = await tokenizersFrom(opts.tokenizer, family));
  else {
    if (hasTE && !hasTok) {
      throw new CheckpointError(
        `${where}: the pipeline has no tokenizer; pass one with --tokenizer DIR ({ tokenizer: DIR })`,
      );
    }
    if (hasTE2 && !hasTok2)
      throw new CheckpointError(`${where}: the pipeline has no "tokenizer_2" component`);
    tokenizer = hasTok ? await CLIPTokenizer.fromPretrained(dir.sub("tokenizer")) : null;
    tokenizer2 = hasTok2 ? await CLIPTokenizer.fromPretrained(dir.sub("tokenizer_2")) : null;
  }
  let schedulerConfig: RawConfig;
  if (opts.configs?.scheduler) schedulerConfig = opts.configs.scheduler;
  else {
    const schedulerDir = dir.sub("scheduler");
    const file = schedulerDir.describe("scheduler_config.json");
    let text: string | null;
    try {
      text = await schedulerDir.readText("scheduler_config.json");
    } catch (err) {
      throw new CheckpointError(`${file}: cannot read the scheduler config (${(err as Error).message})`, {
        cause: err,
      });
    }
    if (text === null) throw new CheckpointError(`${file}: cannot read the scheduler config (not found)`);
    schedulerConfig = parseSchedulerConfigJson(text, file);
  }
  const scheduler = buildScheduler(schedulerConfig, opts.predictionType);

  const fp = { dtype: opts.dtype, variant: opts.variant, onProgress: opts.onProgress };
  const unet = await UNet2DConditionModel.fromPretrained(unetDir, fp);
  const vae = await AutoencoderKL.fromPretrained(dir.sub("vae"), fp);
  const textEncoder = hasTE ? await CLIPTextModel.fromPretrained(dir.sub("text_encoder"), fp) : null;
  const textEncoder2 = hasTE2
    ? await CLIPTextModelWithProjection.fromPretrained(dir.sub("text_encoder_2"), fp)
    : null;
  const unetFiles = await findWeightFiles(unetDir, { who: "UNet2DConditionModel", variant: opts.variant });
  const dtypeOf = (m: { parameters(): { dtype: DType }[] } | null): DType | null =>
    m?.parameters()[0]?.dtype ?? null;
  return {
    family,
    inpainting: unet.config.in_channels === 9,
    predictionType: (scheduler.config.prediction_type as PredictionType | undefined) ?? "epsilon",
    format: "diffusers",
    path: dir.label,
    modelName: opts.name ?? folderName(dir, "model"),
    hashPath: unetFiles[0]!,
    unet,
    vae,
    textEncoder,
    tokenizer,
    textEncoder2,
    tokenizer2,
    scheduler,
    dtypes: {
      unet: dtypeOf(unet)!,
      vae: dtypeOf(vae)!,
      textEncoder: dtypeOf(textEncoder),
      textEncoder2: dtypeOf(textEncoder2),
    },
    detection: null,
    modelIndex: index,
    configSources: {},
    assumed: [],
  };
}

/** detectCheckpointFamily, with the file named in its errors. */
function detectNamingTheFile(file: SafetensorsFile, path: string): CheckpointDetection {
  try {
    return detectCheckpointFamily(shapeMap(file), file.metadata);
  } catch (err) {
    if (err instanceof CheckpointError && !err.message.startsWith(path))
      throw new CheckpointError(`${path}: ${err.message}`, { cause: err });
    throw err;
  }
}

async function loadFile(input: FileInput, opts: LoadPipelineOptions): Promise<PipelineComponents> {
  const path = describeInput(input);
  const file = await openCheckpointFile(input);
  try {
    // detection reads only the header: the tokenizer is checked before any weights are read
    const { family } = detectNamingTheFile(file, path);
    const embedded = embeddedTokenizer(file.metadata);
    if (!opts.tokenizer && !embedded) {
      throw new CheckpointError(
        `${path}: a single-file checkpoint carries no tokenizer; pass a tokenizer folder with --tokenizer DIR ({ tokenizer: DIR }): ` +
          (family === "sdxl" || family === "sdxl-refiner"
            ? "a diffusers SDXL pipeline folder with tokenizer/ and tokenizer_2/"
            : "a CLIP tokenizer folder with vocab.json + merges.txt, or a diffusers pipeline folder with tokenizer/"),
      );
    }
    const { tokenizer, tokenizer2 } = opts.tokenizer
      ? await tokenizersFrom(opts.tokenizer, family)
      : { tokenizer: CLIPTokenizer.fromFiles(embedded!, `${path} (metadata)`), tokenizer2: null };
    const m = await loadSingleFileModels(file, opts);
    const scheduler = buildScheduler(m.configs.scheduler, opts.predictionType);
    return {
      family,
      inpainting: m.detection.inpainting,
      predictionType: (scheduler.config.prediction_type as PredictionType | undefined) ?? m.predictionType,
      format: "single-file",
      path,
      modelName: opts.name ?? stem(baseName(path)),
      hashPath: input,
      unet: m.unet,
      vae: m.vae,
      textEncoder: m.textEncoder,
      tokenizer,
      textEncoder2: m.textEncoder2,
      tokenizer2,
      scheduler,
      dtypes: m.dtypes,
      detection: m.detection,
      modelIndex: null,
      configSources: m.configs.sources,
      assumed: m.configs.assumed,
    };
  } finally {
    file.close();
  }
}

/**
 * Loads the parts of a Stable Diffusion pipeline (1.x, 2.x, XL, XL refiner, inpainting variants) from a diffusers
 * folder (read through `model_index.json`) or a single-file `.safetensors` checkpoint in the original LDM naming
 * (family detected from keys and shapes; keys converted; tensors read one at a time). Half-precision weights stay
 * half-precision unless `dtype` says otherwise. Errors are CheckpointErrors naming what was found and expected
 * (StateDictError for keys and shapes that do not fit the model). In browsers the source is a URL, a map of files
 * or a `File` (see {@link PipelineSource}).
 */
export async function loadPipelineComponents(
  source: PipelineSource,
  opts: LoadPipelineOptions = {},
): Promise<PipelineComponents> {
  const where = await resolveSource(source);
  const c = "folder" in where ? await loadFolder(where.folder, opts) : await loadFile(where.file, opts);
  if (opts.device && opts.device !== "cpu") {
    for (const m of [c.unet, c.vae, c.textEncoder, c.textEncoder2]) m?.toDevice(opts.device);
  }
  return c;
}

/** Weight files of one component folder of a pipeline (diffusers or transformers naming), as paths (Node.js). */
export async function componentWeightFiles(
  dir: string,
  className: string,
  variant?: string,
): Promise<string[]> {
  // a folder path yields file paths; transformers-style folders (CLIP, the package's classifiers) hold model*.safetensors
  const transformers = className.startsWith("CLIP") || (await modelFolder(dir).exists("model.safetensors"));
  return findWeightFiles(dir, {
    who: className,
    variant,
    naming: transformers ? "transformers" : "diffusers",
  }) as Promise<string[]>;
}
