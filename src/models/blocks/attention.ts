// diffusers' `Attention` (attention_processor.py) with the standard processor: multi-head scaled dot-product
// attention, self- or cross-, optionally with a GroupNorm in front and a residual connection (the VAE's mid block).
import { Dropout, GroupNorm, type LayerOptions, Linear, Module, ModuleList } from "../../nn/index.js";
import {
  add,
  div,
  group_norm,
  permute,
  reshape,
  scaled_dot_product_attention,
  transpose,
} from "../../ops/index.js";
import { ShapeError } from "../../tensor/errors.js";
import { formatShape } from "../../tensor/shape.js";
import type { Tensor } from "../../tensor/tensor.js";
import { ModelConfigError } from "./errors.js";
import { addResidual, withResidual } from "./residual.js";

/** Options of {@link Attention} (diffusers' constructor arguments). */
export interface AttentionOptions extends LayerOptions {
  /** Channels of the queries (and of the output unless `outDim`). */
  queryDim: number;
  /** Channels of the encoder states keys and values come from (cross-attention); default queryDim. */
  crossAttentionDim?: number | null;
  /** Number of heads (default 8) and channels per head (default 64): inner dim = heads * dimHead. */
  heads?: number;
  dimHead?: number;
  /** Bias of to_q / to_k / to_v (default false) and of to_out.0 (default true). */
  bias?: boolean;
  outBias?: boolean;
  /**
   * diffusers computes the scores in float32 for half-precision models with this set. Accepted for config
   * compatibility: every kernel here computes in float32 already.
   */
  upcastAttention?: boolean;
  /** A GroupNorm with this many groups applied to the input first (`group_norm`; the VAE mid block). */
  normNumGroups?: number | null;
  /** Epsilon of that GroupNorm (default 1e-5). */
  eps?: number;
  /** Add the input to the output (default false). */
  residualConnection?: boolean;
  /** The output is divided by this (default 1). */
  rescaleOutputFactor?: number;
  /** Output channels (default queryDim). */
  outDim?: number;
}

/**
 * Multi-head attention (Vaswani et al. 2017): softmax(q kᵀ / sqrt(d)) v per head with q = to_q(x),
 * k = to_k(c), v = to_v(c) for context c (the encoder states, or x itself), then to_out. Takes tokens
 * [B, L, queryDim] or an image [B, queryDim, H, W] (attended over its H*W positions, returned in the same layout).
 */
export class Attention extends Module<[Tensor, (Tensor | null)?, (Tensor | null)?], Tensor> {
  readonly heads: number;
  readonly innerDim: number;
  readonly queryDim: number;
  readonly crossAttentionDim: number;
  readonly upcastAttention: boolean;
  readonly residualConnection: boolean;
  readonly rescaleOutputFactor: number;
  group_norm: GroupNorm | null;
  to_q: Linear;
  to_k: Linear;
  to_v: Linear;
  /** [Linear, Dropout] as diffusers (keys `to_out.0.weight`, `to_out.0.bias`). */
  to_out: ModuleList<Module<[Tensor], Tensor>>;

  constructor(opts: AttentionOptions) {
    super();
    const heads = opts.heads ?? 8;
    const dimHead = opts.dimHead ?? 64;
    if (!Number.isInteger(heads) || heads < 1 || !Number.isInteger(dimHead) || dimHead < 1) {
      throw new ModelConfigError(
        `Attention: heads (${heads}) and dimHead (${dimHead}) must be positive integers`,
      );
    }
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    const bias = opts.bias ?? false;
    this.heads = heads;
    this.innerDim = heads * dimHead;
    this.queryDim = opts.queryDim;
    this.crossAttentionDim = opts.crossAttentionDim ?? opts.queryDim;
    this.upcastAttention = opts.upcastAttention ?? false;
    this.residualConnection = opts.residualConnection ?? false;
    this.rescaleOutputFactor = opts.rescaleOutputFactor ?? 1;
    this.group_norm =
      opts.normNumGroups != null
        ? new GroupNorm(opts.normNumGroups, opts.queryDim, { eps: opts.eps ?? 1e-5, dtype: opts.dtype })
        : null;
    this.to_q = new Linear(opts.queryDim, this.innerDim, { ...layer, bias });
    this.to_k = new Linear(this.crossAttentionDim, this.innerDim, { ...layer, bias });
    this.to_v = new Linear(this.crossAttentionDim, this.innerDim, { ...layer, bias });
    this.to_out = new ModuleList<Module<[Tensor], Tensor>>([
      new Linear(this.innerDim, opts.outDim ?? opts.queryDim, { ...layer, bias: opts.outBias ?? true }),
      new Dropout(0),
    ]);
  }

  /**
   * x [B, L, queryDim] or [B, queryDim, H, W]; encoderHiddenStates [B, Lc, crossAttentionDim] (default: x).
   * Returns x's layout with outDim channels, plus `residual` (of that shape) when given: a transformer block's
   * skip connection, added inside the output projection where it can be.
   */
  override forward(x: Tensor, encoderHiddenStates?: Tensor | null, residual?: Tensor | null): Tensor {
    const image = x.ndim === 4;
    if ((x.ndim !== 3 && !image) || x.shape[image ? 1 : 2] !== this.queryDim) {
      throw new ShapeError(
        `Attention: expected [B, L, ${this.queryDim}] or [B, ${this.queryDim}, H, W], got ${formatShape(x.shape)}`,
      );
    }
    const b = x.shape[0]!;
    // a GroupNorm over [B, C, H*W] (diffusers transposes tokens back to channels-first for it)
    let h = x;
    if (this.group_norm) {
      const g = this.group_norm;
      h = image
        ? group_norm(h, g.numGroups, g.weight, g.bias, g.eps)
        : transpose(group_norm(transpose(h, 1, 2), g.numGroups, g.weight, g.bias, g.eps), 1, 2);
    }
    const tokens = image ? transpose(reshape(h, [b, this.queryDim, -1]), 1, 2) : h;
    const context = encoderHiddenStates ?? tokens;
    if (context.ndim !== 3 || context.shape[0] !== b || context.shape[2] !== this.crossAttentionDim) {
      throw new ShapeError(
        `Attention: encoder hidden states must be [${b}, L, ${this.crossAttentionDim}], got ${formatShape(context.shape)}`,
      );
    }
    const d = this.innerDim / this.heads;
    // [B, L, heads * d] -> [B, heads, L, d]
    const split = (t: Tensor): Tensor => permute(reshape(t, [b, t.shape[1]!, this.heads, d]), [0, 2, 1, 3]);
    const q = split(this.to_q.call(tokens));
    const k = split(this.to_k.call(context));
    const v = split(this.to_v.call(context));
    const o = scaled_dot_product_attention(q, k, v);
    const merged = reshape(permute(o, [0, 2, 1, 3]), [b, -1, this.innerDim]);
    // the caller's residual goes into the output projection when nothing comes between them
    const plain = !image && !this.residualConnection && this.rescaleOutputFactor === 1;
    if (plain) return withResidual(this.to_out.at(0), merged, residual);
    let out = this.to_out.at(0).call(merged);
    if (image) out = reshape(transpose(out, 1, 2), [b, out.shape[2]!, x.shape[2]!, x.shape[3]!]);
    if (this.residualConnection) out = add(out, x);
    out = this.rescaleOutputFactor === 1 ? out : div(out, this.rescaleOutputFactor);
    return residual ? addResidual(out, residual) : out;
  }
}
