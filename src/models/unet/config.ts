// UNet2DConditionModel configs: diffusers' `config.json` keys as-is (snake_case), merged over diffusers' defaults,
// checked, and resolved into a per-block plan (channels, layers, heads) the model is built from.
import { ConfigChecker, type RawConfig } from "../blocks/config-values.js";
import { SD15, SD21, SDXL } from "./released-configs.js";

/** A UNet2DConditionModel config: diffusers' keys and values; keys this library does not know are kept as-is. */
export interface UNet2DConditionConfig {
  readonly sample_size: number | readonly number[] | null;
  readonly in_channels: number;
  readonly out_channels: number;
  readonly center_input_sample: boolean;
  readonly flip_sin_to_cos: boolean;
  readonly freq_shift: number;
  readonly down_block_types: readonly string[];
  readonly mid_block_type: string | null;
  readonly up_block_types: readonly string[];
  readonly only_cross_attention: boolean | readonly boolean[];
  readonly block_out_channels: readonly number[];
  readonly layers_per_block: number | readonly number[];
  readonly downsample_padding: number;
  readonly mid_block_scale_factor: number;
  readonly dropout: number;
  readonly act_fn: string;
  readonly norm_num_groups: number;
  readonly norm_eps: number;
  readonly cross_attention_dim: number | readonly number[];
  /** Per down block: an int, or one int per layer (then `reverse_transformer_layers_per_block` is required). */
  readonly transformer_layers_per_block: number | readonly (number | readonly number[])[];
  readonly reverse_transformer_layers_per_block: readonly (number | readonly number[])[] | null;
  readonly encoder_hid_dim: number | null;
  readonly encoder_hid_dim_type: string | null;
  /** Legacy meaning (SD 1.x/2.x, SDXL): the NUMBER of heads when `num_attention_heads` is unset. */
  readonly attention_head_dim: number | readonly number[];
  readonly num_attention_heads: number | readonly number[] | null;
  readonly dual_cross_attention: boolean;
  readonly use_linear_projection: boolean;
  readonly class_embed_type: string | null;
  readonly addition_embed_type: string | null;
  readonly addition_time_embed_dim: number | null;
  readonly num_class_embeds: number | null;
  readonly upcast_attention: boolean | null;
  readonly resnet_time_scale_shift: string;
  readonly resnet_skip_time_act: boolean;
  readonly resnet_out_scale_factor: number;
  readonly time_embedding_type: string;
  readonly time_embedding_dim: number | null;
  readonly time_embedding_act_fn: string | null;
  readonly timestep_post_act: string | null;
  readonly time_cond_proj_dim: number | null;
  readonly conv_in_kernel: number;
  readonly conv_out_kernel: number;
  readonly projection_class_embeddings_input_dim: number | null;
  readonly attention_type: string;
  readonly class_embeddings_concat: boolean;
  readonly mid_block_only_cross_attention: boolean | null;
  readonly cross_attention_norm: string | null;
  readonly addition_embed_type_num_heads: number;
  readonly [key: string]: unknown;
}

/** The defaults of diffusers' `UNet2DConditionModel.__init__` (diffusers 0.38). */
const DEFAULTS: RawConfig = {
  sample_size: null,
  in_channels: 4,
  out_channels: 4,
  center_input_sample: false,
  flip_sin_to_cos: true,
  freq_shift: 0,
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  mid_block_type: "UNetMidBlock2DCrossAttn",
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  only_cross_attention: false,
  block_out_channels: [320, 640, 1280, 1280],
  layers_per_block: 2,
  downsample_padding: 1,
  mid_block_scale_factor: 1,
  dropout: 0,
  act_fn: "silu",
  norm_num_groups: 32,
  norm_eps: 1e-5,
  cross_attention_dim: 1280,
  transformer_layers_per_block: 1,
  reverse_transformer_layers_per_block: null,
  encoder_hid_dim: null,
  encoder_hid_dim_type: null,
  attention_head_dim: 8,
  num_attention_heads: null,
  dual_cross_attention: false,
  use_linear_projection: false,
  class_embed_type: null,
  addition_embed_type: null,
  addition_time_embed_dim: null,
  num_class_embeds: null,
  upcast_attention: false,
  resnet_time_scale_shift: "default",
  resnet_skip_time_act: false,
  resnet_out_scale_factor: 1.0,
  time_embedding_type: "positional",
  time_embedding_dim: null,
  time_embedding_act_fn: null,
  timestep_post_act: null,
  time_cond_proj_dim: null,
  conv_in_kernel: 3,
  conv_out_kernel: 3,
  projection_class_embeddings_input_dim: null,
  attention_type: "default",
  class_embeddings_concat: false,
  mid_block_only_cross_attention: null,
  cross_attention_norm: null,
  addition_embed_type_num_heads: 64,
};

/** Down block types this library builds. */
export const DOWN_BLOCK_TYPES = ["CrossAttnDownBlock2D", "DownBlock2D"] as const;
/** Up block types this library builds. */
export const UP_BLOCK_TYPES = ["CrossAttnUpBlock2D", "UpBlock2D"] as const;
const ACTS = ["silu", "swish"];
const CLASS_EMBED_TYPES = ["timestep", "identity", "projection", "simple_projection"];

const WHO = "UNet2DConditionModel";

/** One down or up block of the plan. */
export interface UNetBlockPlan {
  readonly type: string;
  /** Whether it has transformers (CrossAttn*). */
  readonly crossAttention: boolean;
  readonly inChannels: number;
  readonly outChannels: number;
  /** Up blocks: channels coming from the previous up block. */
  readonly prevOutputChannels: number;
  readonly numLayers: number;
  /** Transformer blocks per layer (one entry per resnet/attention pair). */
  readonly transformerLayers: readonly number[];
  readonly heads: number;
  readonly crossAttentionDim: number;
  readonly onlyCrossAttention: boolean;
  /** Ends with a Downsample2D / Upsample2D. */
  readonly resample: boolean;
}

/** What the model is built from: resolved per-block settings. */
export interface UNetPlan {
  readonly timeEmbedDim: number;
  /** Channels of the time embedding the resnets get (doubled with class_embeddings_concat). */
  readonly blocksTimeEmbedDim: number;
  readonly down: readonly UNetBlockPlan[];
  readonly mid: UNetBlockPlan | null;
  readonly up: readonly UNetBlockPlan[];
}

type Layers = number | readonly number[];

function perBlock<T>(v: T | readonly T[], n: number): T[] {
  return Array.isArray(v) ? [...(v as readonly T[])] : new Array<T>(n).fill(v as T);
}

/** Checks every key the model reads and returns the config (defaults filled in, unknown keys kept). */
function resolve(raw: RawConfig): UNet2DConditionConfig {
  const cfg: Record<string, unknown> = { ...DEFAULTS, ...raw };
  const c = new ConfigChecker(cfg, WHO);
  const channels = c.ints("block_out_channels");
  const n = channels.length;
  const down = c.strings("down_block_types");
  const up = c.strings("up_block_types");
  if (down.length !== n) c.fail("down_block_types", `a list of ${n} (one per block_out_channels entry)`);
  if (up.length !== n) c.fail("up_block_types", `a list of ${n} (as many as down_block_types)`);
  down.forEach((t, i) => {
    if (!(DOWN_BLOCK_TYPES as readonly string[]).includes(t))
      c.fail(`down_block_types[${i}]`, `one of ${DOWN_BLOCK_TYPES.join(", ")}`, t);
  });
  up.forEach((t, i) => {
    if (!(UP_BLOCK_TYPES as readonly string[]).includes(t))
      c.fail(`up_block_types[${i}]`, `one of ${UP_BLOCK_TYPES.join(", ")}`, t);
  });
  c.stringOrNull("mid_block_type", ["UNetMidBlock2DCrossAttn"]);
  c.int("in_channels", 1);
  c.int("out_channels", 1);
  c.bool("center_input_sample");
  c.bool("flip_sin_to_cos");
  c.number("freq_shift");
  c.boolOrBools("only_cross_attention", n);
  c.intOrInts("layers_per_block", n);
  c.int("downsample_padding", 0);
  c.number("mid_block_scale_factor");
  c.string("act_fn", ACTS);
  const groups = c.int("norm_num_groups", 1);
  channels.forEach((ch, i) => {
    if (ch % groups !== 0)
      c.error(`block_out_channels[${i}] = ${ch} is not divisible by norm_num_groups = ${groups}`);
  });
  c.number("norm_eps");
  c.intOrInts("cross_attention_dim", n);
  // with num_attention_heads set, attention_head_dim is not used by the blocks built here
  if (cfg.num_attention_heads != null) c.intOrInts("num_attention_heads", n);
  else c.intOrInts("attention_head_dim", n);
  c.bool("use_linear_projection");
  c.boolOrNull("upcast_attention");
  c.boolOrNull("mid_block_only_cross_attention");
  c.bool("class_embeddings_concat");
  if (c.int("conv_in_kernel", 1) % 2 === 0 || c.int("conv_out_kernel", 1) % 2 === 0)
    c.error("conv_in_kernel and conv_out_kernel must be odd (same-size padding)");
  c.intOrNull("time_embedding_dim");
  c.intOrNull("time_cond_proj_dim");
  c.stringOrNull("time_embedding_act_fn", ACTS);
  c.stringOrNull("timestep_post_act", ACTS);
  c.intOrNull("num_class_embeds");
  c.intOrNull("projection_class_embeddings_input_dim");
  c.intOrNull("addition_time_embed_dim");
  const classType = c.stringOrNull("class_embed_type", CLASS_EMBED_TYPES);
  if (
    (classType === "projection" || classType === "simple_projection") &&
    cfg.projection_class_embeddings_input_dim == null
  )
    c.error(`class_embed_type "${classType}" needs projection_class_embeddings_input_dim`);
  const addType = c.stringOrNull("addition_embed_type", ["text_time"]);
  if (
    addType === "text_time" &&
    (cfg.addition_time_embed_dim == null || cfg.projection_class_embeddings_input_dim == null)
  )
    c.error(
      `addition_embed_type "text_time" needs addition_time_embed_dim and projection_class_embeddings_input_dim`,
    );
  checkTransformerLayers(c, cfg, n);
  // options of diffusers' UNet this library does not implement: accepted at their default values only
  c.only("time_embedding_type", ["positional"]);
  c.only("encoder_hid_dim_type", [null]);
  c.only("encoder_hid_dim", [null], "is not supported (no encoder_hid_proj)");
  c.only("dual_cross_attention", [false]);
  c.only("resnet_time_scale_shift", ["default"]);
  c.only("resnet_skip_time_act", [false]);
  c.only("attention_type", ["default"]);
  c.only("cross_attention_norm", [null]);
  c.only("dropout", [0], "is not supported (inference and training here use no dropout)");
  return Object.freeze(cfg) as UNet2DConditionConfig;
}

function checkTransformerLayers(c: ConfigChecker, cfg: Record<string, unknown>, n: number): void {
  const isLayers = (v: unknown): boolean =>
    (Number.isInteger(v) && (v as number) >= 1) ||
    (Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x) && x >= 1));
  const t = cfg.transformer_layers_per_block;
  if (
    !(Number.isInteger(t) && (t as number) >= 1) &&
    !(Array.isArray(t) && t.length === n && t.every(isLayers))
  )
    c.fail("transformer_layers_per_block", `an integer >= 1 or a list of ${n} (integers or lists of them)`);
  const r = cfg.reverse_transformer_layers_per_block;
  if (r != null && !(Array.isArray(r) && r.length === n && r.every(isLayers)))
    c.fail("reverse_transformer_layers_per_block", `null or a list of ${n} (integers or lists of them)`);
  if (Array.isArray(t) && t.some(Array.isArray) && r == null)
    c.error(
      "reverse_transformer_layers_per_block is required when transformer_layers_per_block has per-layer lists",
    );
}

/** Resolves the per-block settings as diffusers' UNet2DConditionModel.__init__ does. */
export function planUNet(cfg: UNet2DConditionConfig): UNetPlan {
  const c = new ConfigChecker(cfg, WHO);
  const channels = cfg.block_out_channels;
  const n = channels.length;
  const timeEmbedDim = cfg.time_embedding_dim ?? channels[0]! * 4;
  // legacy naming: attention_head_dim is the number of heads unless num_attention_heads is set
  const heads = perBlock(cfg.num_attention_heads ?? cfg.attention_head_dim, n);
  const crossDims = perBlock(cfg.cross_attention_dim, n);
  const layers = perBlock(cfg.layers_per_block, n);
  const onlyCross = perBlock(cfg.only_cross_attention, n);
  const tl = perBlock(cfg.transformer_layers_per_block, n) as Layers[];
  const upTl = (cfg.reverse_transformer_layers_per_block as Layers[] | null) ?? [...tl].reverse();
  const perLayer = (v: Layers, numLayers: number, what: string): number[] => {
    if (typeof v === "number") return new Array<number>(numLayers).fill(v);
    if (v.length !== numLayers)
      c.error(`${what}: ${v.length} transformer layer counts for ${numLayers} layers`);
    return [...v];
  };
  const checkHeads = (p: UNetBlockPlan, what: string): UNetBlockPlan => {
    if (p.crossAttention && p.outChannels % p.heads !== 0)
      c.error(`${what}: ${p.outChannels} channels cannot be split into ${p.heads} attention heads`);
    return p;
  };
  const down = cfg.down_block_types.map((type, i) =>
    checkHeads(
      {
        type,
        crossAttention: type.startsWith("CrossAttn"),
        inChannels: i === 0 ? channels[0]! : channels[i - 1]!,
        outChannels: channels[i]!,
        prevOutputChannels: 0,
        numLayers: layers[i]!,
        transformerLayers: perLayer(tl[i]!, layers[i]!, `down block ${i}`),
        heads: heads[i]!,
        crossAttentionDim: crossDims[i]!,
        onlyCrossAttention: onlyCross[i]!,
        resample: i < n - 1,
      },
      `down block ${i}`,
    ),
  );
  const last = channels[n - 1]!;
  const mid =
    cfg.mid_block_type === null
      ? null
      : checkHeads(
          {
            type: cfg.mid_block_type,
            crossAttention: true,
            inChannels: last,
            outChannels: last,
            prevOutputChannels: last,
            numLayers: 1,
            transformerLayers: perLayer(tl[n - 1]!, 1, "mid block"),
            heads: heads[n - 1]!,
            crossAttentionDim: crossDims[n - 1]!,
            onlyCrossAttention: false,
            resample: false,
          },
          "mid block",
        );
  const rev = [...channels].reverse();
  const up = cfg.up_block_types.map((type, i) => {
    const numLayers = layers[n - 1 - i]! + 1;
    return checkHeads(
      {
        type,
        crossAttention: type.startsWith("CrossAttn"),
        inChannels: rev[Math.min(i + 1, n - 1)]!,
        outChannels: rev[i]!,
        prevOutputChannels: i === 0 ? rev[0]! : rev[i - 1]!,
        numLayers,
        transformerLayers: perLayer(upTl[i]!, numLayers, `up block ${i}`),
        heads: heads[n - 1 - i]!,
        crossAttentionDim: crossDims[n - 1 - i]!,
        onlyCrossAttention: onlyCross[n - 1 - i]!,
        resample: i < n - 1,
      },
      `up block ${i}`,
    );
  });
  return {
    timeEmbedDim,
    blocksTimeEmbedDim: cfg.class_embeddings_concat ? 2 * timeEmbedDim : timeEmbedDim,
    down,
    mid,
    up,
  };
}

/** Builds and names UNet2DConditionModel configs. */
export const UNet2DConditionConfig = {
  /** Checks a `config.json` object and fills in diffusers' defaults (unknown keys are kept). */
  from(raw: RawConfig): UNet2DConditionConfig {
    return resolve(raw);
  },
  /** diffusers' defaults. */
  defaults(): UNet2DConditionConfig {
    return resolve({});
  },
  /** Stable Diffusion 1.5 (`in_channels: 9` for the inpainting model). */
  sd15(overrides: RawConfig = {}): UNet2DConditionConfig {
    return resolve({ ...SD15, ...overrides });
  },
  /** Stable Diffusion 2.1 (768x768, v-prediction). */
  sd21(overrides: RawConfig = {}): UNet2DConditionConfig {
    return resolve({ ...SD21, ...overrides });
  },
  /** Stable Diffusion XL 1.0 base. */
  sdxl(overrides: RawConfig = {}): UNet2DConditionConfig {
    return resolve({ ...SDXL, ...overrides });
  },
};
