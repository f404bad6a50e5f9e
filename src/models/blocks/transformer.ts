// diffusers' `BasicTransformerBlock` and `Transformer2DModel` (continuous input): the spatial transformer of the
// Stable Diffusion UNet's cross-attention blocks (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent
// Diffusion Models", section 3.3).
import {
  Conv2d,
  GroupNorm,
  LayerNorm,
  type LayerOptions,
  Linear,
  Module,
  ModuleList,
} from "../../nn/index.js";
import { linear, linearToChannels, permute, reshape } from "../../ops/index.js";
import { ShapeError } from "../../tensor/errors.js";
import { formatShape } from "../../tensor/shape.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Attention } from "./attention.js";
import { ModelConfigError } from "./errors.js";
import { FeedForward } from "./feed-forward.js";
import { addResidual, withResidual } from "./residual.js";
import { checkGroups } from "./resnet.js";

/** Options of {@link BasicTransformerBlock}. */
export interface BasicTransformerBlockOptions extends LayerOptions {
  /** Channels of the encoder states for attn2 (default dim). */
  crossAttentionDim?: number | null;
  /** attn1 attends to the encoder states too (diffusers' `only_cross_attention`). Default false. */
  onlyCrossAttention?: boolean;
  upcastAttention?: boolean;
  /** Bias of the q/k/v projections (default false). */
  attentionBias?: boolean;
  /** LayerNorm epsilon (default 1e-5). */
  normEps?: number;
}

/**
 * Pre-norm transformer block: x += attn1(norm1(x)) (self-attention); x += attn2(norm2(x), encoder states)
 * (cross-attention); x += ff(norm3(x)) (GEGLU MLP). Tokens [B, L, dim].
 */
export class BasicTransformerBlock extends Module<[Tensor, (Tensor | null)?], Tensor> {
  readonly onlyCrossAttention: boolean;
  norm1: LayerNorm;
  attn1: Attention;
  norm2: LayerNorm;
  attn2: Attention;
  norm3: LayerNorm;
  ff: FeedForward;

  constructor(dim: number, heads: number, headDim: number, opts: BasicTransformerBlockOptions = {}) {
    super();
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    const eps = opts.normEps ?? 1e-5;
    const common = {
      ...layer,
      heads,
      dimHead: headDim,
      bias: opts.attentionBias ?? false,
      upcastAttention: opts.upcastAttention,
    };
    this.onlyCrossAttention = opts.onlyCrossAttention ?? false;
    this.norm1 = new LayerNorm(dim, { eps, dtype: opts.dtype });
    this.attn1 = new Attention({
      ...common,
      queryDim: dim,
      crossAttentionDim: this.onlyCrossAttention ? opts.crossAttentionDim : null,
    });
    this.norm2 = new LayerNorm(dim, { eps, dtype: opts.dtype });
    this.attn2 = new Attention({ ...common, queryDim: dim, crossAttentionDim: opts.crossAttentionDim });
    this.norm3 = new LayerNorm(dim, { eps, dtype: opts.dtype });
    this.ff = new FeedForward(dim, layer);
  }

  /** x [B, L, dim], encoderHiddenStates [B, Lc, crossAttentionDim] (default: self-attention in attn2 too). */
  override forward(x: Tensor, encoderHiddenStates?: Tensor | null): Tensor {
    const ehs = encoderHiddenStates ?? null;
    // each sublayer's skip connection is handed to it, to be added inside its output projection
    let h = this.attn1.call(this.norm1.call(x), this.onlyCrossAttention ? ehs : null, x);
    h = this.attn2.call(this.norm2.call(h), ehs, h);
    return this.ff.call(this.norm3.call(h), h);
  }
}

/** Options of {@link Transformer2DModel}. */
export interface Transformer2DModelOptions extends LayerOptions {
  /** Number of transformer blocks (default 1). */
  numLayers?: number;
  crossAttentionDim?: number | null;
  /** GroupNorm groups of `norm` (default 32; its epsilon is 1e-6 as in diffusers). */
  normNumGroups?: number;
  /** proj_in / proj_out as Linear on tokens (SD 2.x, SDXL) instead of 1x1 convolutions (SD 1.x). */
  useLinearProjection?: boolean;
  onlyCrossAttention?: boolean;
  upcastAttention?: boolean;
}

/**
 * The spatial transformer: out = x + proj_out(blocks(proj_in(norm(x)))) with the image [B, C, H, W] flattened to
 * H*W tokens of heads * headDim channels in between.
 */
export class Transformer2DModel extends Module<[Tensor, (Tensor | null)?], Tensor> {
  readonly inChannels: number;
  readonly innerDim: number;
  readonly useLinearProjection: boolean;
  norm: GroupNorm;
  proj_in: Linear | Conv2d;
  transformer_blocks: ModuleList<BasicTransformerBlock>;
  proj_out: Linear | Conv2d;

  constructor(heads: number, headDim: number, inChannels: number, opts: Transformer2DModelOptions = {}) {
    super();
    if (!Number.isInteger(headDim) || headDim < 1) {
      throw new ModelConfigError(
        `Transformer2DModel: ${inChannels} channels cannot be split into ${heads} attention heads`,
      );
    }
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    const groups = opts.normNumGroups ?? 32;
    checkGroups(inChannels, groups, "Transformer2DModel norm");
    const inner = heads * headDim;
    this.inChannels = inChannels;
    this.innerDim = inner;
    this.useLinearProjection = opts.useLinearProjection ?? false;
    this.norm = new GroupNorm(groups, inChannels, { eps: 1e-6, dtype: opts.dtype });
    this.proj_in = this.useLinearProjection
      ? new Linear(inChannels, inner, layer)
      : new Conv2d(inChannels, inner, 1, layer);
    const blocks: BasicTransformerBlock[] = [];
    for (let i = 0; i < (opts.numLayers ?? 1); i++) {
      blocks.push(
        new BasicTransformerBlock(inner, heads, headDim, {
          ...layer,
          crossAttentionDim: opts.crossAttentionDim,
          onlyCrossAttention: opts.onlyCrossAttention,
          upcastAttention: opts.upcastAttention,
        }),
      );
    }
    this.transformer_blocks = new ModuleList(blocks);
    this.proj_out = this.useLinearProjection
      ? new Linear(inner, inChannels, layer)
      : new Conv2d(inner, inChannels, 1, layer);
  }

  /** x [B, C, H, W], encoderHiddenStates [B, Lc, crossAttentionDim] -> [B, C, H, W]. */
  override forward(x: Tensor, encoderHiddenStates?: Tensor | null): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels) {
      throw new ShapeError(
        `Transformer2DModel: expected input [B, ${this.inChannels}, H, W], got ${formatShape(x.shape)}`,
      );
    }
    const [b, _c, hgt, wid] = x.shape as [number, number, number, number];
    const n = this.norm;
    const normed = n.call(x);
    const toTokens = (img: Tensor) => {
      const ch = img.shape[1]!;
      return reshape(permute(img, [0, 2, 3, 1]), [b, hgt * wid, ch]);
    };
    const toImage = (tokens: Tensor) => {
      const ch = tokens.shape[2]!;
      return permute(reshape(tokens, [b, hgt, wid, ch]), [0, 3, 1, 2]);
    };
    // Projections go through the layers' own forward (so LoRA adapters on them apply): a Linear on tokens, or a
    // 1x1 Conv2d on the image layout, as diffusers orders them. A plain 1x1 Conv2d is the same product read
    // across the layouts (image in, tokens out; tokens in, image out) without the transposing copies (out: float32
    // weights only; the convolution reads a float16 weight in place, the token-layout product would widen it).
    let h =
      this.proj_in instanceof Linear
        ? this.proj_in.call(toTokens(normed))
        : isPlainPointwise(this.proj_in)
          ? linear(
              toTokens(normed),
              reshape(this.proj_in.weight, this.proj_in.weight.shape.slice(0, 2)),
              this.proj_in.bias,
            )
          : toTokens(this.proj_in.call(normed));
    for (const block of this.transformer_blocks) h = block.call(h, encoderHiddenStates);
    // the skip connection is added inside the output projection where it can be
    if (this.proj_out instanceof Linear) return addResidual(toImage(this.proj_out.call(h)), x);
    if (isPlainPointwise(this.proj_out) && this.proj_out.weight.dtype === "float32") {
      const channels = this.proj_out.outChannels;
      const residual = reshape(x, [b, channels, hgt * wid]);
      const out = linearToChannels(h, this.proj_out.weight, this.proj_out.bias, residual);
      return reshape(out, [b, channels, hgt, wid]);
    }
    return withResidual(this.proj_out, toImage(h), x);
  }
}

/** A 1x1, stride-1, ungrouped Conv2d with no hook on its forward (no on-the-fly LoRA adapter). */
function isPlainPointwise(conv: Conv2d): boolean {
  return (
    !conv.forwardIsHooked &&
    conv.weight.shape[2] === 1 &&
    conv.weight.shape[3] === 1 &&
    conv.groups === 1 &&
    conv.stride.every((s) => s === 1) &&
    (typeof conv.padding === "string" || conv.padding.every((p) => p === 0)) &&
    conv.dilation.every((d) => d === 1)
  );
}
