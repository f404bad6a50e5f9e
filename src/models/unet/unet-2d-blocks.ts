// The attention stages of diffusers' unconditional / class-conditional UNet2DModel (unet_2d_blocks.py):
// AttnDownBlock2D and AttnUpBlock2D (UNetMidBlock2D is shared with the VAE: blocks/mid-block.ts). Each attention
// is a self-attention over the H*W positions with its own GroupNorm and a residual connection (diffusers' "deprecated attention block", keys to_q/to_k/to_v/to_out.0
// and group_norm). The plain DownBlock2D / UpBlock2D are shared with UNet2DConditionModel (unet-blocks.ts).
import { type LayerOptions, Module, ModuleList } from "../../nn/index.js";
import { cat } from "../../ops/index.js";
import { ArgumentError } from "../../tensor/errors.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Attention } from "../blocks/attention.js";
import { ModelConfigError } from "../blocks/errors.js";
import { ResnetBlock2D } from "../blocks/resnet.js";
import { Downsample2D, Upsample2D } from "../blocks/sampling.js";
import type { DownBlockOutput } from "./unet-blocks.js";

/** Options of the UNet2DModel attention blocks (diffusers' constructor arguments). */
export interface AttnBlockOptions extends LayerOptions {
  inChannels: number;
  outChannels: number;
  tembChannels: number;
  /** ResNet (+ attention) layers (default 1). */
  numLayers?: number;
  /** GroupNorm epsilon (default 1e-6) and groups (default 32) of the resnets and attentions. */
  resnetEps?: number;
  resnetGroups?: number;
  /** Channels per attention head (default: outChannels, one head). */
  attentionHeadDim?: number | null;
  /** Residual scale of resnets and attentions (default 1). */
  outputScaleFactor?: number;
}

function layerOpts(o: LayerOptions): LayerOptions {
  return { dtype: o.dtype, skipInit: o.skipInit, generator: o.generator };
}

function resnet(o: AttnBlockOptions, inChannels: number, outChannels: number): ResnetBlock2D {
  return new ResnetBlock2D({
    ...layerOpts(o),
    inChannels,
    outChannels,
    tembChannels: o.tembChannels,
    eps: o.resnetEps ?? 1e-6,
    groups: o.resnetGroups ?? 32,
    outputScaleFactor: o.outputScaleFactor ?? 1,
  });
}

/** The residual self-attention diffusers builds in these blocks (`_from_deprecated_attn_block=True`). */
function attention(o: AttnBlockOptions, channels: number, who: string): Attention {
  const headDim = o.attentionHeadDim ?? channels;
  if (!Number.isInteger(headDim) || headDim < 1 || channels % headDim !== 0) {
    throw new ModelConfigError(
      `${who}: ${channels} channels cannot be split into heads of attention_head_dim ${headDim}`,
    );
  }
  return new Attention({
    ...layerOpts(o),
    queryDim: channels,
    heads: channels / headDim,
    dimHead: headDim,
    bias: true,
    normNumGroups: o.resnetGroups ?? 32,
    eps: o.resnetEps ?? 1e-6,
    residualConnection: true,
    rescaleOutputFactor: o.outputScaleFactor ?? 1,
  });
}

/** diffusers' `AttnDownBlock2D`: (resnet, attention) per layer, then an optional stride-2 conv. */
export class AttnDownBlock2D extends Module<[Tensor, (Tensor | null)?], DownBlockOutput> {
  resnets: ModuleList<ResnetBlock2D>;
  attentions: ModuleList<Attention>;
  downsamplers: ModuleList<Downsample2D> | null;

  constructor(opts: AttnBlockOptions & { addDownsample?: boolean; downsamplePadding?: number }) {
    super();
    const n = opts.numLayers ?? 1;
    const resnets: ResnetBlock2D[] = [];
    const attentions: Attention[] = [];
    for (let i = 0; i < n; i++) {
      resnets.push(resnet(opts, i === 0 ? opts.inChannels : opts.outChannels, opts.outChannels));
      attentions.push(attention(opts, opts.outChannels, "AttnDownBlock2D"));
    }
    this.resnets = new ModuleList(resnets);
    this.attentions = new ModuleList(attentions);
    this.downsamplers =
      (opts.addDownsample ?? true)
        ? new ModuleList([
            new Downsample2D(opts.outChannels, { ...layerOpts(opts), padding: opts.downsamplePadding ?? 1 }),
          ])
        : null;
  }

  /** x [B, inChannels, H, W], temb [B, tembChannels] -> the output and the skip states of every layer. */
  override forward(x: Tensor, temb?: Tensor | null): DownBlockOutput {
    const skips: Tensor[] = [];
    let h = x;
    for (let i = 0; i < this.resnets.length; i++) {
      h = this.attentions.at(i).call(this.resnets.at(i).call(h, temb));
      skips.push(h);
    }
    if (this.downsamplers) {
      for (const d of this.downsamplers) h = d.call(h);
      skips.push(h);
    }
    return { hidden: h, skips };
  }
}

/**
 * diffusers' `AttnUpBlock2D`: per layer, concatenate the last unused skip state, then resnet and attention; then an
 * optional upsampler. The skip of the last layer has inChannels, the others outChannels.
 */
export class AttnUpBlock2D extends Module<[Tensor, readonly Tensor[], (Tensor | null)?], Tensor> {
  resnets: ModuleList<ResnetBlock2D>;
  attentions: ModuleList<Attention>;
  upsamplers: ModuleList<Upsample2D> | null;

  constructor(opts: AttnBlockOptions & { prevOutputChannels: number; addUpsample?: boolean }) {
    super();
    const n = opts.numLayers ?? 1;
    const resnets: ResnetBlock2D[] = [];
    const attentions: Attention[] = [];
    for (let i = 0; i < n; i++) {
      const skip = i === n - 1 ? opts.inChannels : opts.outChannels;
      const main = i === 0 ? opts.prevOutputChannels : opts.outChannels;
      resnets.push(resnet(opts, main + skip, opts.outChannels));
      attentions.push(attention(opts, opts.outChannels, "AttnUpBlock2D"));
    }
    this.resnets = new ModuleList(resnets);
    this.attentions = new ModuleList(attentions);
    this.upsamplers =
      (opts.addUpsample ?? true) ? new ModuleList([new Upsample2D(opts.outChannels, layerOpts(opts))]) : null;
  }

  /** x [B, prevOutputChannels, H, W]; `skips` in down-path order (one per resnet, the last used first). */
  override forward(x: Tensor, skips: readonly Tensor[], temb?: Tensor | null): Tensor {
    const n = this.resnets.length;
    if (skips.length !== n)
      throw new ArgumentError(`AttnUpBlock2D: expected ${n} skip states, got ${skips.length}`);
    let h = x;
    for (let i = 0; i < n; i++) {
      h = this.resnets.at(i).call(cat([h, skips[n - 1 - i]!], 1), temb);
      h = this.attentions.at(i).call(h);
    }
    if (this.upsamplers) for (const u of this.upsamplers) h = u.call(h);
    return h;
  }
}
