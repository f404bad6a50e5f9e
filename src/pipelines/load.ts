// Loading a Stable Diffusion pipeline's parts from what users have: a diffusers folder (`model_index.json` with
// unet/, vae/, text_encoder(_2)/, tokenizer(_2)/, scheduler/) or a single-file checkpoint in the original LDM /
// SGM naming (see load-single-file.ts). Node.js only.
import { readFile, stat } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { CheckpointError } from "../io/errors.js";
import {
  type CheckpointDetection,
  type CheckpointFamily,
  detectCheckpointFamily,
  type PredictionType,
} from "../io/ldm/detect.js";
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
import { embeddedTokenizer } from "./single-file-metadata.js";

/** Options of {@link loadPipelineComponents}. */
export interface LoadPipelineOptions {
  /**
   * Tokenizer folder for a single-file checkpoint (which carries none): a CLIP tokenizer folder (vocab.json +
   * merges.txt, or tokenizer.json), or a diffusers pipeline folder with `tokenizer/` (and `tokenizer_2/` for
   * SDXL). For a diffusers folder it replaces the folder's own tokenizers.
   */
  tokenizer?: string;
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
  path: string;
  /** A name for generation parameters: the file name without extension, or the folder name. */
  modelName: string;
  /** The file whose hash identifies the model (A1111 "Model hash"): the single file, or the UNet weights. */
  hashPath: string;
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

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

/**
 * Tokenizers for `family` from a `--tokenizer` folder: the folder itself when it holds tokenizer files, else its
 * `tokenizer/` and (SDXL) `tokenizer_2/` subfolders.
 */
async function tokenizersFrom(
  dir: string,
  family: CheckpointFamily,
): Promise<{ tokenizer: CLIPTokenizer | null; tokenizer2: CLIPTokenizer | null }> {
  const xl = family === "sdxl" || family === "sdxl-refiner";
  if (!(await isDir(join(dir, "tokenizer"))) && !(await isDir(join(dir, "tokenizer_2")))) {
    if (xl) {
      throw new CheckpointError(
        `${dir}: an SDXL checkpoint needs two tokenizers; pass a folder with tokenizer/ and tokenizer_2/ subfolders (e.g. a diffusers SDXL pipeline folder)`,
      );
    }
    return { tokenizer: await CLIPTokenizer.fromPretrained(dir), tokenizer2: null };
  }
  const needs1 = family !== "sdxl-refiner";
  return {
    tokenizer: needs1 ? await CLIPTokenizer.fromPretrained(join(dir, "tokenizer")) : null,
    tokenizer2: xl ? await CLIPTokenizer.fromPretrained(join(dir, "tokenizer_2")) : null,
  };
}

/** The scheduler of a config, with `prediction_type` replaced when asked. */
function buildScheduler(config: RawConfig, predictionType: PredictionType | undefined): Scheduler {
  return schedulerFromConfig(predictionType ? { ...config, prediction_type: predictionType } : config);
}

async function loadFolder(dir: string, opts: LoadPipelineOptions): Promise<PipelineComponents> {
  let index: ModelIndex;
  try {
    index = await readModelIndex(dir);
  } catch (err) {
    if (
      !(await stat(join(dir, MODEL_INDEX)).catch(() => null)) &&
      (await stat(join(dir, "config.json")).catch(() => null))
    ) {
      throw new CheckpointError(
        `${dir}: this is one model's folder (config.json), not a pipeline; pass the folder that holds model_index.json`,
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
    if (!(await isDir(join(dir, name)))) {
      throw new CheckpointError(
        `${dir}: component folder ${name}/ is missing (model_index.json lists ${name}: ${entry[1]})`,
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
  const unetDir = join(dir, "unet");
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
    tokenizer = hasTok ? await CLIPTokenizer.fromPretrained(join(dir, "tokenizer")) : null;
    tokenizer2 = hasTok2 ? await CLIPTokenizer.fromPretrained(join(dir, "tokenizer_2")) : null;
  }
  let schedulerConfig: RawConfig;
  if (opts.configs?.scheduler) schedulerConfig = opts.configs.scheduler;
  else {
    const file = join(dir, "scheduler", "scheduler_config.json");
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new CheckpointError(`${file}: cannot read the scheduler config (${(err as Error).message})`, {
        cause: err,
      });
    }
    schedulerConfig = parseSchedulerConfigJson(text, file);
  }
  const scheduler = buildScheduler(schedulerConfig, opts.predictionType);

  const fp = { dtype: opts.dtype, variant: opts.variant, onProgress: opts.onProgress };
  const unet = await UNet2DConditionModel.fromPretrained(unetDir, fp);
  const vae = await AutoencoderKL.fromPretrained(join(dir, "vae"), fp);
  const textEncoder = hasTE ? await CLIPTextModel.fromPretrained(join(dir, "text_encoder"), fp) : null;
  const textEncoder2 = hasTE2
    ? await CLIPTextModelWithProjection.fromPretrained(join(dir, "text_encoder_2"), fp)
    : null;
  const unetFiles = await findWeightFiles(unetDir, { who: "UNet2DConditionModel", variant: opts.variant });
  const dtypeOf = (m: { parameters(): { dtype: DType }[] } | null): DType | null =>
    m?.parameters()[0]?.dtype ?? null;
  return {
    family,
    inpainting: unet.config.in_channels === 9,
    predictionType: (scheduler.config.prediction_type as PredictionType | undefined) ?? "epsilon",
    format: "diffusers",
    path: dir,
    modelName: basename(dir),
    hashPath: unetFiles[0] as string, // a folder path yields file paths
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

async function loadFile(path: string, opts: LoadPipelineOptions): Promise<PipelineComponents> {
  const file = await openCheckpointFile(path);
  try {
    // detection reads only the header: the tokenizer is checked before any weights are read
    const { family } = detectCheckpointFamily(shapeMap(file), file.metadata);
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
      modelName: basename(path, extname(path)),
      hashPath: path,
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
 * (StateDictError for keys and shapes that do not fit the model).
 */
export async function loadPipelineComponents(
  dirOrFile: string,
  opts: LoadPipelineOptions = {},
): Promise<PipelineComponents> {
  const info = await stat(dirOrFile).catch((err: unknown) => {
    throw new CheckpointError(`${dirOrFile}: not found (${(err as { code?: string }).code ?? err})`, {
      cause: err,
    });
  });
  const c = info.isDirectory() ? await loadFolder(dirOrFile, opts) : await loadFile(dirOrFile, opts);
  if (opts.device && opts.device !== "cpu") {
    for (const m of [c.unet, c.vae, c.textEncoder, c.textEncoder2]) m?.toDevice(opts.device);
  }
  return c;
}

/** Weight files of one component folder of a pipeline (diffusers or transformers naming). */
export async function componentWeightFiles(
  dir: string,
  className: string,
  variant?: string,
): Promise<string[]> {
  // a folder path yields file paths; transformers-style folders (CLIP, the package's classifiers) hold model*.safetensors
  const transformers =
    className.startsWith("CLIP") || (await stat(join(dir, "model.safetensors")).catch(() => null)) !== null;
  return findWeightFiles(dir, {
    who: className,
    variant,
    naming: transformers ? "transformers" : "diffusers",
  }) as Promise<string[]>;
}
