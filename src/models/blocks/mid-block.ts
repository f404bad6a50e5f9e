// diffusers' `UNetMidBlock2D` (unet_2d_blocks.py): resnet, then (self-attention, resnet) per layer. The VAE's
// encoder and decoder use it without a time embedding; UNet2DModel with one.
import { type LayerOptions, Module, ModuleList } from "../../nn/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Attention } from "./attention.js";
import { ModelConfigError } from "./errors.js";
import { ResnetBlock2D } from "./resnet.js";

/** Options of {@link UNetMidBlock2D} (diffusers' constructor arguments). */
export interface MidBlockOptions extends LayerOptions {
  inChannels: number;
  /** Time-embedding channels of the resnets; null or absent: no time embedding (the VAE). */
  tembChannels?: number | null;
  /** Attention layers; there is one resnet more (default 1). */
  numLayers?: number;
  /** GroupNorm epsilon (default 1e-6) and groups (default 32) of the resnets and attentions. */
  resnetEps?: number;
  resnetGroups?: number;
  /** Channels per attention head (default: all channels, one head). */
  attentionHeadDim?: number | null;
  /** Without self-attention (`add_attention` / `mid_block_add_attention: false`): resnets only. */
  addAttention?: boolean;
  /** Residual scale of resnets and attentions (default 1). */
  outputScaleFactor?: number;
}

/** diffusers' `UNetMidBlock2D`: resnet, then (attention, resnet) per layer, at constant channels. */
export class UNetMidBlock2D extends Module<[Tensor, (Tensor | null)?], Tensor> {
  /** Empty without attention. */
  attentions: ModuleList<Attention>;
  resnets: ModuleList<ResnetBlock2D>;

  constructor(opts: MidBlockOptions) {
    super();
    const c = opts.inChannels;
    const n = opts.numLayers ?? 1;
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    const eps = opts.resnetEps ?? 1e-6;
    const groups = opts.resnetGroups ?? 32;
    const scale = opts.outputScaleFactor ?? 1;
    const headDim = opts.attentionHeadDim ?? c;
    if (!Number.isInteger(headDim) || headDim < 1 || c % headDim !== 0) {
      throw new ModelConfigError(
        `UNetMidBlock2D: ${c} channels cannot be split into heads of attention_head_dim ${headDim}`,
      );
    }
    const resnet = () =>
      new ResnetBlock2D({
        ...layer,
        inChannels: c,
        outChannels: c,
        tembChannels: opts.tembChannels ?? null,
        eps,
        groups,
        outputScaleFactor: scale,
      });
    const resnets = [resnet()];
    const attentions: Attention[] = [];
    for (let i = 0; i < n; i++) {
      if (opts.addAttention ?? true) {
        attentions.push(
          new Attention({
            ...layer,
            queryDim: c,
            heads: c / headDim,
            dimHead: headDim,
            bias: true,
            normNumGroups: groups,
            eps,
            residualConnection: true,
            rescaleOutputFactor: scale,
          }),
        );
      }
      resnets.push(resnet());
    }
    this.attentions = new ModuleList(attentions);
    this.resnets = new ModuleList(resnets);
  }

  override forward(x: Tensor, temb?: Tensor | null): Tensor {
    let h = this.resnets.at(0).call(x, temb);
    for (let i = 1; i < this.resnets.length; i++) {
      if (this.attentions.length > 0) h = this.attentions.at(i - 1).call(h);
      h = this.resnets.at(i).call(h, temb);
    }
    return h;
  }
}
