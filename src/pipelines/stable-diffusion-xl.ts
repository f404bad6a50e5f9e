// Stable Diffusion XL (Podell et al. 2023) as diffusers' StableDiffusionXLPipeline: two CLIP text encoders whose
// penultimate hidden states are concatenated, the second encoder's projected pooled output plus the size/crop
// micro-conditioning ("time ids") as extra UNet inputs. The loop, image-to-image and inpainting are shared with
// StableDiffusionPipeline.
import type { CLIPTextModelWithProjection } from "../models/clip/text-model.js";
import type { CLIPTokenizer } from "../models/clip/tokenizer.js";
import type { AddedCondKwargs } from "../models/unet/unet-2d-condition.js";
import { tensor } from "../tensor/create.js";
import { encodeSdxlPrompt, type PromptConditioning } from "./conditioning.js";
import { PipelineError } from "./errors.js";
import type { LoadPipelineOptions, PipelineComponents, PipelineSource } from "./load.js";
import { loadPipelineComponents } from "./load.js";
import type { LoraModels } from "./lora.js";
import { componentsOf, type StableDiffusionComponents, StableDiffusionPipeline } from "./stable-diffusion.js";

/** The parts of an SDXL pipeline. */
export interface StableDiffusionXLComponents extends StableDiffusionComponents {
  /** The second text encoder (OpenCLIP bigG with projection). */
  textEncoder2: CLIPTextModelWithProjection;
  tokenizer2: CLIPTokenizer;
  /** model_index.json `force_zeros_for_empty_prompt` (default true): an empty negative prompt is all zeros. */
  forceZerosForEmptyPrompt?: boolean;
}

/**
 * SDXL micro-conditioning of one image: original size (h, w), crop top-left (0, 0), target size (h, w) (diffusers'
 * defaults: both sizes are the output size).
 */
export function sdxlTimeIds(height: number, width: number): number[] {
  return [height, width, 0, 0, height, width];
}

/**
 * SDXL pipeline components from what loadPipelineComponents returned (`force_zeros_for_empty_prompt` from the
 * folder's model_index.json; default true).
 */
export function sdxlComponentsOf(c: PipelineComponents): StableDiffusionXLComponents {
  return {
    ...componentsOf(c),
    textEncoder2: c.textEncoder2 as CLIPTextModelWithProjection,
    tokenizer2: c.tokenizer2 as CLIPTokenizer,
    forceZerosForEmptyPrompt: c.modelIndex?.forceZerosForEmptyPrompt ?? true,
  };
}

/** Stable Diffusion XL from its components (see {@link StableDiffusionPipeline} for `generate`). */
export class StableDiffusionXLPipeline extends StableDiffusionPipeline {
  readonly textEncoder2: CLIPTextModelWithProjection;
  readonly tokenizer2: CLIPTokenizer;
  readonly forceZerosForEmptyPrompt: boolean;

  constructor(components: StableDiffusionXLComponents) {
    if (!components.textEncoder2) {
      throw new PipelineError('StableDiffusionXLPipeline: the "textEncoder2" component is missing');
    }
    if (!components.tokenizer2) {
      throw new PipelineError(
        "StableDiffusionXLPipeline: no tokenizer2 (the tokenizer_2/ folder); single-file checkpoints carry none: pass { tokenizer2 }",
      );
    }
    super(components);
    this.textEncoder2 = components.textEncoder2;
    this.tokenizer2 = components.tokenizer2;
    this.forceZerosForEmptyPrompt = components.forceZerosForEmptyPrompt ?? true;
    const expected = this.unet.add_embedding?.linear_1.inFeatures;
    const timeDim = this.unet.config.addition_time_embed_dim;
    const projection = this.textEncoder2.config.projection_dim;
    if (expected === undefined || typeof timeDim !== "number") {
      throw new PipelineError(
        'StableDiffusionXLPipeline: the UNet has no addition_embed_type "text_time" embedding; it is not an SDXL UNet',
      );
    }
    if (expected !== timeDim * 6 + projection) {
      throw new PipelineError(
        `StableDiffusionXLPipeline: the UNet's add_embedding takes ${expected} features, but 6 time ids x ${timeDim} + text_encoder_2 projection_dim ${projection} = ${timeDim * 6 + projection}; the components come from different models`,
      );
    }
  }

  /**
   * Loads an SDXL pipeline from a diffusers folder or a single-file checkpoint (pass `tokenizer` for single files:
   * a folder with tokenizer/ and tokenizer_2/). Reads `force_zeros_for_empty_prompt` from model_index.json.
   */
  static override async fromPretrained(
    source: PipelineSource,
    opts: LoadPipelineOptions = {},
  ): Promise<StableDiffusionXLPipeline> {
    const c = await loadPipelineComponents(source, opts);
    if (c.family === "sdxl-refiner") {
      throw new PipelineError(
        `${c.path} is an SDXL refiner (no first text encoder); it refines images and is not supported as a generation pipeline`,
      );
    }
    if (c.family !== "sdxl") {
      throw new PipelineError(
        `${c.path} is not an SDXL model (${c.family}); load it with StableDiffusionPipeline`,
      );
    }
    return new StableDiffusionXLPipeline(sdxlComponentsOf(c));
  }

  protected override textWidth(components: StableDiffusionComponents): { width: number; what: string } {
    const two = (components as StableDiffusionXLComponents).textEncoder2;
    const a = components.textEncoder.config.hidden_size;
    const b = two.config.hidden_size;
    return { width: a + b, what: `the two text encoders' hidden sizes ${a} + ${b}` };
  }

  protected override loraTargets(): LoraModels {
    return { unet: this.unet, textEncoder: this.textEncoder, textEncoder2: this.textEncoder2 };
  }

  protected override encodeConditioning(
    prompts: readonly string[],
    negativePrompt: string,
    numImages: number,
    guided: boolean,
    clipSkip: number,
    size: { width: number; height: number },
  ): PromptConditioning & { addedCondKwargs?: AddedCondKwargs } {
    const cond = encodeSdxlPrompt(
      [
        { tokenizer: this.tokenizer, encoder: this.textEncoder },
        { tokenizer: this.tokenizer2, encoder: this.textEncoder2 },
      ],
      prompts,
      negativePrompt,
      numImages,
      guided,
      this.forceZerosForEmptyPrompt && negativePrompt === "",
      clipSkip,
    );
    const rows = cond.embeds.shape[0]!;
    const ids = sdxlTimeIds(size.height, size.width);
    const timeIds = new Float32Array(rows * ids.length);
    for (let r = 0; r < rows; r++) timeIds.set(ids, r * ids.length);
    return {
      ...cond,
      addedCondKwargs: {
        textEmbeds: cond.pooled!,
        timeIds: tensor(timeIds, [rows, ids.length], { device: cond.pooled!.device }),
      },
    };
  }
}

/**
 * Loads whichever Stable Diffusion pipeline a model folder or single-file checkpoint holds: SDXL ->
 * StableDiffusionXLPipeline, SD 1.x / 2.x (and their inpainting variants) -> StableDiffusionPipeline.
 */
export async function loadStableDiffusionPipeline(
  source: PipelineSource,
  opts: LoadPipelineOptions = {},
): Promise<StableDiffusionPipeline> {
  const c = await loadPipelineComponents(source, opts);
  if (c.family === "sdxl-refiner") {
    throw new PipelineError(
      `${c.path} is an SDXL refiner (no first text encoder); it refines images and is not supported as a generation pipeline`,
    );
  }
  return c.family === "sdxl"
    ? new StableDiffusionXLPipeline(sdxlComponentsOf(c))
    : new StableDiffusionPipeline(componentsOf(c));
}
