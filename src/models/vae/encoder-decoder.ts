// diffusers' VAE `Encoder` (image -> mean and log-variance of the latent) and `Decoder` (latent -> image).
import { Conv2d, GroupNorm, type LayerOptions, Module, ModuleList } from "../../nn/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { groupNormSilu } from "../blocks/activation.js";
import type { AutoencoderKLConfig } from "./config.js";
import { DownEncoderBlock2D, UNetMidBlock2D, UpDecoderBlock2D } from "./vae-blocks.js";

/** Optional observer of each stage's output ("conv_in", "down_blocks.0", "mid_block", ...). */
export type StageHook = ((name: string, value: Tensor) => void) | null;

/**
 * conv_in -> down blocks (each halving H and W but the last) -> mid block (resnet, attention, resnet) ->
 * silu(conv_norm_out) -> conv_out with 2 * latent_channels outputs (mean and log-variance).
 */
export class Encoder extends Module<[Tensor, StageHook?], Tensor> {
  conv_in: Conv2d;
  down_blocks: ModuleList<DownEncoderBlock2D>;
  mid_block: UNetMidBlock2D;
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;

  constructor(cfg: AutoencoderKLConfig, opts: LayerOptions = {}) {
    super();
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    const ch = cfg.block_out_channels;
    const n = ch.length;
    const groups = cfg.norm_num_groups;
    this.conv_in = new Conv2d(cfg.in_channels, ch[0]!, 3, { ...layer, padding: 1 });
    this.down_blocks = new ModuleList(
      ch.map(
        (out, i) =>
          new DownEncoderBlock2D({
            ...layer,
            inChannels: i === 0 ? ch[0]! : ch[i - 1]!,
            outChannels: out,
            numLayers: cfg.layers_per_block,
            resnetGroups: groups,
            addDownsample: i < n - 1,
            // the VAE pads its stride-2 convs on the bottom/right only
            downsamplePadding: 0,
          }),
      ),
    );
    this.mid_block = new UNetMidBlock2D({
      ...layer,
      inChannels: ch[n - 1]!,
      resnetGroups: groups,
      addAttention: cfg.mid_block_add_attention,
    });
    this.conv_norm_out = new GroupNorm(groups, ch[n - 1]!, { eps: 1e-6, dtype: opts.dtype });
    this.conv_out = new Conv2d(ch[n - 1]!, 2 * cfg.latent_channels, 3, { ...layer, padding: 1 });
  }

  /** image [B, in_channels, H, W] -> moments [B, 2 * latent_channels, H / f, W / f]. */
  override forward(x: Tensor, hook: StageHook = null): Tensor {
    let h = this.conv_in.call(x);
    hook?.("conv_in", h);
    for (let i = 0; i < this.down_blocks.length; i++) {
      h = this.down_blocks.at(i).call(h);
      hook?.(`down_blocks.${i}`, h);
    }
    h = this.mid_block.call(h);
    hook?.("mid_block", h);
    h = this.conv_out.call(groupNormSilu(this.conv_norm_out, h));
    hook?.("conv_out", h);
    return h;
  }
}

/**
 * conv_in -> mid block -> up blocks (each doubling H and W but the last) -> silu(conv_norm_out) -> conv_out.
 */
export class Decoder extends Module<[Tensor, StageHook?], Tensor> {
  conv_in: Conv2d;
  up_blocks: ModuleList<UpDecoderBlock2D>;
  mid_block: UNetMidBlock2D;
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;

  constructor(cfg: AutoencoderKLConfig, opts: LayerOptions = {}) {
    super();
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    const rev = [...cfg.block_out_channels].reverse();
    const n = rev.length;
    const groups = cfg.norm_num_groups;
    this.conv_in = new Conv2d(cfg.latent_channels, rev[0]!, 3, { ...layer, padding: 1 });
    this.up_blocks = new ModuleList(
      rev.map(
        (out, i) =>
          new UpDecoderBlock2D({
            ...layer,
            inChannels: i === 0 ? rev[0]! : rev[i - 1]!,
            outChannels: out,
            numLayers: cfg.layers_per_block + 1,
            resnetGroups: groups,
            addUpsample: i < n - 1,
          }),
      ),
    );
    this.mid_block = new UNetMidBlock2D({
      ...layer,
      inChannels: rev[0]!,
      resnetGroups: groups,
      addAttention: cfg.mid_block_add_attention,
    });
    this.conv_norm_out = new GroupNorm(groups, rev[n - 1]!, { eps: 1e-6, dtype: opts.dtype });
    this.conv_out = new Conv2d(rev[n - 1]!, cfg.out_channels, 3, { ...layer, padding: 1 });
  }

  /** latent [B, latent_channels, h, w] -> image [B, out_channels, h * f, w * f]. */
  override forward(z: Tensor, hook: StageHook = null): Tensor {
    let h = this.conv_in.call(z);
    hook?.("conv_in", h);
    h = this.mid_block.call(h);
    hook?.("mid_block", h);
    for (let i = 0; i < this.up_blocks.length; i++) {
      h = this.up_blocks.at(i).call(h);
      hook?.(`up_blocks.${i}`, h);
    }
    h = this.conv_out.call(groupNormSilu(this.conv_norm_out, h));
    hook?.("conv_out", h);
    return h;
  }
}
