// The stages of diffusers' UNet2DConditionModel (unet_2d_blocks.py): CrossAttnDownBlock2D / DownBlock2D,
// UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D / UpBlock2D. The CrossAttn* blocks interleave a Transformer2DModel
// after each ResnetBlock2D; the plain ones have resnets only.
import { type LayerOptions, Module, ModuleList } from "../../nn/index.js";
import { cat } from "../../ops/index.js";
import { ArgumentError } from "../../tensor/errors.js";
import type { Tensor } from "../../tensor/tensor.js";
import { ModelConfigError } from "../blocks/errors.js";
import { ResnetBlock2D } from "../blocks/resnet.js";
import { Downsample2D, Upsample2D } from "../blocks/sampling.js";
import { Transformer2DModel } from "../blocks/transformer.js";

/** Options shared by the UNet blocks (diffusers' block constructor arguments). */
export interface UNetBlockOptions extends LayerOptions {
  inChannels: number;
  outChannels: number;
  /** Size of the time embedding. */
  tembChannels: number;
  /** ResNet blocks (default 1). */
  numLayers?: number;
  /** GroupNorm epsilon (default 1e-6) and groups (default 32) of the resnets and transformers. */
  resnetEps?: number;
  resnetGroups?: number;
  /** Residual scale of the resnets (default 1). */
  outputScaleFactor?: number;
}

/** Options of the blocks with cross-attention. */
export interface CrossAttnOptions {
  /** Transformer blocks in each Transformer2DModel: one number, or one per layer (default 1). */
  transformerLayersPerBlock?: number | readonly number[];
  /** Heads of the transformers; each has outChannels / heads channels (default 1). */
  numAttentionHeads?: number;
  /** Channels of the encoder hidden states (default 1280). */
  crossAttentionDim?: number;
  useLinearProjection?: boolean;
  onlyCrossAttention?: boolean;
  upcastAttention?: boolean;
}

/** What a down block returns: its output and the skip states it hands to the up path. */
export interface DownBlockOutput {
  hidden: Tensor;
  /** The state after each resnet(+attention) and after the downsampler. */
  skips: Tensor[];
}

function layersList(v: number | readonly number[] | undefined, numLayers: number, who: string): number[] {
  if (v === undefined || typeof v === "number") return new Array<number>(numLayers).fill(v ?? 1);
  if (v.length !== numLayers)
    throw new ModelConfigError(`${who}: ${v.length} transformer layer counts for ${numLayers} layers`);
  return [...v];
}

function transformers(
  opts: UNetBlockOptions & CrossAttnOptions,
  channels: number,
  numLayers: number,
  who: string,
): ModuleList<Transformer2DModel> {
  const heads = opts.numAttentionHeads ?? 1;
  if (channels % heads !== 0)
    throw new ModelConfigError(`${who}: ${channels} channels cannot be split into ${heads} attention heads`);
  const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
  return new ModuleList(
    layersList(opts.transformerLayersPerBlock, numLayers, who).map(
      (depth) =>
        new Transformer2DModel(heads, channels / heads, channels, {
          ...layer,
          numLayers: depth,
          crossAttentionDim: opts.crossAttentionDim ?? 1280,
          normNumGroups: opts.resnetGroups ?? 32,
          useLinearProjection: opts.useLinearProjection,
          onlyCrossAttention: opts.onlyCrossAttention,
          upcastAttention: opts.upcastAttention,
        }),
    ),
  );
}

function resnet(opts: UNetBlockOptions, inChannels: number, outChannels: number): ResnetBlock2D {
  return new ResnetBlock2D({
    dtype: opts.dtype,
    skipInit: opts.skipInit,
    generator: opts.generator,
    inChannels,
    outChannels,
    tembChannels: opts.tembChannels,
    eps: opts.resnetEps ?? 1e-6,
    groups: opts.resnetGroups ?? 32,
    outputScaleFactor: opts.outputScaleFactor ?? 1,
  });
}

/** Options of the down blocks. */
export interface DownBlockOptions extends UNetBlockOptions {
  /** End with a Downsample2D (default true). */
  addDownsample?: boolean;
  /** Padding of its conv (default 1). */
  downsamplePadding?: number;
}

/** resnets (+ attentions), then an optional stride-2 conv; every intermediate state is a skip for the up path. */
class DownBlockBase extends Module<[Tensor, (Tensor | null)?, (Tensor | null)?], DownBlockOutput> {
  resnets: ModuleList<ResnetBlock2D>;
  attentions: ModuleList<Transformer2DModel> | null;
  downsamplers: ModuleList<Downsample2D> | null;

  constructor(opts: DownBlockOptions, attention: (CrossAttnOptions & { who: string }) | null) {
    super();
    const n = opts.numLayers ?? 1;
    const resnets: ResnetBlock2D[] = [];
    for (let i = 0; i < n; i++)
      resnets.push(resnet(opts, i === 0 ? opts.inChannels : opts.outChannels, opts.outChannels));
    this.resnets = new ModuleList(resnets);
    this.attentions = attention
      ? transformers({ ...opts, ...attention }, opts.outChannels, n, attention.who)
      : null;
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

  /** x [B, inChannels, H, W], temb [B, tembChannels], encoder states [B, L, crossAttentionDim] (CrossAttn only). */
  override forward(x: Tensor, temb?: Tensor | null, encoderHiddenStates?: Tensor | null): DownBlockOutput {
    const skips: Tensor[] = [];
    let h = x;
    for (let i = 0; i < this.resnets.length; i++) {
      h = this.resnets.at(i).call(h, temb);
      if (this.attentions) h = this.attentions.at(i).call(h, encoderHiddenStates);
      skips.push(h);
    }
    if (this.downsamplers) {
      for (const d of this.downsamplers) h = d.call(h);
      skips.push(h);
    }
    return { hidden: h, skips };
  }
}

/** diffusers' `CrossAttnDownBlock2D`. */
export class CrossAttnDownBlock2D extends DownBlockBase {
  constructor(opts: DownBlockOptions & CrossAttnOptions) {
    super(opts, { ...opts, who: "CrossAttnDownBlock2D" });
  }
}

/** diffusers' `DownBlock2D` (no attention). */
export class DownBlock2D extends DownBlockBase {
  constructor(opts: DownBlockOptions) {
    super(opts, null);
  }
}

/** Options of the up blocks. */
export interface UpBlockOptions extends UNetBlockOptions {
  /** Channels of the previous up block's output (the first resnet's main input). */
  prevOutputChannels: number;
  /** End with an Upsample2D (default true). */
  addUpsample?: boolean;
}

/**
 * Each resnet takes the concatenation of the running state and the last unused skip state of the down path;
 * the skip of the last layer has inChannels, the others outChannels.
 */
class UpBlockBase extends Module<
  [Tensor, readonly Tensor[], (Tensor | null)?, (Tensor | null)?, (readonly [number, number] | null)?],
  Tensor
> {
  resnets: ModuleList<ResnetBlock2D>;
  attentions: ModuleList<Transformer2DModel> | null;
  upsamplers: ModuleList<Upsample2D> | null;

  constructor(opts: UpBlockOptions, attention: (CrossAttnOptions & { who: string }) | null) {
    super();
    const n = opts.numLayers ?? 1;
    const resnets: ResnetBlock2D[] = [];
    for (let i = 0; i < n; i++) {
      const skip = i === n - 1 ? opts.inChannels : opts.outChannels;
      const main = i === 0 ? opts.prevOutputChannels : opts.outChannels;
      resnets.push(resnet(opts, main + skip, opts.outChannels));
    }
    this.resnets = new ModuleList(resnets);
    this.attentions = attention
      ? transformers({ ...opts, ...attention }, opts.outChannels, n, attention.who)
      : null;
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

  /**
   * x [B, prevOutputChannels, H, W]; `skips` are this block's skip states in down-path order (one per resnet, the
   * last one used first); `upsampleSize` forces the upsampler's output size (odd-sized inputs).
   */
  override forward(
    x: Tensor,
    skips: readonly Tensor[],
    temb?: Tensor | null,
    encoderHiddenStates?: Tensor | null,
    upsampleSize?: readonly [number, number] | null,
  ): Tensor {
    const n = this.resnets.length;
    if (skips.length !== n)
      throw new ArgumentError(`${this.constructor.name}: expected ${n} skip states, got ${skips.length}`);
    let h = x;
    for (let i = 0; i < n; i++) {
      h = this.resnets.at(i).call(cat([h, skips[n - 1 - i]!], 1), temb);
      if (this.attentions) h = this.attentions.at(i).call(h, encoderHiddenStates);
    }
    if (this.upsamplers) for (const u of this.upsamplers) h = u.call(h, upsampleSize);
    return h;
  }
}

/** diffusers' `CrossAttnUpBlock2D`. */
export class CrossAttnUpBlock2D extends UpBlockBase {
  constructor(opts: UpBlockOptions & CrossAttnOptions) {
    super(opts, { ...opts, who: "CrossAttnUpBlock2D" });
  }
}

/** diffusers' `UpBlock2D` (no attention). */
export class UpBlock2D extends UpBlockBase {
  constructor(opts: UpBlockOptions) {
    super(opts, null);
  }
}

/** diffusers' `UNetMidBlock2DCrossAttn`: resnet, then (transformer, resnet) per layer, at constant channels. */
export class UNetMidBlock2DCrossAttn extends Module<[Tensor, (Tensor | null)?, (Tensor | null)?], Tensor> {
  resnets: ModuleList<ResnetBlock2D>;
  attentions: ModuleList<Transformer2DModel>;

  constructor(opts: Omit<UNetBlockOptions, "outChannels"> & CrossAttnOptions) {
    super();
    const n = opts.numLayers ?? 1;
    const full = { ...opts, outChannels: opts.inChannels };
    const resnets = [resnet(full, opts.inChannels, opts.inChannels)];
    for (let i = 0; i < n; i++) resnets.push(resnet(full, opts.inChannels, opts.inChannels));
    this.resnets = new ModuleList(resnets);
    this.attentions = transformers(full, opts.inChannels, n, "UNetMidBlock2DCrossAttn");
  }

  override forward(x: Tensor, temb?: Tensor | null, encoderHiddenStates?: Tensor | null): Tensor {
    let h = this.resnets.at(0).call(x, temb);
    for (let i = 0; i < this.attentions.length; i++) {
      h = this.resnets.at(i + 1).call(this.attentions.at(i).call(h, encoderHiddenStates), temb);
    }
    return h;
  }
}
