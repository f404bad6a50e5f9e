// The stages of diffusers' VAE Encoder / Decoder (unet_2d_blocks.py): DownEncoderBlock2D, UpDecoderBlock2D and
// their UNetMidBlock2D (blocks/mid-block.ts, without a time embedding). No time embedding anywhere.
import { type LayerOptions, Module, ModuleList } from "../../nn/index.js";
import type { Tensor } from "../../tensor/tensor.js";
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

export { UNetMidBlock2D } from "../blocks/mid-block.js";
