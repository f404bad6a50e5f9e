// diffusers' `ResnetBlock2D`: the residual block of every Stable Diffusion UNet and VAE stage.
import { Conv2d, GroupNorm, type LayerOptions, Linear, Module } from "../../nn/index.js";
import { div, reshape, silu } from "../../ops/index.js";
import { ArgumentError, ShapeError } from "../../tensor/errors.js";
import { formatShape } from "../../tensor/shape.js";
import type { Tensor } from "../../tensor/tensor.js";
import { groupNormSilu } from "./activation.js";
import { ModelConfigError } from "./errors.js";
import { addResidual, withResidual } from "./residual.js";

/** Options of {@link ResnetBlock2D} (diffusers' constructor arguments). */
export interface ResnetBlock2DOptions extends LayerOptions {
  inChannels: number;
  /** Default inChannels. */
  outChannels?: number;
  /** Size of the time embedding added after conv1; null for none (the VAE). Default 512, as diffusers. */
  tembChannels?: number | null;
  /** GroupNorm groups of norm1 (default 32) and of norm2 (`groupsOut`, default `groups`). */
  groups?: number;
  groupsOut?: number;
  /** GroupNorm epsilon (default 1e-6). */
  eps?: number;
  /** The output is (shortcut + residual) / outputScaleFactor (default 1). */
  outputScaleFactor?: number;
  /** Use a 1x1 conv on the shortcut (default: when in and out channels differ). */
  useInShortcut?: boolean;
  /** Bias of that conv (default true). */
  convShortcutBias?: boolean;
}

/** Throws a clear config error unless `channels` splits into `groups` GroupNorm groups. */
export function checkGroups(channels: number, groups: number, where: string): void {
  if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) {
    throw new ModelConfigError(
      `${where}: ${channels} channels cannot be split into ${groups} GroupNorm groups (norm_num_groups must divide every channel count)`,
    );
  }
}

/**
 * Pre-activation residual block (He et al. 2016, as in DDPM):
 * h = conv1(silu(norm1(x))) + time_emb_proj(silu(temb)); h = conv2(silu(norm2(h)));
 * out = (shortcut(x) + h) / outputScaleFactor, shortcut a 1x1 conv when channels change.
 * (Dropout is 0 in every Stable Diffusion config and is left out.)
 */
export class ResnetBlock2D extends Module<[Tensor, (Tensor | null)?], Tensor> {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly outputScaleFactor: number;
  norm1: GroupNorm;
  conv1: Conv2d;
  time_emb_proj: Linear | null;
  norm2: GroupNorm;
  conv2: Conv2d;
  conv_shortcut: Conv2d | null;

  constructor(opts: ResnetBlock2DOptions) {
    super();
    const inC = opts.inChannels;
    const outC = opts.outChannels ?? inC;
    const groups = opts.groups ?? 32;
    const groupsOut = opts.groupsOut ?? groups;
    const eps = opts.eps ?? 1e-6;
    checkGroups(inC, groups, "ResnetBlock2D norm1");
    checkGroups(outC, groupsOut, "ResnetBlock2D norm2");
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    this.inChannels = inC;
    this.outChannels = outC;
    this.outputScaleFactor = opts.outputScaleFactor ?? 1;
    this.norm1 = new GroupNorm(groups, inC, { eps, dtype: opts.dtype });
    this.conv1 = new Conv2d(inC, outC, 3, { ...layer, padding: 1 });
    const temb = opts.tembChannels === undefined ? 512 : opts.tembChannels;
    this.time_emb_proj = temb !== null ? new Linear(temb, outC, layer) : null;
    this.norm2 = new GroupNorm(groupsOut, outC, { eps, dtype: opts.dtype });
    this.conv2 = new Conv2d(outC, outC, 3, { ...layer, padding: 1 });
    const shortcut = opts.useInShortcut ?? inC !== outC;
    this.conv_shortcut = shortcut
      ? new Conv2d(inC, outC, 1, { ...layer, bias: opts.convShortcutBias ?? true })
      : null;
  }

  /** x [B, inChannels, H, W], temb [B, tembChannels] (ignored without time_emb_proj) -> [B, outChannels, H, W]. */
  override forward(x: Tensor, temb?: Tensor | null): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels) {
      throw new ShapeError(
        `ResnetBlock2D: expected input [B, ${this.inChannels}, H, W], got ${formatShape(x.shape)}`,
      );
    }
    let h = this.conv1.call(groupNormSilu(this.norm1, x));
    if (this.time_emb_proj && temb) {
      if (temb.ndim !== 2 || temb.shape[0] !== x.shape[0]) {
        throw new ArgumentError(
          `ResnetBlock2D: temb must be [${x.shape[0]}, ${this.time_emb_proj.inFeatures}], got ${formatShape(temb.shape)}`,
        );
      }
      const t = this.time_emb_proj.call(silu(temb));
      h = addResidual(h, reshape(t, [t.shape[0]!, this.outChannels, 1, 1]));
    }
    const shortcut = this.conv_shortcut ? this.conv_shortcut.call(x) : x;
    const out = withResidual(this.conv2, groupNormSilu(this.norm2, h), shortcut);
    return this.outputScaleFactor === 1 ? out : div(out, this.outputScaleFactor);
  }
}
