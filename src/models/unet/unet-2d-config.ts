// UNet2DModel configs: diffusers' `config.json` keys as-is, merged over diffusers' defaults and checked. Options this
// library does not build (fourier time embeddings, resnet/skip blocks, dropout, scale-shift norms) are accepted only
// at their default values, with an error naming the key otherwise.
import { ConfigChecker, type RawConfig } from "../blocks/config-values.js";

/** A UNet2DModel config (diffusers' keys); unknown keys are kept as-is. */
export interface UNet2DConfig {
  readonly _class_name: "UNet2DModel";
  readonly sample_size: number | readonly number[] | null;
  readonly in_channels: number;
  readonly out_channels: number;
  readonly center_input_sample: boolean;
  readonly time_embedding_type: "positional";
  readonly time_embedding_dim: number | null;
  readonly freq_shift: number;
  readonly flip_sin_to_cos: boolean;
  readonly down_block_types: readonly string[];
  readonly mid_block_type: string | null;
  readonly up_block_types: readonly string[];
  readonly block_out_channels: readonly number[];
  readonly layers_per_block: number;
  readonly mid_block_scale_factor: number;
  readonly downsample_padding: number;
  readonly downsample_type: string;
  readonly upsample_type: string;
  readonly dropout: number;
  readonly act_fn: string;
  /** Channels per attention head (null: one head per block). */
  readonly attention_head_dim: number | null;
  readonly norm_num_groups: number;
  readonly attn_norm_num_groups: number | null;
  readonly norm_eps: number;
  readonly resnet_time_scale_shift: string;
  readonly add_attention: boolean;
  readonly class_embed_type: string | null;
  /** Size of the class-embedding table (a class-conditional model with CFG: classes + 1 null class). */
  readonly num_class_embeds: number | null;
  readonly num_train_timesteps: number | null;
  readonly [key: string]: unknown;
}

/** diffusers' UNet2DModel defaults (the `__init__` signature). */
const DEFAULTS: Omit<UNet2DConfig, "_class_name"> = {
  sample_size: null,
  in_channels: 3,
  out_channels: 3,
  center_input_sample: false,
  time_embedding_type: "positional",
  time_embedding_dim: null,
  freq_shift: 0,
  flip_sin_to_cos: true,
  down_block_types: ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
  mid_block_type: "UNetMidBlock2D",
  up_block_types: ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
  block_out_channels: [224, 448, 672, 896],
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  downsample_padding: 1,
  downsample_type: "conv",
  upsample_type: "conv",
  dropout: 0,
  act_fn: "silu",
  attention_head_dim: 8,
  norm_num_groups: 32,
  attn_norm_num_groups: null,
  norm_eps: 1e-5,
  resnet_time_scale_shift: "default",
  add_attention: true,
  class_embed_type: null,
  num_class_embeds: null,
  num_train_timesteps: null,
};

const DOWN_TYPES = ["DownBlock2D", "AttnDownBlock2D"];
const UP_TYPES = ["UpBlock2D", "AttnUpBlock2D"];

/** Merges `raw` over diffusers' defaults and checks every key this library reads. */
export function resolveUNet2DConfig(raw: RawConfig = {}): UNet2DConfig {
  const merged: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) merged[k] = v;
  merged._class_name = "UNet2DModel";
  const c = new ConfigChecker(merged, "UNet2DModel");
  c.int("in_channels", 1);
  c.int("out_channels", 1);
  c.bool("center_input_sample");
  c.only("time_embedding_type", ["positional"]);
  c.intOrNull("time_embedding_dim");
  c.number("freq_shift");
  c.bool("flip_sin_to_cos");
  const down = c.strings("down_block_types");
  const up = c.strings("up_block_types");
  const ch = c.ints("block_out_channels");
  for (const t of down)
    if (!DOWN_TYPES.includes(t)) c.fail("down_block_types", `a list of ${DOWN_TYPES.join(" / ")}`);
  for (const t of up)
    if (!UP_TYPES.includes(t)) c.fail("up_block_types", `a list of ${UP_TYPES.join(" / ")}`);
  if (down.length !== ch.length || up.length !== ch.length) {
    c.error(
      `down_block_types (${down.length}), up_block_types (${up.length}) and block_out_channels (${ch.length}) must have the same length`,
    );
  }
  c.stringOrNull("mid_block_type", ["UNetMidBlock2D"]);
  c.int("layers_per_block", 1);
  c.number("mid_block_scale_factor");
  c.int("downsample_padding", 0);
  c.only("downsample_type", ["conv"]);
  c.only("upsample_type", ["conv"]);
  c.only("dropout", [0], "(dropout) is not implemented");
  c.only("act_fn", ["silu", "swish"]);
  c.intOrNull("attention_head_dim");
  c.int("norm_num_groups", 1);
  c.only("attn_norm_num_groups", [null]);
  c.number("norm_eps");
  c.only("resnet_time_scale_shift", ["default"]);
  c.bool("add_attention");
  c.only("class_embed_type", [null], "(only a class-embedding table from num_class_embeds is supported)");
  c.intOrNull("num_class_embeds");
  const s = merged.sample_size;
  if (s != null && !(Number.isInteger(s) && (s as number) > 0)) {
    const ok = Array.isArray(s) && s.length === 2 && s.every((x) => Number.isInteger(x) && x > 0);
    if (!ok) c.fail("sample_size", "a positive integer, a pair of them or null");
  }
  for (const x of ch) {
    if (x % (merged.norm_num_groups as number) !== 0) {
      c.error(
        `norm_num_groups (${merged.norm_num_groups}) must divide every block_out_channels entry (${ch.join(", ")})`,
      );
    }
  }
  return Object.freeze(merged) as unknown as UNet2DConfig;
}

/** The config as diffusers writes it in `config.json` (every key, `_class_name` first). */
export function unet2DConfigJson(cfg: UNet2DConfig, diffusersVersion = "0.30.0"): Record<string, unknown> {
  const { _class_name, ...rest } = cfg;
  return { _class_name, _diffusers_version: diffusersVersion, ...rest };
}
