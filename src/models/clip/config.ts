// CLIP text-encoder configs: transformers' `CLIPTextConfig` keys as they appear in `config.json` (snake_case),
// merged over transformers' defaults and checked, plus the named configs of the Stable Diffusion families.
import { ArgumentError } from "../../tensor/errors.js";

/** Activations transformers' CLIP accepts in `hidden_act` (see {@link activate}). */
export const CLIP_ACTIVATIONS = [
  "quick_gelu",
  "gelu",
  "gelu_new",
  "gelu_pytorch_tanh",
  "gelu_fast",
  "relu",
] as const;

/** One of {@link CLIP_ACTIVATIONS}. */
export type CLIPActivation = (typeof CLIP_ACTIVATIONS)[number];

/** A checked CLIP text-encoder config (transformers' `CLIPTextConfig` fields that shape the model). */
export interface CLIPTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: CLIPActivation;
  layer_norm_eps: number;
  bos_token_id: number;
  /** Picks the pooled token: 2 means "argmax of the ids" (legacy configs), else the first id equal to it. */
  eos_token_id: number;
  pad_token_id: number;
  /** Output size of `text_projection` (CLIPTextModelWithProjection). */
  projection_dim: number;
}

/** A config as read from `config.json`: any subset of the keys (others are ignored). */
export type CLIPTextConfigInput = Readonly<Record<string, unknown>>;

/**
 * transformers' `CLIPTextConfig` defaults (v4.31+; the text tower of openai/clip-vit-base-patch32). Older
 * configs (all Stable Diffusion ones) state bos/eos/pad 0/2/1 explicitly.
 */
export const CLIP_TEXT_DEFAULTS: Readonly<CLIPTextConfig> = Object.freeze({
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
  bos_token_id: 49406,
  eos_token_id: 49407,
  pad_token_id: 1,
  projection_dim: 512,
});

const POSITIVE_INTS = [
  "vocab_size",
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "max_position_embeddings",
  "projection_dim",
] as const;

const TOKEN_IDS = ["bos_token_id", "eos_token_id", "pad_token_id"] as const;

/**
 * Builds a checked config from `config.json` contents (transformers' keys; missing keys take
 * {@link CLIP_TEXT_DEFAULTS}). A full `CLIPConfig` (with `text_config`) is accepted too: its `text_config` is
 * used, with the top-level `projection_dim`. Throws ArgumentError naming the bad key.
 */
export function clipTextConfig(input: CLIPTextConfigInput = {}): CLIPTextConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new ArgumentError(`CLIP text config: expected a JSON object, got ${JSON.stringify(input)}`);
  }
  let src: Record<string, unknown> = { ...input };
  const nested = input.text_config;
  if (nested !== undefined && nested !== null) {
    if (typeof nested !== "object" || Array.isArray(nested))
      throw new ArgumentError("CLIP text config: text_config must be an object");
    src = { ...(nested as Record<string, unknown>) };
    if (input.projection_dim !== undefined) src.projection_dim = input.projection_dim;
  }
  const out = { ...CLIP_TEXT_DEFAULTS } as CLIPTextConfig;
  for (const key of POSITIVE_INTS) {
    const v = src[key] ?? CLIP_TEXT_DEFAULTS[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0)
      throw new ArgumentError(
        `CLIP text config: ${key} must be a positive integer, got ${JSON.stringify(v)}`,
      );
    out[key] = v;
  }
  for (const key of TOKEN_IDS) {
    const v = src[key] ?? CLIP_TEXT_DEFAULTS[key];
    if (typeof v !== "number" || !Number.isInteger(v))
      throw new ArgumentError(`CLIP text config: ${key} must be an integer, got ${JSON.stringify(v)}`);
    out[key] = v;
  }
  const act = src.hidden_act ?? CLIP_TEXT_DEFAULTS.hidden_act;
  if (!(CLIP_ACTIVATIONS as readonly unknown[]).includes(act)) {
    throw new ArgumentError(
      `CLIP text config: hidden_act ${JSON.stringify(act)} is not supported (expected one of ${CLIP_ACTIVATIONS.join(", ")})`,
    );
  }
  out.hidden_act = act as CLIPActivation;
  const eps = src.layer_norm_eps ?? CLIP_TEXT_DEFAULTS.layer_norm_eps;
  if (typeof eps !== "number" || !(eps > 0))
    throw new ArgumentError(`CLIP text config: layer_norm_eps must be > 0, got ${JSON.stringify(eps)}`);
  out.layer_norm_eps = eps;
  if (out.hidden_size % out.num_attention_heads !== 0) {
    throw new ArgumentError(
      `CLIP text config: hidden_size (${out.hidden_size}) must be divisible by num_attention_heads (${out.num_attention_heads})`,
    );
  }
  return out;
}

/** The SD-family fields shared by every named config below (all were converted with bos/eos/pad 0/2/1). */
const SD_COMMON = {
  vocab_size: 49408,
  max_position_embeddings: 77,
  layer_norm_eps: 1e-5,
  bos_token_id: 0,
  eos_token_id: 2,
  pad_token_id: 1,
} as const;

/**
 * CLIP ViT-L/14 text tower, the Stable Diffusion 1.x text encoder: `text_config` of
 * https://huggingface.co/openai/clip-vit-large-patch14/blob/main/config.json (as in
 * runwayml/stable-diffusion-v1-5 `text_encoder/config.json`).
 */
export const SD1_TEXT_ENCODER: Readonly<CLIPTextConfig> = Object.freeze({
  ...SD_COMMON,
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  hidden_act: "quick_gelu",
  projection_dim: 768,
});

/**
 * OpenCLIP ViT-H/14 text tower as Stable Diffusion 2.x uses it:
 * https://huggingface.co/stabilityai/stable-diffusion-2-1/blob/main/text_encoder/config.json. OpenCLIP ViT-H has
 * 24 layers; SD2 conditions on the penultimate one (LDM `FrozenOpenCLIPEmbedder(layer="penultimate")`, then
 * ln_final), so the converted model keeps 23 layers and its `last_hidden_state` is exactly that conditioning.
 */
export const SD2_TEXT_ENCODER: Readonly<CLIPTextConfig> = Object.freeze({
  ...SD_COMMON,
  hidden_size: 1024,
  intermediate_size: 4096,
  num_hidden_layers: 23,
  num_attention_heads: 16,
  hidden_act: "gelu",
  projection_dim: 512,
});

/**
 * SDXL's first text encoder (CLIP ViT-L/14, same shape as {@link SD1_TEXT_ENCODER}):
 * https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/text_encoder/config.json.
 * SDXL takes its penultimate hidden state without the final layer norm (see textEmbeddings' "sdxl" style).
 */
export const SDXL_TEXT_ENCODER: Readonly<CLIPTextConfig> = Object.freeze({ ...SD1_TEXT_ENCODER });

/**
 * SDXL's second text encoder, OpenCLIP ViT-bigG/14 with its text projection (CLIPTextModelWithProjection):
 * https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/text_encoder_2/config.json. SDXL
 * uses its penultimate hidden state (no final layer norm) and the projected pooled output (`text_embeds`).
 */
export const SDXL_TEXT_ENCODER_2: Readonly<CLIPTextConfig> = Object.freeze({
  ...SD_COMMON,
  hidden_size: 1280,
  intermediate_size: 5120,
  num_hidden_layers: 32,
  num_attention_heads: 20,
  hidden_act: "gelu",
  projection_dim: 1280,
});
