// Text conditioning of the Stable Diffusion pipelines: prompts -> token ids -> CLIP hidden states, as diffusers'
// `encode_prompt` (SD 1.x/2.x: one encoder; SDXL: two, concatenated, with the pooled output of the second).

import { textEmbeddings } from "../models/clip/prompt.js";
import type { CLIPTextModel, CLIPTextModelWithProjection } from "../models/clip/text-model.js";
import type { CLIPTokenizer } from "../models/clip/tokenizer.js";
import { cat, narrow } from "../ops/index.js";
import { zerosLike } from "../tensor/create.js";
import type { Tensor } from "../tensor/tensor.js";

/** One text encoder with its tokenizer. */
export interface TextEncoderPair {
  tokenizer: CLIPTokenizer;
  encoder: CLIPTextModel | CLIPTextModelWithProjection;
}

/** Prompt embeddings of a batch [negative..., positive...] or [positive...]. */
export interface PromptConditioning {
  /** [B, L, D] hidden states for the UNet's cross-attention. */
  embeds: Tensor;
  /** [B, P] pooled embeddings (SDXL's `text_embeds`); absent for SD 1.x/2.x. */
  pooled?: Tensor;
  /** Truncation notices (CLIP reads at most model_max_length tokens). */
  warnings: string[];
}

/** A notice when `text` has more tokens than the tokenizer keeps, naming the dropped part; else null. */
export function truncationWarning(tokenizer: CLIPTokenizer, text: string): string | null {
  const max = tokenizer.modelMaxLength;
  const ids = tokenizer.encode(text, { padding: false, truncation: false });
  if (ids.length <= max) return null;
  const dropped = tokenizer.decode(ids.slice(max - 1, -1), { skipSpecialTokens: true });
  return `the prompt has ${ids.length - 2} tokens and CLIP reads ${max - 2}; this part was dropped: "${dropped}"`;
}

/**
 * Encodes `texts` with one encoder (ids padded/truncated to the tokenizer's model_max_length, no attention mask,
 * as the SD pipelines). style "sd": last hidden state (or clip skip); "sdxl": penultimate hidden state.
 */
export function encodeTexts(
  pair: TextEncoderPair,
  texts: readonly string[],
  clipSkip: number,
  style: "sd" | "sdxl",
): { embeds: Tensor; pooled: Tensor } {
  const { inputIds } = pair.tokenizer.encodeBatch(texts, {
    padding: "max_length",
    maxLength: pair.tokenizer.modelMaxLength,
    truncation: true,
  });
  return textEmbeddings(pair.encoder, inputIds, { clipSkip, style });
}

/**
 * SD 1.x/2.x: `[negative x n, prompt x n]` (guided) or `[prompt x n]` embeddings from one encoder. Clip skip is
 * applied to both branches (diffusers applies it to the prompt only).
 */
export function encodeSdPrompt(
  pair: TextEncoderPair,
  prompts: string | readonly string[],
  negativePrompt: string,
  numImages: number,
  guided: boolean,
  clipSkip = 0,
): PromptConditioning {
  const list = typeof prompts === "string" ? [prompts] : prompts;
  const warnings = [...list, negativePrompt]
    .map((t) => truncationWarning(pair.tokenizer, t))
    .filter((w): w is string => w !== null);
  const texts = guided ? [negativePrompt, ...list] : [...list];
  const { embeds } = encodeTexts(pair, texts, clipSkip, "sd");
  if (!guided) return { embeds: repeatRows(embeds, numImages), warnings };
  // [negative x (prompts x images), each prompt x images]: the unconditional half first, as diffusers
  const neg = repeatRows(narrow(embeds, 0, 0, 1), list.length * numImages);
  const pos = repeatRows(narrow(embeds, 0, 1, list.length), numImages);
  return { embeds: list.length === 1 && numImages === 1 ? embeds : cat([neg, pos], 0), warnings };
}

/**
 * SDXL: both encoders' penultimate hidden states concatenated on the feature axis, the pooled (projected) output
 * of the second encoder; with `zeroNegative` (config force_zeros_for_empty_prompt and no negative prompt) the
 * negative branch is all zeros, as diffusers.
 */
export function encodeSdxlPrompt(
  pairs: readonly [TextEncoderPair, TextEncoderPair],
  prompts: string | readonly string[],
  negativePrompt: string,
  numImages: number,
  guided: boolean,
  zeroNegative: boolean,
  clipSkip = 0,
): PromptConditioning {
  const list = typeof prompts === "string" ? [prompts] : prompts;
  const warnings = [...list, negativePrompt]
    .map((t) => truncationWarning(pairs[0].tokenizer, t))
    .filter((w): w is string => w !== null);
  const encodeBoth = (texts: readonly string[]) => {
    const a = encodeTexts(pairs[0], texts, clipSkip, "sdxl");
    const b = encodeTexts(pairs[1], texts, clipSkip, "sdxl");
    return { embeds: cat([a.embeds, b.embeds], -1), pooled: b.pooled };
  };
  const pos = encodeBoth(list);
  if (!guided) {
    return { embeds: repeatRows(pos.embeds, numImages), pooled: repeatRows(pos.pooled, numImages), warnings };
  }
  const first = (t: Tensor) => narrow(t, 0, 0, 1);
  const neg = zeroNegative
    ? { embeds: zerosLike(first(pos.embeds)), pooled: zerosLike(first(pos.pooled)) }
    : encodeBoth([negativePrompt]);
  const n = list.length * numImages;
  return {
    embeds: cat([repeatRows(neg.embeds, n), repeatRows(pos.embeds, numImages)], 0),
    pooled: cat([repeatRows(neg.pooled, n), repeatRows(pos.pooled, numImages)], 0),
    warnings,
  };
}

/**
 * Each row of `t` repeated n times in place: [a, b] -> [a, a, b, b] for n = 2 (diffusers' repeat + view for
 * num_images_per_prompt).
 */
export function repeatRows(t: Tensor, n: number): Tensor {
  if (n === 1) return t;
  const rows: Tensor[] = [];
  for (let b = 0; b < t.shape[0]!; b++) {
    const row = narrow(t, 0, b, 1);
    for (let k = 0; k < n; k++) rows.push(row);
  }
  return cat(rows, 0);
}
