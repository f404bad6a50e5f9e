// Loading a single-file Stable Diffusion checkpoint (`.safetensors` in the original LDM / SGM naming): detect the
// family from the header, build the models from given, embedded, released or shape-inferred configs, convert the keys to the diffusers /
// transformers layouts and read the tensors one at a time, in the file's dtype unless another is asked for.
import { CheckpointError } from "../io/errors.js";
import type { TextEncoderShapeInfo } from "../io/ldm/clip.js";
import { ldmCLIPPlan, openCLIPPlan } from "../io/ldm/clip.js";
import { type CheckpointDetection, detectCheckpointFamily, type PredictionType } from "../io/ldm/detect.js";
import { applyTransform, type ConversionPlan, type ShapeMap } from "../io/ldm/plan.js";
import { ldmUNetPlan } from "../io/ldm/unet.js";
import { ldmVAEPlan } from "../io/ldm/vae.js";
import { openSafetensors, type SafetensorsFile } from "../io/safetensors-read.js";
import { describeInput, type FileInput } from "../io/source.js";
import {
  byteProgress,
  dominantDType,
  loadedBytes,
  loadTensorSources,
  type TensorSource,
} from "../models/blocks/weights.js";
import { CLIPTextModel, CLIPTextModelWithProjection } from "../models/clip/text-model.js";
import { UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import type { Module } from "../nn/index.js";
import type { DType } from "../tensor/dtype.js";
import type { ProgressCallback } from "../tensor/progress.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  type PipelineConfigs,
  type ResolvedConfigsWithSources,
  resolveConfigs,
  unetKeyLayout,
} from "./family-configs.js";
import { embeddedConfigs } from "./single-file-metadata.js";

/** The models of a single-file checkpoint, before tokenizers and scheduler are added. */
export interface SingleFileModels {
  detection: CheckpointDetection;
  predictionType: PredictionType;
  configs: ResolvedConfigsWithSources;
  unet: UNet2DConditionModel;
  vae: AutoencoderKL;
  textEncoder: CLIPTextModel | null;
  textEncoder2: CLIPTextModelWithProjection | null;
  dtypes: { unet: DType; vae: DType; textEncoder: DType | null; textEncoder2: DType | null };
}

/** Opens a single-file checkpoint; pickles and other non-safetensors files get an actionable CheckpointError. */
export async function openCheckpointFile(input: FileInput): Promise<SafetensorsFile> {
  const path = describeInput(input);
  try {
    return await openSafetensors(input);
  } catch (err) {
    const pickle = /\.(ckpt|pt|pth|bin)$/i.test(path)
      ? " (PyTorch pickle checkpoints are not read: convert it to .safetensors first)"
      : "";
    throw new CheckpointError(
      `${path}: not a readable safetensors checkpoint${pickle}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Tensor names and shapes of an open file. */
export function shapeMap(file: SafetensorsFile): ShapeMap {
  return new Map(file.entries.map((e) => [e.name, e.shape]));
}

/**
 * The tensors of a plan as load sources. A fused tensor (OpenCLIP's q/k/v `in_proj_weight` and `in_proj_bias`) is
 * read once for its three parts: the two source tensors read last are kept (the module asks for q/k/v weight and
 * bias interleaved).
 */
function planSources(file: SafetensorsFile, plan: ConversionPlan): Map<string, TensorSource> {
  const recent = new Map<string, Tensor>();
  const read = async (name: string): Promise<Tensor> => {
    let t = recent.get(name);
    if (!t) {
      t = await file.getAsync(name);
      recent.set(name, t);
      if (recent.size > 2) recent.delete(recent.keys().next().value!);
    }
    return t;
  };
  const sources = new Map<string, TensorSource>();
  for (const [target, m] of plan.tensors) {
    const entry = file.entry(m.source);
    sources.set(target, {
      shape: m.shape,
      dtype: entry.dtype,
      byteLength: m.transform.kind === "chunk" ? entry.byteLength / m.transform.count : entry.byteLength,
      read: async () => applyTransform(await read(m.source), m.transform),
    });
  }
  return sources;
}

/** The parameter dtype of a component: the one asked for, else that of most of its bytes in the file. */
function componentDType(file: SafetensorsFile, plan: ConversionPlan, dtype: DType | undefined): DType {
  if (dtype) return dtype;
  const sources = new Set([...plan.tensors.values()].map((m) => m.source));
  return dominantDType([...sources].map((s) => file.entry(s)));
}

async function load<M extends Module>(
  file: SafetensorsFile,
  plan: ConversionPlan,
  model: M,
  label: string,
  onProgress: ProgressCallback | undefined,
): Promise<M> {
  model.eval();
  const sources = planSources(file, plan);
  await loadTensorSources(model, sources, {
    label: `${label} (${file.path})`,
    adopt: true,
    onLoaded: onProgress && byteProgress(onProgress, loadedBytes(model, sources), label),
  });
  return model;
}

function textPlan(
  shapes: ShapeMap,
  info: TextEncoderShapeInfo,
  layers: number,
  projection: boolean,
): ConversionPlan {
  return info.kind === "clip"
    ? ldmCLIPPlan(shapes, info.prefix, { projection })
    : openCLIPPlan(shapes, info.prefix, { layers, projection });
}

/** Options of {@link loadSingleFileModels}. */
export interface SingleFileOptions {
  dtype?: DType;
  configs?: PipelineConfigs;
  predictionType?: PredictionType;
  /** Loading progress: stage "load", MiB of each model in turn (the message names it). */
  onProgress?: ProgressCallback;
}

/** Detects, converts and loads the UNet, VAE and text encoder(s) of an open single-file checkpoint. */
export async function loadSingleFileModels(
  file: SafetensorsFile,
  opts: SingleFileOptions = {},
): Promise<SingleFileModels> {
  const shapes = shapeMap(file);
  const detection = detectCheckpointFamily(shapes, file.metadata);
  const { family } = detection;
  const predictionType = opts.predictionType ?? detection.predictionType;
  const found = `found ${[detection.unet.prefix, detection.vae?.prefix, detection.textEncoder?.prefix, detection.textEncoder2?.prefix].filter(Boolean).join(", ")}`;
  if (!detection.vae) {
    throw new CheckpointError(
      `${file.path}: no VAE (first_stage_model.*) in this ${family} checkpoint (${found}); a single file must hold UNet, VAE and text encoder(s)`,
    );
  }
  if (family !== "sdxl-refiner" && !detection.textEncoder) {
    throw new CheckpointError(`${file.path}: no text encoder in this ${family} checkpoint (${found})`);
  }
  if ((family === "sdxl" || family === "sdxl-refiner") && !detection.textEncoder2) {
    throw new CheckpointError(
      `${file.path}: no OpenCLIP ViT-bigG text encoder (conditioner.embedders.${family === "sdxl" ? 1 : 0}.model.*) in this ${family} checkpoint (${found})`,
    );
  }
  const configs = resolveConfigs(
    detection,
    opts.configs ?? {},
    predictionType,
    embeddedConfigs(file.metadata, file.path),
  );

  const unetPlan = ldmUNetPlan(shapes, unetKeyLayout(configs.unet), detection.unet.prefix);
  const unetDType = componentDType(file, unetPlan, opts.dtype);
  const unet = await load(
    file,
    unetPlan,
    new UNet2DConditionModel(configs.unet, { dtype: unetDType, skipInit: true }),
    "UNet2DConditionModel",
    opts.onProgress,
  );

  const vaePlan = ldmVAEPlan(shapes, detection.vae.prefix, configs.vae.block_out_channels.length);
  const vaeDType = componentDType(file, vaePlan, opts.dtype);
  const vae = await load(
    file,
    vaePlan,
    new AutoencoderKL(configs.vae, { dtype: vaeDType, skipInit: true }),
    "AutoencoderKL",
    opts.onProgress,
  );

  let textEncoder: CLIPTextModel | null = null;
  let teDType: DType | null = null;
  if (configs.textEncoder && detection.textEncoder) {
    const plan = textPlan(shapes, detection.textEncoder, configs.textEncoder.num_hidden_layers, false);
    teDType = componentDType(file, plan, opts.dtype);
    textEncoder = await load(
      file,
      plan,
      new CLIPTextModel(configs.textEncoder, { dtype: teDType, skipInit: true }),
      "CLIPTextModel",
      opts.onProgress,
    );
  }
  let textEncoder2: CLIPTextModelWithProjection | null = null;
  let te2DType: DType | null = null;
  if (configs.textEncoder2 && detection.textEncoder2) {
    const plan = textPlan(shapes, detection.textEncoder2, configs.textEncoder2.num_hidden_layers, true);
    te2DType = componentDType(file, plan, opts.dtype);
    textEncoder2 = await load(
      file,
      plan,
      new CLIPTextModelWithProjection(configs.textEncoder2, { dtype: te2DType, skipInit: true }),
      "CLIPTextModelWithProjection",
      opts.onProgress,
    );
  }
  return {
    detection,
    predictionType,
    configs,
    unet,
    vae,
    textEncoder,
    textEncoder2,
    dtypes: { unet: unetDType, vae: vaeDType, textEncoder: teDType, textEncoder2: te2DType },
  };
}
