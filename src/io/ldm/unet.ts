// The UNet of an original Stable Diffusion checkpoint (LDM `openaimodel.UNetModel`, SGM for SDXL) under
// `model.diffusion_model.`, mapped to diffusers' UNet2DConditionModel keys.
//
// LDM numbers its blocks flatly: input_blocks.0 is conv_in; then each level has `layers_per_block` blocks
// (`.0` a ResBlock, `.1` a SpatialTransformer on levels with attention) and, except the last level, one
// downsampling block (`.0.op`). output_blocks has `layers_per_block + 1` blocks per level (deepest level first);
// the last block of a level ends with an upsampler (`.1.conv`, or `.2.conv` after a transformer). middle_block
// is ResBlock, SpatialTransformer, ResBlock. Inside a ResBlock, in_layers.0/2 are norm1/conv1, out_layers.0/3 are
// norm2/conv2, emb_layers.1 is time_emb_proj and skip_connection is conv_shortcut; transformer keys are the same
// in both layouts.
import { CheckpointError } from "../errors.js";
import { type ConversionPlan, countIndexed, keysUnder, PlanBuilder, type ShapeMap } from "./plan.js";

/** Prefix of the UNet in single-file checkpoints. */
export const LDM_UNET_PREFIX = "model.diffusion_model.";

/** The little a key mapping needs to know about a UNet (a diffusers config or the keys themselves tell it). */
export interface UNetKeyLayout {
  /** Resolution levels: the length of block_out_channels. */
  readonly levels: number;
  /** ResBlocks per down level (up levels have one more). */
  readonly layersPerBlock: number;
  /** Per level, in down order: whether its blocks have transformers (CrossAttn*Block2D). */
  readonly attention: readonly boolean[];
}

/** What the shapes of an LDM UNet say about its config. */
export interface UNetShapeInfo extends UNetKeyLayout {
  readonly blockOutChannels: readonly number[];
  /** Per level: transformer blocks per attention layer (0 on levels without attention). */
  readonly transformerDepth: readonly number[];
  readonly midTransformerDepth: number;
  readonly inChannels: number;
  readonly outChannels: number;
  /** Cross-attention width (the text encoder's hidden size), from an attn2.to_k weight; null without attention. */
  readonly contextDim: number | null;
  /** SD 2.x / SDXL transformers use linear proj_in / proj_out; SD 1.x uses 1x1 convs. */
  readonly linearProjection: boolean;
  /** SDXL's `label_emb` input features (diffusers' projection_class_embeddings_input_dim), or null. */
  readonly admInChannels: number | null;
  readonly timeEmbedDim: number;
}

const RESNET_RENAMES: readonly (readonly [string, string])[] = [
  ["in_layers.0.", "norm1."],
  ["in_layers.2.", "conv1."],
  ["out_layers.0.", "norm2."],
  ["out_layers.3.", "conv2."],
  ["emb_layers.1.", "time_emb_proj."],
  ["skip_connection.", "conv_shortcut."],
];

const TRANSFORMER_PARTS = ["norm.", "proj_in.", "proj_out.", "transformer_blocks."];

/** A ResBlock's inner key in diffusers naming, or null. */
function resnetKey(rest: string): string | null {
  for (const [from, to] of RESNET_RENAMES) if (rest.startsWith(from)) return to + rest.slice(from.length);
  return null;
}

function shapeOf(shapes: ShapeMap, key: string, what: string): readonly number[] {
  const s = shapes.get(key);
  if (!s) throw new CheckpointError(`UNet (${LDM_UNET_PREFIX}*): ${what} ${key} not found`);
  return s;
}

/**
 * Reads the UNet layout from the checkpoint's names and shapes alone: levels, layers per block, channels,
 * attention levels and depths, in/out channels, context width, SDXL's label embedding.
 */
export function inferUNetLayout(shapes: ShapeMap, prefix = LDM_UNET_PREFIX): UNetShapeInfo {
  const keys = keysUnder(shapes, prefix);
  const what = `UNet (${prefix}*)`;
  const nIn = countIndexed(keys, "input_blocks.");
  const nOut = countIndexed(keys, "output_blocks.");
  if (nIn < 2)
    throw new CheckpointError(`${what}: expected input_blocks.0 ... input_blocks.N, found ${nIn} block(s)`);
  let firstOp = -1;
  for (let i = 1; i < nIn && firstOp < 0; i++)
    if (shapes.has(`${prefix}input_blocks.${i}.0.op.weight`)) firstOp = i;
  const layersPerBlock = firstOp > 0 ? firstOp - 1 : nIn - 1;
  const per = layersPerBlock + 1;
  const levels = nIn / per;
  if (layersPerBlock < 1 || !Number.isInteger(levels) || nOut !== nIn) {
    throw new CheckpointError(
      `${what}: ${nIn} input blocks and ${nOut} output blocks do not form levels of ${layersPerBlock} ResBlocks ` +
        `plus a downsampler (expected levels x (layers_per_block + 1) of each)`,
    );
  }
  const blockOutChannels: number[] = [];
  const attention: boolean[] = [];
  const transformerDepth: number[] = [];
  for (let l = 0; l < levels; l++) {
    const first = 1 + l * per;
    blockOutChannels.push(
      shapeOf(shapes, `${prefix}input_blocks.${first}.0.in_layers.2.weight`, "ResBlock conv")[0]!,
    );
    let depth = 0;
    for (let j = 0; j < layersPerBlock; j++)
      depth = Math.max(depth, countIndexed(keys, `input_blocks.${first + j}.1.transformer_blocks.`));
    attention.push(depth > 0);
    transformerDepth.push(depth);
  }
  let contextDim: number | null = null;
  let linearProjection = false;
  for (const k of keys) {
    if (contextDim === null && k.endsWith(".attn2.to_k.weight"))
      contextDim = shapes.get(prefix + k)![1] ?? null;
    if (k.endsWith(".proj_in.weight") && shapes.get(prefix + k)!.length === 2) linearProjection = true;
  }
  const adm = shapes.get(`${prefix}label_emb.0.0.weight`);
  return {
    levels,
    layersPerBlock,
    attention,
    blockOutChannels,
    transformerDepth,
    midTransformerDepth: countIndexed(keys, "middle_block.1.transformer_blocks."),
    inChannels: shapeOf(shapes, `${prefix}input_blocks.0.0.weight`, "conv_in")[1]!,
    outChannels: shapeOf(shapes, `${prefix}out.2.weight`, "conv_out")[0]!,
    contextDim,
    linearProjection,
    admInChannels: adm ? adm[1]! : null,
    timeEmbedDim: shapeOf(shapes, `${prefix}time_embed.0.weight`, "time embedding")[0]!,
  };
}

/** The expected-keys text of errors. */
const EXPECTED =
  "time_embed.{0,2}, label_emb.0.{0,2} (SDXL), input_blocks.N.M..., middle_block.{0,1,2}..., output_blocks.N.M..., out.{0,2}";

/**
 * The conversion of an LDM UNet (keys under `prefix`) to diffusers' UNet2DConditionModel keys, for the given
 * layout. Every key under the prefix must be understood; shapes are unchanged (both layouts use the same
 * modules).
 */
export function ldmUNetPlan(
  shapes: ShapeMap,
  layout: UNetKeyLayout,
  prefix = LDM_UNET_PREFIX,
): ConversionPlan {
  const { levels, layersPerBlock: lpb, attention } = layout;
  if (attention.length !== levels)
    throw new CheckpointError(`UNet key layout: ${attention.length} attention flags for ${levels} levels`);
  const b = new PlanBuilder(shapes, `UNet (${prefix}*)`);
  const per = lpb + 1;
  for (const key of keysUnder(shapes, prefix)) {
    const src = prefix + key;
    const target = unetTarget(key, levels, lpb, per, attention);
    if (target === null) b.unmatched(src);
    else b.map(src, target);
  }
  return b.finish(EXPECTED);
}

function unetTarget(
  key: string,
  levels: number,
  lpb: number,
  per: number,
  attention: readonly boolean[],
): string | null {
  const swap = (from: string, to: string): string | null =>
    key.startsWith(from) ? to + key.slice(from.length) : null;
  const simple =
    swap("time_embed.0.", "time_embedding.linear_1.") ??
    swap("time_embed.2.", "time_embedding.linear_2.") ??
    swap("label_emb.0.0.", "add_embedding.linear_1.") ??
    swap("label_emb.0.2.", "add_embedding.linear_2.") ??
    swap("input_blocks.0.0.", "conv_in.") ??
    swap("out.0.", "conv_norm_out.") ??
    swap("out.2.", "conv_out.");
  if (simple !== null) return simple;

  const inner = (
    base: string,
    sub: number,
    rest: string,
    resnet: string,
    attn: string | null,
  ): string | null => {
    if (sub === 0) {
      const r = resnetKey(rest);
      return r === null ? null : `${base}${resnet}.${r}`;
    }
    if (sub === 1 && attn !== null && TRANSFORMER_PARTS.some((p) => rest.startsWith(p)))
      return `${base}${attn}.${rest}`;
    return null;
  };

  let m = /^middle_block\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const sub = Number(m[1]);
    const rest = m[2]!;
    if (sub === 0 || sub === 2) {
      const r = resnetKey(rest);
      return r === null ? null : `mid_block.resnets.${sub / 2}.${r}`;
    }
    return sub === 1 && TRANSFORMER_PARTS.some((p) => rest.startsWith(p))
      ? `mid_block.attentions.0.${rest}`
      : null;
  }

  m = /^input_blocks\.(\d+)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const i = Number(m[1]);
    const sub = Number(m[2]);
    const rest = m[3]!;
    const level = Math.floor((i - 1) / per);
    const j = (i - 1) % per;
    if (i < 1 || level >= levels) return null;
    if (j === lpb) {
      // the downsampler closing a level
      return sub === 0 && rest.startsWith("op.") && level < levels - 1
        ? `down_blocks.${level}.downsamplers.0.conv.${rest.slice(3)}`
        : null;
    }
    return inner(
      `down_blocks.${level}.`,
      sub,
      rest,
      `resnets.${j}`,
      attention[level] ? `attentions.${j}` : null,
    );
  }

  m = /^output_blocks\.(\d+)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const i = Number(m[1]);
    const sub = Number(m[2]);
    const rest = m[3]!;
    const up = Math.floor(i / per);
    const j = i % per;
    if (up >= levels) return null;
    const hasAttn = attention[levels - 1 - up]!;
    const upsamplerSub = hasAttn ? 2 : 1;
    if (sub === upsamplerSub && rest.startsWith("conv.") && j === lpb && up < levels - 1)
      return `up_blocks.${up}.upsamplers.0.conv.${rest.slice(5)}`;
    return inner(`up_blocks.${up}.`, sub, rest, `resnets.${j}`, hasAttn ? `attentions.${j}` : null);
  }
  return null;
}
