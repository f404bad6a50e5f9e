// Which layers a LoRA adapts, by diffusers' / transformers' module names (the names LoRA files use):
//   UNet "attn":            the attention projections to_q, to_k, to_v, to_out.0 of every self- and cross-attention
//                           (diffusers' and PEFT's usual target_modules);
//   UNet "attn+ff":         those and the transformer blocks' feed-forward layers ff.net.0.proj, ff.net.2;
//   UNet "all-linear+conv": every Linear and Conv2d inside the down, mid and up blocks (attention, feed-forward,
//                           proj_in / proj_out, the ResNets' convolutions and time projections, the samplers' convs:
//                           kohya's LoRA with conv_dim, "LoCon"); conv_in, conv_out and the time embedding stay frozen;
//   text encoder:           the self-attention q/k/v/out projections and the MLP's fc1 / fc2 of every layer (kohya's
//                           and diffusers' text encoder LoRA).
import type { Module } from "../nn/index.js";
import { isLoraLayer } from "../nn/lora.js";
import { ArgumentError } from "../tensor/errors.js";

/** The UNet layer sets a LoRA can adapt (see the file comment). */
export const LORA_TARGET_SETS = ["attn", "attn+ff", "all-linear+conv"] as const;
/** One of {@link LORA_TARGET_SETS}. */
export type LoraTargetSet = (typeof LORA_TARGET_SETS)[number];

const ATTENTION = /\.attn\d+\.(to_q|to_k|to_v|to_out\.0)$/;
const FEED_FORWARD = /\.ff\.net\.(0\.proj|2)$/;
const IN_BLOCKS = /^(down_blocks|mid_block|up_blocks)\./;
const TEXT_LAYERS = /\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))$/;

/** True when `name` is one of {@link LORA_TARGET_SETS}. */
export function isLoraTargetSet(name: string): name is LoraTargetSet {
  return (LORA_TARGET_SETS as readonly string[]).includes(name);
}

/** The dotted paths of the UNet layers of `set`, in the model's module order. */
export function unetLoraPaths(unet: Module, set: LoraTargetSet): string[] {
  if (!isLoraTargetSet(set))
    throw new ArgumentError(`LoRA targets must be one of ${LORA_TARGET_SETS.join(", ")}, got "${set}"`);
  const paths: string[] = [];
  for (const [path, m] of unet.namedModules()) {
    if (!isLoraLayer(m) || !IN_BLOCKS.test(path)) continue;
    const take =
      set === "all-linear+conv" || ATTENTION.test(path) || (set === "attn+ff" && FEED_FORWARD.test(path));
    if (take) paths.push(path);
  }
  if (paths.length === 0)
    throw new ArgumentError(
      `LoRA targets "${set}": the UNet has no such layers (no attention in its blocks?); try --targets all-linear+conv`,
    );
  return paths;
}

/** The dotted paths of a CLIP text encoder's attention and MLP layers. */
export function textEncoderLoraPaths(textEncoder: Module): string[] {
  const paths = textEncoder
    .namedModules()
    .filter(([path, m]) => isLoraLayer(m) && TEXT_LAYERS.test(path))
    .map(([path]) => path);
  if (paths.length === 0)
    throw new ArgumentError("the text encoder has no attention / MLP layers named like CLIP's to adapt");
  return paths;
}
