// The stages of diffusers' VAE Encoder / Decoder (unet_2d_blocks.py): DownEncoderBlock2D, UpDecoderBlock2D and
// UNetMidBlock2D (resnet, self-attention, resnet). No time embedding anywhere.
import { type LayerOptions, Module, ModuleList } from "../../nn/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Attention } from "../blocks/attention.js";
import { ResnetBlock2D } from "../blocks/resnet.js";
import { Downsample2D, Upsample2D } from "../blocks/sampling.js";

/** Options of the VAE blocks. */
export interface VAEBlockOptions extends LayerOptions {
  inChannels: number;
  outChannels: number;
  /** ResNet blocks (default 1). */
  numLayers?: number;
  /** GroupNorm epsilon (default 1e-6) and groups (default 32). */
  resnetEps?: number;
  resnetGroups?: number;
}

function resnets(opts: VAEBlockOptions): ModuleList<ResnetBlock2D> {
  const list: ResnetBlock2D[] = [];
  for (let i = 0; i < (opts.numLayers ?? 1); i++) {
    list.push(
      new ResnetBlock2D({
        dtype: opts.dtype,
        skipInit: opts.skipInit,
        generator: opts.generator,
        inChannels: i === 0 ? opts.inChannels : opts.outChannels,
        outChannels: opts.outChannels,
        tembChannels: null,
        eps: opts.resnetEps ?? 1e-6,
        groups: opts.resnetGroups ?? 32,
      }),
    );
  }
  return new ModuleList(list);
}

/** Encoder stage: resnets, then (except the last stage) a stride-2 conv with diffusers' padding (default 1). */
export class DownEncoderBlock2D extends Module<[Tensor], Tensor> {
  resnets: ModuleList<ResnetBlock2D>;
  downsamplers: ModuleList<Downsample2D> | null;

  constructor(opts: VAEBlockOptions & { addDownsample?: boolean; downsamplePadding?: number }) {
    super();
    this.resnets = resnets(opts);
    this.downsamplers =
      (opts.addDownsample ?? true)
        ? new ModuleList([
            new Downsample2D(opts.outChannels, {
              dtype: opts.dtype,
              skipInit: opts.skipInit,
              generator: opts.generator,
              padding: opts.downsamplePadding ?? 1,
            }),
          ])
        : null;
  }

  override forward(x: Tensor): Tensor {
    let h = x;
    for (const r of this.resnets) h = r.call(h);
    if (this.downsamplers) for (const d of this.downsamplers) h = d.call(h);
    return h;
  }
}

/** Decoder stage: resnets, then (except the last stage) nearest x2 upsampling and a conv. */
export class UpDecoderBlock2D extends Module<[Tensor], Tensor> {
  resnets: ModuleList<ResnetBlock2D>;
  upsamplers: ModuleList<Upsample2D> | null;

  constructor(opts: VAEBlockOptions & { addUpsample?: boolean }) {
    super();
    this.resnets = resnets(opts);
    this.upsamplers =
      (opts.addUpsample ?? true)
        ? new ModuleList([
            new Upsample2D(opts.outChannels, {
              dtype: opts.dtype,
              skipInit: opts.skipInit,
              generator: opts.generator,
            }),
          ])
        : null;
  }

  override forward(x: Tensor): Tensor {
    let h = x;
    for (const r of this.resnets) h = r.call(h);
    if (this.upsamplers) for (const u of this.upsamplers) h = u.call(h);
    return h;
  }
}

/**
 * diffusers' `UNetMidBlock2D` as the VAE uses it: resnet, then per layer (attention, resnet). The attention is
 * single-head over the H*W positions, with its own GroupNorm and a residual connection.
 */
export class UNetMidBlock2D extends Module<[Tensor], Tensor> {
  /** Empty without attention (`mid_block_add_attention: false`). */
  attentions: ModuleList<Attention>;
  resnets: ModuleList<ResnetBlock2D>;

  constructor(
    opts: Omit<VAEBlockOptions, "outChannels"> & { addAttention?: boolean; attentionHeadDim?: number },
  ) {
    super();
    const c = opts.inChannels;
    const n = opts.numLayers ?? 1;
    const eps = opts.resnetEps ?? 1e-6;
    const groups = opts.resnetGroups ?? 32;
    const headDim = opts.attentionHeadDim ?? c;
    const attentions: Attention[] = [];
    if (opts.addAttention ?? true) {
      for (let i = 0; i < n; i++) {
        attentions.push(
          new Attention({
            dtype: opts.dtype,
            skipInit: opts.skipInit,
            generator: opts.generator,
            queryDim: c,
            heads: c / headDim,
            dimHead: headDim,
            bias: true,
            normNumGroups: groups,
            eps,
            residualConnection: true,
          }),
        );
      }
    }
    this.attentions = new ModuleList(attentions);
    this.resnets = resnets({ ...opts, outChannels: c, numLayers: n + 1 });
  }

  override forward(x: Tensor): Tensor {
    let h = this.resnets.at(0).call(x);
    const n = this.resnets.length - 1;
    for (let i = 0; i < n; i++) {
      if (this.attentions.length > 0) h = this.attentions.at(i).call(h);
      h = this.resnets.at(i + 1).call(h);
    }
    return h;
  }
}
