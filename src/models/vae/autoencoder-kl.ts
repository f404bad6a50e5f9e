// diffusers' AutoencoderKL: the Stable Diffusion VAE (Rombach et al. 2022, section 3), mapping images to latents
// 8x smaller (for the released models) and back. Property paths are diffusers' state-dict keys.
import type { ModelSource } from "../../io/folder.js";
import { Conv2d, type LayerOptions, Module } from "../../nn/index.js";
import { ShapeError } from "../../tensor/errors.js";
import type { Generator } from "../../tensor/generator.js";
import { formatShape } from "../../tensor/shape.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { RawConfig } from "../blocks/config-values.js";
import { type FromPretrainedOptions, loadPretrained } from "../blocks/weights.js";
import { AutoencoderKLConfig } from "./config.js";
import { DiagonalGaussianDistribution } from "./distribution.js";
import { Decoder, Encoder, type StageHook } from "./encoder-decoder.js";
import { tiledDecode, type VAETilingOptions } from "./tiling.js";

/** What {@link AutoencoderKL.encode} returns (diffusers' `AutoencoderKLOutput`). */
export interface AutoencoderKLEncodeOutput {
  latentDist: DiagonalGaussianDistribution;
}

/** Options of {@link AutoencoderKL.encode} / {@link AutoencoderKL.decode}. */
export interface VAEStageOptions {
  /**
   * Receives each stage's output, named as diffusers' modules: "encoder.conv_in", "encoder.down_blocks.<i>",
   * "encoder.mid_block", "encoder.conv_out", "quant_conv"; "post_quant_conv", "decoder.conv_in", "decoder.mid_block",
   * "decoder.up_blocks.<i>", "decoder.conv_out" (forward hooks).
   */
  onStage?: (name: string, value: Tensor) => void;
  /**
   * decode only: decode in overlapping tiles blended at the seams (memory of one tile; see tiling.ts). Default:
   * whatever {@link AutoencoderKL.enableTiling} set (off). Stage hooks are not called in tiled mode.
   */
  tiled?: boolean;
  /** Tile side in pixels for `tiled` (default: enableTiling's, else the config's sample_size). */
  tileSize?: number;
  /** Fraction of a tile overlapping each neighbour for `tiled` (default 0.25). */
  tileOverlap?: number;
}

/** diffusers' tile_sample_min_size: the config's sample_size (its first entry when a list). */
function defaultTileSize(sampleSize: number | readonly number[]): number {
  return typeof sampleSize === "number" ? sampleSize : sampleSize[0]!;
}

/** Old diffusers names of the mid-block attention projections (`_convert_deprecated_attention_blocks`). */
const DEPRECATED_ATTENTION: Record<string, string> = {
  query: "to_q",
  key: "to_k",
  value: "to_v",
  proj_attn: "to_out.0",
};

/** Maps old `...attentions.0.query.weight` keys to `...attentions.0.to_q.weight`; other keys unchanged. */
export function renameDeprecatedVAEKey(key: string): string {
  const m = /^(.*\.attentions\.\d+\.)(query|key|value|proj_attn)\.(weight|bias)$/.exec(key);
  return m ? `${m[1]}${DEPRECATED_ATTENTION[m[2]!]}.${m[3]}` : key;
}

/**
 * The KL-regularised autoencoder: `encode(image)` gives the latent distribution, `decode(latent)` the image.
 * `config.scaling_factor` is NOT applied inside: pipelines multiply latents by it after encoding and divide before
 * decoding. Images are [B, 3, H, W] in [-1, 1]. Run inference under `noGrad`.
 */
export class AutoencoderKL extends Module<
  [Tensor, { samplePosterior?: boolean; generator?: Generator }?],
  Tensor
> {
  readonly config: AutoencoderKLConfig;
  encoder: Encoder;
  decoder: Decoder;
  quant_conv: Conv2d | null;
  post_quant_conv: Conv2d | null;
  /** Tiled decoding settings when enabled (diffusers' `enable_tiling()`), else null. */
  tiling: VAETilingOptions | null = null;

  /** @param config a checked config, or a raw `config.json` object (checked here). */
  constructor(
    config: AutoencoderKLConfig | RawConfig = AutoencoderKLConfig.from({}),
    opts: LayerOptions = {},
  ) {
    super();
    const cfg = AutoencoderKLConfig.from(config);
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    const latent = cfg.latent_channels;
    this.config = cfg;
    this.encoder = new Encoder(cfg, layer);
    this.decoder = new Decoder(cfg, layer);
    this.quant_conv = cfg.use_quant_conv ? new Conv2d(2 * latent, 2 * latent, 1, layer) : null;
    this.post_quant_conv = cfg.use_post_quant_conv ? new Conv2d(latent, latent, 1, layer) : null;
  }

  /**
   * Loads a diffusers `vae` folder (`config.json` + `diffusion_pytorch_model[.fp16].safetensors`): a path
   * (Node.js), a base URL or a map of files (see ModelSource). Also accepts
   * the old attention names (query/key/value/proj_attn) and 1x1-conv attention kernels [C, C, 1, 1] (LDM layout).
   * The parameters keep the checkpoint's dtype unless `opts.dtype` says otherwise.
   */
  static fromPretrained(dir: ModelSource, opts: FromPretrainedOptions = {}): Promise<AutoencoderKL> {
    return loadPretrained(dir, opts, {
      who: "AutoencoderKL",
      config: (raw) => AutoencoderKLConfig.from(raw),
      build: (config, layer) => new AutoencoderKL(config, layer),
      renameKey: renameDeprecatedVAEKey,
      squeezeConv1x1: true,
    });
  }

  /** Downsampling factor between image and latent (2^(number of blocks - 1); 8 for Stable Diffusion). */
  get downscaleFactor(): number {
    return 2 ** (this.config.block_out_channels.length - 1);
  }

  /** image [B, in_channels, H, W] -> the latent distribution over [B, latent_channels, H / f, W / f]. */
  encode(x: Tensor, opts: VAEStageOptions = {}): AutoencoderKLEncodeOutput {
    const cfg = this.config;
    if (x.ndim !== 4 || x.shape[1] !== cfg.in_channels) {
      throw new ShapeError(
        `AutoencoderKL.encode: expected [B, ${cfg.in_channels}, H, W], got ${formatShape(x.shape)}`,
      );
    }
    const stage = opts.onStage;
    let moments = this.encoder.call(x, stage ? (name, t) => stage(`encoder.${name}`, t) : null);
    if (this.quant_conv) {
      moments = this.quant_conv.call(moments);
      stage?.("quant_conv", moments);
    }
    return { latentDist: new DiagonalGaussianDistribution(moments) };
  }

  /** Decode in overlapping tiles from now on (diffusers' `enable_tiling()`); see {@link VAEStageOptions.tiled}. */
  enableTiling(opts: VAETilingOptions = {}): this {
    this.tiling = { ...opts };
    return this;
  }

  disableTiling(): this {
    this.tiling = null;
    return this;
  }

  /** latent [B, latent_channels, h, w] (already divided by scaling_factor) -> image [B, out_channels, h f, w f]. */
  decode(z: Tensor, opts: VAEStageOptions = {}): Tensor {
    const tiling = opts.tiled === undefined ? this.tiling : opts.tiled ? (this.tiling ?? {}) : null;
    if (tiling && z.ndim === 4 && z.shape[1] === this.config.latent_channels) {
      return tiledDecode(z, this.downscaleFactor, (tile) => this.decode(tile, { tiled: false }), {
        tileSize: opts.tileSize ?? tiling.tileSize ?? defaultTileSize(this.config.sample_size),
        overlap: opts.tileOverlap ?? tiling.overlap ?? 0.25,
      });
    }
    const cfg = this.config;
    if (z.ndim !== 4 || z.shape[1] !== cfg.latent_channels) {
      throw new ShapeError(
        `AutoencoderKL.decode: expected [B, ${cfg.latent_channels}, h, w], got ${formatShape(z.shape)}`,
      );
    }
    const stage = opts.onStage;
    let h = z;
    if (this.post_quant_conv) {
      h = this.post_quant_conv.call(h);
      stage?.("post_quant_conv", h);
    }
    const hook: StageHook = stage ? (name, t) => stage(`decoder.${name}`, t) : null;
    return this.decoder.call(h, hook);
  }

  /** decode(encode(x)): the posterior's mode, or a sample with `samplePosterior` (diffusers' forward). */
  override forward(x: Tensor, opts: { samplePosterior?: boolean; generator?: Generator } = {}): Tensor {
    const dist = this.encode(x).latentDist;
    return this.decode(opts.samplePosterior ? dist.sample(opts.generator) : dist.mode());
  }
}
