// Converting a Stable Diffusion pipeline between the diffusers folder layout and one `.safetensors` file in the
// original LDM naming (what AUTOMATIC1111 and ComfyUI load), both ways (Node.js: reads and writes files). The file
// carries the models' configs, the scheduler config and the tokenizer in its metadata (single-file-metadata.ts),
// so a model of any size converts back to the same folder; files from other tools convert with configs from the
// released models or inferred from shapes.
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { CheckpointError } from "../io/errors.js";
import { ldmExportPlan } from "../io/ldm/export.js";
import type { ShapeMap } from "../io/ldm/plan.js";
import { openSafetensors, saveSafetensors } from "../io/safetensors.js";
import type { TokenizerFiles } from "../models/clip/tokenizer.js";
import { reshape } from "../ops/index.js";
import type { DType } from "../tensor/dtype.js";
import type { Tensor } from "../tensor/tensor.js";
import { type ConfigSource, unetKeyLayout } from "./family-configs.js";
import { loadPipelineComponents, type PipelineComponents } from "./load.js";
import { MODEL_INDEX, stableDiffusionModelIndex } from "./model-index.js";
import { configJson, saveModelFolder } from "./save-model-folder.js";
import { embeddedTokenizer, singleFileMetadata } from "./single-file-metadata.js";

const TOKENIZER_FILES = [
  "vocab.json",
  "merges.txt",
  "tokenizer_config.json",
  "special_tokens_map.json",
] as const;

/** The tokenizer files of a tokenizer folder (or of a pipeline folder's tokenizer/); null when it has none. */
export function readTokenizerFiles(dir: string): TokenizerFiles | null {
  const base = existsSync(join(dir, "vocab.json")) ? dir : join(dir, "tokenizer");
  if (!existsSync(join(base, "vocab.json")) || !existsSync(join(base, "merges.txt"))) return null;
  const files: TokenizerFiles = {};
  for (const name of TOKENIZER_FILES) {
    const path = join(base, name);
    if (existsSync(path)) files[name] = readFileSync(path, "utf8");
  }
  return files;
}

const FLOATS = new Set<DType>(["float32", "float16", "bfloat16"]);

function recast(t: Tensor, dtype: DType | undefined): Tensor {
  return dtype && FLOATS.has(t.dtype) && t.dtype !== dtype ? t.to(dtype) : t;
}

function shapesOf(weights: ReadonlyMap<string, Tensor>): ShapeMap {
  return new Map([...weights].map(([k, t]) => [k, t.shape]));
}

/** What a conversion wrote. */
export interface ConversionResult {
  /** Tensors written. */
  tensors: number;
  /** Bytes of weights written (the file size for a single file). */
  weightBytes: number;
  /** Where each config came from (single file -> folder), e.g. "unet: file metadata". */
  configSources: Record<string, string>;
  /** What configs inferred from shapes had to assume (single file -> folder). */
  assumed: string[];
}

function refuseOtherLayouts(c: PipelineComponents, what: string): void {
  if (c.textEncoder2 || !c.textEncoder || !c.tokenizer)
    throw new CheckpointError(
      `${c.path}: ${what} is written for pipelines with one CLIP text encoder (SD 1.x / 2.x layout); this ${c.family} pipeline has ${c.textEncoder2 ? "two" : "no"} text encoders (SDXL conversion is not supported yet)`,
    );
}

/**
 * Writes the pipeline folder `src` as one `.safetensors` file in the LDM naming (UNet under
 * model.diffusion_model., VAE under first_stage_model., CLIP under cond_stage_model.transformer.), with its
 * configs and tokenizer in the metadata. `dtype` recasts the floating-point weights.
 */
export async function folderToSingleFile(
  src: string,
  dst: string,
  opts: { dtype?: DType } = {},
): Promise<ConversionResult> {
  const c = await loadPipelineComponents(src);
  refuseOtherLayouts(c, "a single file");
  const weights = {
    unet: c.unet.stateDict(),
    vae: c.vae.stateDict(),
    text_encoder: c.textEncoder!.stateDict(),
  };
  const plan = ldmExportPlan(
    { unet: shapesOf(weights.unet), vae: shapesOf(weights.vae), textEncoder: shapesOf(weights.text_encoder) },
    unetKeyLayout(c.unet.config),
    c.vae.config.block_out_channels.length,
  );
  const tensors = new Map<string, Tensor>();
  for (const [name, m] of plan) {
    const t = weights[m.component].get(m.source)!;
    tensors.set(name, recast(t.shape.length === m.shape.length ? t : reshape(t, m.shape), opts.dtype));
  }
  const metadata = singleFileMetadata({
    unet: { _class_name: "UNet2DConditionModel", ...c.unet.config },
    vae: { _class_name: "AutoencoderKL", ...c.vae.config },
    textEncoder: { ...c.textEncoder!.config },
    scheduler: { ...c.scheduler.config },
    tokenizer: readTokenizerFiles(src),
  });
  await saveSafetensors(dst, tensors, metadata);
  return { tensors: tensors.size, weightBytes: statSync(dst).size, configSources: {}, assumed: [] };
}

/**
 * Writes a single-file checkpoint as a diffusers pipeline folder (model_index.json, unet/, vae/, text_encoder/,
 * tokenizer/, scheduler/). The tokenizer comes from `tokenizer` (a folder) or the file's metadata.
 */
export async function singleFileToFolder(
  src: string,
  dst: string,
  opts: { dtype?: DType; tokenizer?: string } = {},
): Promise<ConversionResult> {
  const c = await loadPipelineComponents(src, { tokenizer: opts.tokenizer });
  refuseOtherLayouts(c, "a folder");
  const tokenizerFiles = opts.tokenizer ? readTokenizerFiles(opts.tokenizer) : await fileTokenizer(src);
  if (!tokenizerFiles)
    throw new CheckpointError(
      `${opts.tokenizer}: no vocab.json + merges.txt to copy into the folder (a tokenizer.json-only tokenizer is not written)`,
    );
  mkdirSync(dst, { recursive: true });
  let weightBytes = 0;
  let tensors = 0;
  const save = async (
    name: string,
    config: Record<string, unknown>,
    weights: Map<string, Tensor>,
    library?: "transformers",
  ) => {
    await saveModelFolder(join(dst, name), { config, weights, dtype: opts.dtype, library });
    const file = library ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
    weightBytes += statSync(join(dst, name, file)).size;
    tensors += weights.size;
  };
  await save(
    "unet",
    { _class_name: "UNet2DConditionModel", _diffusers_version: "0.30.0", ...c.unet.config },
    c.unet.stateDict(),
  );
  await save(
    "vae",
    { _class_name: "AutoencoderKL", _diffusers_version: "0.30.0", ...c.vae.config },
    c.vae.stateDict(),
  );
  await save(
    "text_encoder",
    { architectures: ["CLIPTextModel"], model_type: "clip_text_model", ...c.textEncoder!.config },
    c.textEncoder!.stateDict(),
    "transformers",
  );
  mkdirSync(join(dst, "tokenizer"), { recursive: true });
  for (const [name, text] of Object.entries(tokenizerFiles))
    writeFileAtomic(join(dst, "tokenizer", name), typeof text === "string" ? text : JSON.stringify(text));
  const scheduler = c.scheduler.config as Record<string, unknown>;
  mkdirSync(join(dst, "scheduler"), { recursive: true });
  writeFileAtomic(join(dst, "scheduler", "scheduler_config.json"), configJson(scheduler));
  writeFileAtomic(
    join(dst, MODEL_INDEX),
    configJson(stableDiffusionModelIndex(String(scheduler._class_name))),
  );
  return {
    tensors,
    weightBytes,
    configSources: Object.fromEntries(
      Object.entries(c.configSources).filter((e): e is [string, ConfigSource] => e[1] !== null),
    ),
    assumed: [...c.assumed],
  };
}

async function fileTokenizer(path: string): Promise<TokenizerFiles | null> {
  const file = await openSafetensors(path);
  try {
    return embeddedTokenizer(file.metadata);
  } finally {
    file.close();
  }
}
