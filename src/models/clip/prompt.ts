// Prompt embeddings as the diffusers pipelines take them from a CLIP text encoder, including "clip skip".
import { ArgumentError } from "../../tensor/errors.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { CLIPTextModel, CLIPTextModelOutput, CLIPTextModelWithProjection } from "./text-model.js";

/** Options of {@link textEmbeddings}. */
export interface TextEmbeddingsOptions {
  /**
   * Layers to skip from the end, diffusers' `clip_skip` (default 0). Note: A1111-style UIs count from 1, so their
   * "CLIP skip 2" is clipSkip 1 here.
   */
  clipSkip?: number;
  /**
   * Which pipeline's rule to follow (default "sd"):
   * - "sd" (StableDiffusionPipeline, SD 1.x/2.x): clipSkip 0 gives `last_hidden_state`; clipSkip k gives
   *   final_layer_norm(hidden_states[-(k + 1)]), e.g. k = 1 normalises the penultimate layer's output.
   * - "sdxl" (StableDiffusionXLPipeline, both encoders): hidden_states[-(k + 2)] without the final layer norm;
   *   k = 0 is the raw penultimate hidden state.
   */
  style?: "sd" | "sdxl";
  /** Padding mask [B, L] passed to the encoder (diffusers passes one only when the config asks for it). */
  attentionMask?: Tensor | null;
}

/** What {@link textEmbeddings} returns. */
export interface TextEmbeddings {
  /** [B, L, hidden]: the per-token conditioning (`prompt_embeds`). */
  embeds: Tensor;
  /**
   * [B, D]: `textEmbeds` (projection_dim) for a model with projection (SDXL's `pooled_prompt_embeds`), else the
   * pooled output (hidden). Always from the full model, whatever clipSkip.
   */
  pooled: Tensor;
}

/**
 * Encodes token ids [B, L] into prompt embeddings the way diffusers' `encode_prompt` does, with optional clip skip
 * (see {@link TextEmbeddingsOptions.style} for the two rules).
 */
export function textEmbeddings(
  model: CLIPTextModel | CLIPTextModelWithProjection,
  ids: Tensor,
  opts: TextEmbeddingsOptions = {},
): TextEmbeddings {
  const clipSkip = opts.clipSkip ?? 0;
  const style = opts.style ?? "sd";
  if (style !== "sd" && style !== "sdxl") {
    throw new ArgumentError(`textEmbeddings: style must be "sd" or "sdxl", got ${JSON.stringify(style)}`);
  }
  const layers = model.config.num_hidden_layers;
  // hidden_states has layers + 1 entries; "sd" reads entry -(k+1), "sdxl" entry -(k+2)
  const maxSkip = style === "sd" ? layers : layers - 1;
  if (!Number.isInteger(clipSkip) || clipSkip < 0 || clipSkip > maxSkip) {
    throw new ArgumentError(
      `textEmbeddings: clipSkip must be an integer in 0..${maxSkip} for a ${layers}-layer encoder with style "${style}", got ${clipSkip}`,
    );
  }
  const out: CLIPTextModelOutput & { textEmbeds?: Tensor } = model.forward(ids, {
    attentionMask: opts.attentionMask,
    outputHiddenStates: true,
  });
  const hidden = out.hiddenStates!;
  const pooled = out.textEmbeds ?? out.pooledOutput;
  if (style === "sdxl") return { embeds: hidden[hidden.length - 2 - clipSkip]!, pooled };
  if (clipSkip === 0) return { embeds: out.lastHiddenState, pooled };
  const picked = hidden[hidden.length - 1 - clipSkip]!;
  return { embeds: model.text_model.final_layer_norm.call(picked), pooled };
}
