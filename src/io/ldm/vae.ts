// The VAE of an original Stable Diffusion checkpoint (LDM `AutoencoderKL` under `first_stage_model.`), mapped to
// diffusers' AutoencoderKL keys: encoder.down.i.block.j -> encoder.down_blocks.i.resnets.j (nin_shortcut ->
// conv_shortcut), down.i.downsample -> downsamplers.0, mid.block_1/2 -> mid_block.resnets.0/1, mid.attn_1 (norm,
// q, k, v, proj_out as 1x1 convs) -> mid_block.attentions.0 (group_norm, to_q, to_k, to_v, to_out.0 as linear
// weights), norm_out -> conv_norm_out; the decoder's up.i is numbered from the lowest resolution in diffusers, so
// decoder.up.{L-1-i} -> decoder.up_blocks.i.
import { CheckpointError } from "../errors.js";
import { type ConversionPlan, countIndexed, keysUnder, PlanBuilder, type ShapeMap } from "./plan.js";

/** Prefix of the VAE in single-file checkpoints. */
export const LDM_VAE_PREFIX = "first_stage_model.";

/** What the shapes of an LDM VAE say about its config. */
export interface VAEShapeInfo {
  readonly levels: number;
  readonly layersPerBlock: number;
  readonly blockOutChannels: readonly number[];
  readonly inChannels: number;
  readonly outChannels: number;
  readonly latentChannels: number;
}

/** Reads levels, layers per block, channels and latent channels from the names and shapes of an LDM VAE. */
export function inferVAELayout(shapes: ShapeMap, prefix = LDM_VAE_PREFIX): VAEShapeInfo {
  const keys = keysUnder(shapes, prefix);
  const what = `VAE (${prefix}*)`;
  const levels = countIndexed(keys, "encoder.down.");
  const get = (k: string): readonly number[] => {
    const s = shapes.get(prefix + k);
    if (!s) throw new CheckpointError(`${what}: ${prefix}${k} not found`);
    return s;
  };
  if (levels === 0) throw new CheckpointError(`${what}: no encoder.down.N blocks found`);
  const blockOutChannels: number[] = [];
  for (let i = 0; i < levels; i++) blockOutChannels.push(get(`encoder.down.${i}.block.0.conv1.weight`)[0]!);
  return {
    levels,
    layersPerBlock: countIndexed(keys, "encoder.down.0.block."),
    blockOutChannels,
    inChannels: get("encoder.conv_in.weight")[1]!,
    outChannels: get("decoder.conv_out.weight")[0]!,
    latentChannels: get("decoder.conv_in.weight")[1]!,
  };
}

const ATTENTION_RENAMES: Readonly<Record<string, string>> = {
  norm: "group_norm",
  q: "to_q",
  k: "to_k",
  v: "to_v",
  proj_out: "to_out.0",
};

const EXPECTED =
  "{encoder,decoder}.{conv_in,conv_out,norm_out}, encoder.down.i.{block.j,downsample}, decoder.up.i.{block.j,upsample}, {encoder,decoder}.mid.{block_1,block_2,attn_1}, quant_conv, post_quant_conv";

/**
 * The conversion of an LDM VAE (keys under `prefix`) to diffusers' AutoencoderKL keys. `levels` (the length of
 * block_out_channels) is read from the encoder when not given; it fixes the reversed numbering of the decoder.
 */
export function ldmVAEPlan(shapes: ShapeMap, prefix = LDM_VAE_PREFIX, levels?: number): ConversionPlan {
  const keys = keysUnder(shapes, prefix);
  const n = levels ?? countIndexed(keys, "encoder.down.");
  const b = new PlanBuilder(shapes, `VAE (${prefix}*)`);
  for (const key of keys) {
    const src = prefix + key;
    const m = /^(encoder|decoder)\.(.+)$/.exec(key);
    if (!m) {
      if (/^(quant_conv|post_quant_conv)\.(weight|bias)$/.test(key)) b.map(src, key);
      else b.unmatched(src);
      continue;
    }
    const part = m[1]!;
    const rest = m[2]!;
    let r: RegExpExecArray | null;
    if (/^(conv_in|conv_out)\./.test(rest)) b.map(src, key);
    else if (rest.startsWith("norm_out.")) b.map(src, `${part}.conv_norm_out.${rest.slice(9)}`);
    else if ((r = /^mid\.block_([12])\.(.+)$/.exec(rest))) {
      b.map(src, `${part}.mid_block.resnets.${Number(r[1]) - 1}.${resnet(r[2]!)}`);
    } else if ((r = /^mid\.attn_1\.(norm|q|k|v|proj_out)\.(weight|bias)$/.exec(rest))) {
      const target = `${part}.mid_block.attentions.0.${ATTENTION_RENAMES[r[1]!]}.${r[2]}`;
      b.map(src, target, r[1] !== "norm" && r[2] === "weight" ? { kind: "squeeze" } : undefined);
    } else if (part === "encoder" && (r = /^down\.(\d+)\.(block\.(\d+)|downsample)\.(.+)$/.exec(rest))) {
      const i = Number(r[1]);
      if (i >= n) b.unmatched(src);
      else if (r[3] !== undefined) b.map(src, `encoder.down_blocks.${i}.resnets.${r[3]}.${resnet(r[4]!)}`);
      else b.map(src, `encoder.down_blocks.${i}.downsamplers.0.${r[4]}`);
    } else if (part === "decoder" && (r = /^up\.(\d+)\.(block\.(\d+)|upsample)\.(.+)$/.exec(rest))) {
      const i = Number(r[1]);
      if (i >= n) b.unmatched(src);
      else if (r[3] !== undefined)
        b.map(src, `decoder.up_blocks.${n - 1 - i}.resnets.${r[3]}.${resnet(r[4]!)}`);
      else b.map(src, `decoder.up_blocks.${n - 1 - i}.upsamplers.0.${r[4]}`);
    } else b.unmatched(src);
  }
  return b.finish(EXPECTED);
}

function resnet(rest: string): string {
  return rest.startsWith("nin_shortcut.") ? `conv_shortcut.${rest.slice(13)}` : rest;
}
