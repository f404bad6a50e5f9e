// AutoencoderKL configs: diffusers' `config.json` keys as-is (snake_case), merged over diffusers' defaults and
// checked; keys this library does not know are kept.
import { ConfigChecker, type RawConfig } from "../blocks/config-values.js";

/** An AutoencoderKL config: diffusers' keys and values (unknown keys kept). */
export interface AutoencoderKLConfig {
  readonly in_channels: number;
  readonly out_channels: number;
  readonly down_block_types: readonly string[];
  readonly up_block_types: readonly string[];
  readonly block_out_channels: readonly number[];
  readonly layers_per_block: number;
  readonly act_fn: string;
  readonly latent_channels: number;
  readonly norm_num_groups: number;
  readonly sample_size: number | readonly number[];
  /** Latents are multiplied by this before the UNet (by pipelines; encode/decode do not apply it). */
  readonly scaling_factor: number;
  readonly shift_factor: number | null;
  readonly latents_mean: readonly number[] | null;
  readonly latents_std: readonly number[] | null;
  readonly force_upcast: boolean;
  readonly use_quant_conv: boolean;
  readonly use_post_quant_conv: boolean;
  readonly mid_block_add_attention: boolean;
  readonly [key: string]: unknown;
}

/** The defaults of diffusers' `AutoencoderKL.__init__` (diffusers 0.38). */
const DEFAULTS: RawConfig = {
  in_channels: 3,
  out_channels: 3,
  down_block_types: ["DownEncoderBlock2D"],
  up_block_types: ["UpDecoderBlock2D"],
  block_out_channels: [64],
  layers_per_block: 1,
  act_fn: "silu",
  latent_channels: 4,
  norm_num_groups: 32,
  sample_size: 32,
  scaling_factor: 0.18215,
  shift_factor: null,
  latents_mean: null,
  latents_std: null,
  force_upcast: true,
  use_quant_conv: true,
  use_post_quant_conv: true,
  mid_block_add_attention: true,
};

const WHO = "AutoencoderKL";

function resolve(raw: RawConfig): AutoencoderKLConfig {
  const cfg: Record<string, unknown> = { ...DEFAULTS, ...raw };
  const c = new ConfigChecker(cfg, WHO);
  const channels = c.ints("block_out_channels");
  const n = channels.length;
  const down = c.strings("down_block_types");
  const up = c.strings("up_block_types");
  if (down.length !== n) c.fail("down_block_types", `a list of ${n} (one per block_out_channels entry)`);
  if (up.length !== n) c.fail("up_block_types", `a list of ${n} (one per block_out_channels entry)`);
  down.forEach((t, i) => {
    if (t !== "DownEncoderBlock2D") c.fail(`down_block_types[${i}]`, `"DownEncoderBlock2D"`, t);
  });
  up.forEach((t, i) => {
    if (t !== "UpDecoderBlock2D") c.fail(`up_block_types[${i}]`, `"UpDecoderBlock2D"`, t);
  });
  c.int("in_channels", 1);
  c.int("out_channels", 1);
  c.int("layers_per_block", 1);
  c.string("act_fn", ["silu", "swish"]);
  c.int("latent_channels", 1);
  const groups = c.int("norm_num_groups", 1);
  channels.forEach((ch, i) => {
    if (ch % groups !== 0)
      c.error(`block_out_channels[${i}] = ${ch} is not divisible by norm_num_groups = ${groups}`);
  });
  c.number("scaling_factor");
  c.numberOrNull("shift_factor");
  c.bool("use_quant_conv");
  c.bool("use_post_quant_conv");
  c.bool("mid_block_add_attention");
  c.bool("force_upcast");
  return Object.freeze(cfg) as AutoencoderKLConfig;
}

// https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/blob/main/vae/config.json (also SD 2.x)
const SD: RawConfig = {
  _class_name: "AutoencoderKL",
  _diffusers_version: "0.6.0",
  act_fn: "silu",
  block_out_channels: [128, 256, 512, 512],
  down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  in_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 32,
  out_channels: 3,
  sample_size: 512,
  up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
};

// https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/vae/config.json
const SDXL: RawConfig = {
  ...SD,
  _diffusers_version: "0.20.0.dev0",
  force_upcast: true,
  sample_size: 1024,
  scaling_factor: 0.13025,
};

/** Builds and names AutoencoderKL configs. */
export const AutoencoderKLConfig = {
  /** Checks a `config.json` object and fills in diffusers' defaults (unknown keys are kept). */
  from(raw: RawConfig): AutoencoderKLConfig {
    return resolve(raw);
  },
  /** The Stable Diffusion 1.x / 2.x VAE (scaling_factor 0.18215). */
  sd(overrides: RawConfig = {}): AutoencoderKLConfig {
    return resolve({ ...SD, ...overrides });
  },
  /** The SDXL VAE (scaling_factor 0.13025). */
  sdxl(overrides: RawConfig = {}): AutoencoderKLConfig {
    return resolve({ ...SDXL, ...overrides });
  },
};
