import { linear } from "../ops/index.js";
import { zeros } from "../tensor/create.js";
import type { DType } from "../tensor/dtype.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";
import { defaultLinearInit } from "./init.js";
import { Module } from "./module.js";
import type { LayerOptions } from "./options.js";
import { Parameter } from "./parameter.js";

/** Options of {@link Linear}. */
export interface LinearOptions extends LayerOptions {
  /** Add a learned bias (default true). */
  bias?: boolean;
}

/**
 * y = x Wᵀ + b over the last dim (PyTorch's `nn.Linear`): `weight` [out, in], `bias` [out]. Initialised as
 * PyTorch: weight kaiming_uniform(a = sqrt(5)), bias U(±1/sqrt(in)).
 */
export class Linear extends Module<[Tensor, (Tensor | null)?], Tensor> {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    checkPositive({ inFeatures, outFeatures }, "Linear");
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const initial = initialOptions(opts);
    const weight = zeros([outFeatures, inFeatures], initial);
    const bias = (opts.bias ?? true) ? zeros([outFeatures], initial) : null;
    if (!opts.skipInit) defaultLinearInit(weight, bias, opts.generator);
    this.weight = makeParameter(weight, opts);
    this.bias = bias && makeParameter(bias, opts);
  }

  /** x W^T + b, plus `residual` (the output's shape) when given: added inside the product where it can be. */
  override forward(x: Tensor, residual?: Tensor | null): Tensor {
    return linear(x, this.weight, this.bias, residual);
  }
}

/** Wraps a freshly initialised tensor as a parameter in the requested dtype (default float32). */
export function makeParameter(t: Tensor, opts: { dtype?: LayerOptions["dtype"] }): Parameter {
  const dtype = opts.dtype ?? "float32";
  return new Parameter(t.dtype !== dtype ? t.to(dtype) : t);
}

/**
 * The dtype initial values are made in: float32, where they are drawn (then converted), or with `skipInit` the
 * parameter's own dtype at once — a module built to load weights into then allocates its memory once, with no
 * float32 copy to fill and convert (that was most of the time to build SD 1.5's UNet in float16).
 */
export function initialOptions(opts: Pick<LayerOptions, "dtype" | "skipInit">): { dtype: DType } {
  return { dtype: opts.skipInit ? (opts.dtype ?? "float32") : "float32" };
}

/** Throws unless every named size is a positive integer. */
export function checkPositive(sizes: Record<string, number>, layer: string): void {
  for (const [name, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v <= 0)
      throw new ArgumentError(`${layer}: ${name} must be a positive integer, got ${v}`);
  }
}
