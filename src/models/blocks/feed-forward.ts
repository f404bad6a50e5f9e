// diffusers' `FeedForward` with the GEGLU activation: the MLP of every Stable Diffusion transformer block.
import { Dropout, type LayerOptions, Linear, Module, ModuleList } from "../../nn/index.js";
import { geglu, linearGeglu } from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { withResidual } from "./residual.js";

/**
 * Gated GELU (Shazeer 2020, "GLU Variants Improve Transformer"): proj(x) is split in halves a, g along the last
 * dim and the output is a * gelu(g) (exact erf GELU).
 */
export class GEGLU extends Module<[Tensor], Tensor> {
  proj: Linear;

  constructor(dimIn: number, dimOut: number, opts: LayerOptions = {}) {
    super();
    this.proj = new Linear(dimIn, dimOut * 2, opts);
  }

  override forward(x: Tensor): Tensor {
    // one fused pass unless something hooks the projection's forward (an on-the-fly LoRA adapter)
    if (!this.proj.forwardIsHooked) {
      return linearGeglu(x, this.proj.weight, this.proj.bias);
    }
    return geglu(this.proj.call(x));
  }
}

/** Options of {@link FeedForward}. */
export interface FeedForwardOptions extends LayerOptions {
  /** Output size (default dim). */
  dimOut?: number;
  /** Hidden size (default dim * mult). */
  innerDim?: number;
  /** Default 4. */
  mult?: number;
}

/**
 * net.0 = GEGLU(dim -> inner), net.1 = dropout (0 in Stable Diffusion), net.2 = Linear(inner -> dimOut); the
 * numbering is diffusers' (`ff.net.0.proj.weight`, `ff.net.2.weight`).
 */
export class FeedForward extends Module<[Tensor, (Tensor | null)?], Tensor> {
  net: ModuleList<Module<[Tensor], Tensor>>;

  constructor(dim: number, opts: FeedForwardOptions = {}) {
    super();
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    const inner = opts.innerDim ?? dim * (opts.mult ?? 4);
    this.net = new ModuleList<Module<[Tensor], Tensor>>([
      new GEGLU(dim, inner, layer),
      new Dropout(0),
      new Linear(inner, opts.dimOut ?? dim, layer),
    ]);
  }

  /** The MLP of x, plus `residual` when given (added inside the last projection where it can be). */
  override forward(x: Tensor, residual?: Tensor | null): Tensor {
    return withResidual(this.net.at(2), this.net.at(0).call(x), residual);
  }
}
