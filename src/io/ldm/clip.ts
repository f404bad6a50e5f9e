// Text encoders of single-file checkpoints, mapped to transformers' CLIPTextModel(WithProjection) keys.
//
// CLIP ViT-L (SD 1.x `cond_stage_model.transformer.`, SDXL `conditioner.embedders.0.transformer.`) is stored in the
// transformers layout already: only the prefix goes (and `text_model.` is added where old transformers versions
// left it out).
//
// OpenCLIP (SD 2.x `cond_stage_model.model.`, SDXL `conditioner.embedders.1.model.`, the SDXL refiner
// `conditioner.embedders.0.model.`) names things differently and fuses the attention input projections:
//   token_embedding.weight           -> text_model.embeddings.token_embedding.weight
//   positional_embedding [77, D]     -> text_model.embeddings.position_embedding.weight
//   transformer.resblocks.i.ln_1/ln_2 -> text_model.encoder.layers.i.layer_norm1/layer_norm2
//   ....attn.in_proj_weight [3D, D]  -> self_attn.q_proj / k_proj / v_proj .weight (rows 0..D, D..2D, 2D..3D)
//   ....attn.in_proj_bias [3D]       -> the three biases, split the same way
//   ....attn.out_proj                -> self_attn.out_proj
//   ....mlp.c_fc / mlp.c_proj        -> mlp.fc1 / mlp.fc2
//   ln_final                         -> text_model.final_layer_norm
//   text_projection [D, P]           -> text_projection.weight [P, D] (transposed: OpenCLIP computes x @ P)
// (PyTorch's nn.MultiheadAttention keeps q, k, v stacked in that order in in_proj_weight.)
import { CheckpointError } from "../errors.js";
import { type ConversionPlan, countIndexed, keysUnder, PlanBuilder, type ShapeMap } from "./plan.js";

/** What the shapes of a text encoder say about its config. */
export interface TextEncoderShapeInfo {
  /** "clip": transformers layout (CLIP ViT-L); "openclip": OpenCLIP layout (ViT-H, ViT-bigG). */
  readonly kind: "clip" | "openclip";
  readonly prefix: string;
  readonly layers: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  /** Output size of `text_projection` when the file has one, else null. */
  readonly projectionDim: number | null;
}

function need(shapes: ShapeMap, key: string, what: string): readonly number[] {
  const s = shapes.get(key);
  if (!s) throw new CheckpointError(`${what}: ${key} not found`);
  return s;
}

/** The `text_model.` part of a transformers-layout key under `prefix` ("" for old files without it). */
function textModelHead(shapes: ShapeMap, prefix: string): string {
  return shapes.has(`${prefix}text_model.embeddings.token_embedding.weight`) ? "text_model." : "";
}

/** Reads a text encoder's sizes from its names and shapes. */
export function inferTextEncoderLayout(
  shapes: ShapeMap,
  prefix: string,
  kind: "clip" | "openclip",
): TextEncoderShapeInfo {
  const what = `text encoder (${prefix}*)`;
  const keys = keysUnder(shapes, prefix);
  if (kind === "clip") {
    const p = prefix + textModelHead(shapes, prefix);
    const tok = need(shapes, `${p}embeddings.token_embedding.weight`, what);
    const proj = shapes.get(`${prefix}text_projection.weight`);
    return {
      kind,
      prefix,
      layers: countIndexed(keysUnder(shapes, p), "encoder.layers."),
      hiddenSize: tok[1]!,
      intermediateSize: need(shapes, `${p}encoder.layers.0.mlp.fc1.weight`, what)[0]!,
      vocabSize: tok[0]!,
      maxPositions: need(shapes, `${p}embeddings.position_embedding.weight`, what)[0]!,
      projectionDim: proj ? proj[0]! : null,
    };
  }
  const tok = need(shapes, `${prefix}token_embedding.weight`, what);
  const proj = shapes.get(`${prefix}text_projection`);
  return {
    kind,
    prefix,
    layers: countIndexed(keys, "transformer.resblocks."),
    hiddenSize: tok[1]!,
    intermediateSize: need(shapes, `${prefix}transformer.resblocks.0.mlp.c_fc.weight`, what)[0]!,
    vocabSize: tok[0]!,
    maxPositions: need(shapes, `${prefix}positional_embedding`, what)[0]!,
    projectionDim: proj ? proj[1]! : null,
  };
}

/**
 * A transformers-layout CLIP text encoder under `prefix` -> CLIPTextModel keys. `text_model.embeddings.position_ids`
 * (a buffer old transformers versions saved) is skipped; `text_projection.weight` is kept only with `projection`.
 */
export function ldmCLIPPlan(
  shapes: ShapeMap,
  prefix: string,
  opts: { projection?: boolean } = {},
): ConversionPlan {
  const b = new PlanBuilder(shapes, `text encoder (${prefix}*)`);
  const head = textModelHead(shapes, prefix);
  for (const key of keysUnder(shapes, prefix)) {
    const src = prefix + key;
    if (key === "text_projection.weight") {
      if (opts.projection) b.map(src, key);
      else b.skip(src, "projection head (CLIPTextModel has none)");
    } else if (key.endsWith("embeddings.position_ids")) b.skip(src, "position ids (computed by the model)");
    else if (key.startsWith(head) && /^(embeddings|encoder|final_layer_norm)\./.test(key.slice(head.length)))
      b.map(src, `text_model.${key.slice(head.length)}`);
    else b.unmatched(src);
  }
  return b.finish("text_model.{embeddings,encoder.layers.N,final_layer_norm}...");
}

/** Options of {@link openCLIPPlan}. */
export interface OpenCLIPPlanOptions {
  /**
   * Layers the target model has. Later resblocks are skipped: Stable Diffusion 2.x conditions on the penultimate
   * layer of OpenCLIP ViT-H (24 resblocks), so its diffusers text encoder has 23. Default: all of them.
   */
  layers?: number;
  /** Convert `text_projection` (CLIPTextModelWithProjection, SDXL's second encoder). Default false. */
  projection?: boolean;
}

const EXPECTED_OPENCLIP =
  "token_embedding.weight, positional_embedding, transformer.resblocks.N.{ln_1,ln_2,attn.in_proj_weight,attn.in_proj_bias,attn.out_proj,mlp.c_fc,mlp.c_proj}, ln_final, text_projection, logit_scale";

/** An OpenCLIP text tower under `prefix` -> CLIPTextModel(WithProjection) keys (see the file comment). */
export function openCLIPPlan(
  shapes: ShapeMap,
  prefix: string,
  opts: OpenCLIPPlanOptions = {},
): ConversionPlan {
  const b = new PlanBuilder(shapes, `text encoder (${prefix}*)`);
  const keys = keysUnder(shapes, prefix);
  const total = countIndexed(keys, "transformer.resblocks.");
  const keep = opts.layers ?? total;
  if (keep > total) {
    throw new CheckpointError(
      `text encoder (${prefix}*): the model has ${keep} layers but the checkpoint only ${total} (transformer.resblocks.0-${total - 1})`,
    );
  }
  const tm = "text_model.";
  for (const key of keys) {
    const src = prefix + key;
    let m: RegExpExecArray | null;
    if (key === "token_embedding.weight") b.map(src, `${tm}embeddings.token_embedding.weight`);
    else if (key === "positional_embedding") b.map(src, `${tm}embeddings.position_embedding.weight`);
    else if ((m = /^ln_final\.(weight|bias)$/.exec(key))) b.map(src, `${tm}final_layer_norm.${m[1]}`);
    else if (key === "text_projection") {
      if (opts.projection) b.map(src, "text_projection.weight", { kind: "transpose" });
      else b.skip(src, "projection head (CLIPTextModel has none)");
    } else if (key === "logit_scale")
      b.skip(src, "CLIP's contrastive temperature (not part of the text encoder)");
    else if (key === "attn_mask") b.skip(src, "causal mask (computed by the model)");
    else if ((m = /^transformer\.resblocks\.(\d+)\.(.+)$/.exec(key))) {
      const i = Number(m[1]);
      if (i >= keep) {
        b.skip(
          src,
          `layer ${i}: the model has ${keep} layers (Stable Diffusion 2.x uses the penultimate layer)`,
        );
        continue;
      }
      const layer = `${tm}encoder.layers.${i}.`;
      const rest = m[2]!;
      let r: RegExpExecArray | null;
      if ((r = /^ln_([12])\.(weight|bias)$/.exec(rest))) b.map(src, `${layer}layer_norm${r[1]}.${r[2]}`);
      else if ((r = /^attn\.in_proj_(weight|bias)$/.exec(rest))) {
        const part = r[1];
        ["q_proj", "k_proj", "v_proj"].forEach((name, index) => {
          b.map(src, `${layer}self_attn.${name}.${part}`, { kind: "chunk", index, count: 3 });
        });
      } else if ((r = /^attn\.out_proj\.(weight|bias)$/.exec(rest)))
        b.map(src, `${layer}self_attn.out_proj.${r[1]}`);
      else if ((r = /^mlp\.c_(fc|proj)\.(weight|bias)$/.exec(rest)))
        b.map(src, `${layer}mlp.${r[1] === "fc" ? "fc1" : "fc2"}.${r[2]}`);
      else b.unmatched(src);
    } else b.unmatched(src);
  }
  return b.finish(EXPECTED_OPENCLIP);
}
