// Which Stable Diffusion family a single-file checkpoint belongs to, from its header alone (tensor names and
// shapes, plus the safetensors metadata): the text-encoder prefixes tell the family (SD 1.x: CLIP ViT-L under
// cond_stage_model.transformer; SD 2.x: OpenCLIP ViT-H under cond_stage_model.model; SDXL: conditioner.embedders
// with CLIP ViT-L and OpenCLIP ViT-bigG; the SDXL refiner: bigG alone), checked against the UNet's cross-attention
// width (attn2.to_k: 768, 1024, 2048, 1280) and SDXL's label_emb; in_channels 9 is an inpainting UNet.
import { CheckpointError } from "../errors.js";
import { inferTextEncoderLayout, type TextEncoderShapeInfo } from "./clip.js";
import type { ShapeMap } from "./plan.js";
import { inferUNetLayout, LDM_UNET_PREFIX, type UNetShapeInfo } from "./unet.js";
import { inferVAELayout, LDM_VAE_PREFIX, type VAEShapeInfo } from "./vae.js";

/** The Stable Diffusion families this library loads from single files. */
export type CheckpointFamily = "sd1" | "sd2" | "sdxl" | "sdxl-refiner";

/** What the UNet predicts (diffusers' scheduler `prediction_type`). */
export type PredictionType = "epsilon" | "v_prediction";

/** Where the text encoders of each family live in a single file. */
export const TEXT_ENCODER_PREFIXES = {
  sd1: "cond_stage_model.transformer.",
  sd2: "cond_stage_model.model.",
  sdxl: "conditioner.embedders.0.transformer.",
  sdxl2: "conditioner.embedders.1.model.",
  refiner2: "conditioner.embedders.0.model.",
} as const;

/** What {@link detectCheckpointFamily} found. */
export interface CheckpointDetection {
  readonly family: CheckpointFamily;
  /** The UNet takes 9 input channels (latents, mask, masked-image latents). */
  readonly inpainting: boolean;
  readonly predictionType: PredictionType;
  /** Why predictionType is what it is (metadata, a marker key, or the family's default). */
  readonly predictionTypeSource: string;
  readonly unet: UNetShapeInfo & { readonly prefix: string };
  readonly vae: (VAEShapeInfo & { readonly prefix: string }) | null;
  /** The first text encoder (CLIP ViT-L for SD 1.x / SDXL, OpenCLIP ViT-H for SD 2.x); null for the refiner. */
  readonly textEncoder: TextEncoderShapeInfo | null;
  /** SDXL's second text encoder (OpenCLIP ViT-bigG), else null. */
  readonly textEncoder2: TextEncoderShapeInfo | null;
  /** Tensors outside these components (EMA copies, noise-schedule buffers, ...), counted per first name part. */
  readonly ignored: Readonly<Record<string, number>>;
}

function hasPrefix(shapes: ShapeMap, prefix: string): boolean {
  for (const k of shapes.keys()) if (k.startsWith(prefix)) return true;
  return false;
}

/** "a.* (12), b.* (3), ..." of the first name parts, most frequent first. */
export function summarizePrefixes(keys: Iterable<string>, limit = 8): string {
  const counts = countPrefixes(keys);
  const sorted = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const shown = sorted.slice(0, limit).map(([p, n]) => `${p}.* (${n})`);
  if (sorted.length > limit) shown.push(`${sorted.length - limit} more`);
  return shown.length > 0 ? shown.join(", ") : "no tensors";
}

function countPrefixes(keys: Iterable<string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of keys) {
    const head = k.split(".")[0]!;
    counts[head] = (counts[head] ?? 0) + 1;
  }
  return counts;
}

const EXPECTED_LAYOUT =
  "an original Stable Diffusion checkpoint with model.diffusion_model.* (UNet), first_stage_model.* (VAE) and cond_stage_model.* or conditioner.embedders.* (text encoders)";

function notACheckpoint(shapes: ShapeMap): CheckpointError {
  const keys = [...shapes.keys()];
  let hint = "";
  if (keys.some((k) => /^(down_blocks|mid_block|up_blocks|conv_in)\./.test(k)))
    hint = "; this looks like one diffusers model file: pass the model folder (with config.json) instead";
  else if (keys.some((k) => /lora_(down|up|A|B)\b/.test(k) || k.startsWith("lora_")))
    hint = "; this looks like a LoRA, not a model";
  else if (keys.some((k) => k.startsWith("text_model.")))
    hint = "; this looks like a transformers text encoder file: pass its folder (with config.json)";
  return new CheckpointError(`expected ${EXPECTED_LAYOUT}; found ${summarizePrefixes(keys)}${hint}`);
}

/**
 * The prediction type of the checkpoint. In order: the SAI model-spec metadata (`modelspec.prediction_type`
 * "v" / "epsilon", or a `modelspec.architecture` ending in "-v" such as "stable-diffusion-v2-768-v"); an empty
 * `v_pred` marker tensor (written by some trainers); else the family default: SD 2.x -> v_prediction (the 768px
 * 2.0 / 2.1 models; the 512px "-base" models and 2.x inpainting are epsilon: override for those), everything
 * else -> epsilon.
 */
function predictionTypeOf(
  family: CheckpointFamily,
  inpainting: boolean,
  shapes: ShapeMap,
  metadata: Readonly<Record<string, string>> | null,
): [PredictionType, string] {
  const spec = metadata?.["modelspec.prediction_type"]?.toLowerCase();
  if (spec === "v" || spec === "v_prediction") return ["v_prediction", "metadata modelspec.prediction_type"];
  if (spec === "epsilon" || spec === "eps") return ["epsilon", "metadata modelspec.prediction_type"];
  const arch = metadata?.["modelspec.architecture"];
  if (arch && /-v$/.test(arch)) return ["v_prediction", `metadata modelspec.architecture (${arch})`];
  if (shapes.has("v_pred")) return ["v_prediction", "v_pred marker tensor"];
  if (family === "sd2" && !inpainting)
    return ["v_prediction", "SD 2.x default (768px v-models; pass predictionType epsilon for 2.x-base)"];
  return ["epsilon", `${family} default`];
}

/**
 * Detects the family of a single-file checkpoint from its tensor names and shapes (and safetensors metadata, for
 * the prediction type). Throws CheckpointError naming what was found when the file is not a Stable Diffusion
 * checkpoint or its parts disagree.
 */
export function detectCheckpointFamily(
  shapes: ShapeMap,
  metadata: Readonly<Record<string, string>> | null = null,
): CheckpointDetection {
  if (!hasPrefix(shapes, LDM_UNET_PREFIX)) throw notACheckpoint(shapes);
  const unet = { ...inferUNetLayout(shapes), prefix: LDM_UNET_PREFIX };
  const vae = hasPrefix(shapes, LDM_VAE_PREFIX)
    ? { ...inferVAELayout(shapes), prefix: LDM_VAE_PREFIX }
    : null;
  const P = TEXT_ENCODER_PREFIXES;
  const te = (prefix: string, kind: "clip" | "openclip"): TextEncoderShapeInfo | null =>
    hasPrefix(shapes, prefix) ? inferTextEncoderLayout(shapes, prefix, kind) : null;
  const ctx = unet.contextDim;
  const xl = te(P.sdxl, "clip");
  const xl2 = te(P.sdxl2, "openclip");
  const refiner2 = te(P.refiner2, "openclip");
  let family: CheckpointFamily;
  let textEncoder: TextEncoderShapeInfo | null = null;
  let textEncoder2: TextEncoderShapeInfo | null = null;
  if (xl || xl2 || (!refiner2 && unet.admInChannels !== null && ctx === 2048)) {
    [family, textEncoder, textEncoder2] = ["sdxl", xl, xl2];
  } else if (refiner2 || (unet.admInChannels !== null && ctx === 1280)) {
    [family, textEncoder2] = ["sdxl-refiner", refiner2];
  } else {
    const sd2 = te(P.sd2, "openclip");
    const sd1 = te(P.sd1, "clip");
    if (sd2 || (!sd1 && ctx === 1024)) [family, textEncoder] = ["sd2", sd2];
    else if (sd1 || ctx === 768) [family, textEncoder] = ["sd1", sd1];
    else {
      throw new CheckpointError(
        `cannot tell the Stable Diffusion family: no text encoder (expected ${Object.values(P).join(" or ")}) and a UNet cross-attention width of ${ctx} (SD 1.x 768, SD 2.x 1024, SDXL 2048, SDXL refiner 1280)`,
      );
    }
  }
  const isXL = family === "sdxl" || family === "sdxl-refiner";
  if (isXL && unet.admInChannels === null) {
    throw new CheckpointError(
      `${family} checkpoint without model.diffusion_model.label_emb.0.0.weight (SDXL's size/crop conditioning); found ${summarizePrefixes(shapes.keys())}`,
    );
  }
  if (!isXL && unet.admInChannels !== null) {
    throw new CheckpointError(
      `a ${family} text encoder with an SDXL-style UNet (label_emb): unsupported combination`,
    );
  }
  const width =
    (textEncoder?.hiddenSize ?? 0) +
    (family === "sdxl" || family === "sdxl-refiner" ? (textEncoder2?.hiddenSize ?? 0) : 0);
  if (width > 0 && ctx !== null && width !== ctx) {
    const parts = [textEncoder, textEncoder2]
      .filter((t) => t !== null)
      .map((t) => `${t.prefix}* ${t.hiddenSize}`);
    throw new CheckpointError(
      `${family} checkpoint whose UNet cross-attention width (${ctx}, from attn2.to_k) does not match its text encoder(s) (${parts.join(" + ")})`,
    );
  }
  const inpainting = unet.inChannels === 9;
  const [predictionType, predictionTypeSource] = predictionTypeOf(family, inpainting, shapes, metadata);
  const used = [LDM_UNET_PREFIX, LDM_VAE_PREFIX, textEncoder?.prefix, textEncoder2?.prefix].filter(
    (p): p is string => p !== undefined,
  );
  const ignored = countPrefixes([...shapes.keys()].filter((k) => !used.some((p) => k.startsWith(p))));
  return {
    family,
    inpainting,
    predictionType,
    predictionTypeSource,
    unet,
    vae,
    textEncoder,
    textEncoder2,
    ignored,
  };
}
