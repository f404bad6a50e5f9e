import { group_norm, layer_norm } from "../ops/index.js";
import { ones, zeros } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";
import { checkPositive, makeParameter } from "./linear.js";
import { Module } from "./module.js";
import type { LayerOptions } from "./options.js";
import type { Parameter } from "./parameter.js";

/** Options of {@link GroupNorm}. */
export interface GroupNormOptions extends Pick<LayerOptions, "dtype"> {
  eps?: number;
  /** Learned per-channel scale and shift (default true). */
  affine?: boolean;
}

/**
 * Group normalisation over [N, C, ...] (Wu & He 2018; PyTorch's `nn.GroupNorm`): channels split into
 * `numGroups` groups, each normalised over its channels and spatial positions, then scaled by `weight` [C]
 * (ones) and shifted by `bias` [C] (zeros).
 */
export class GroupNorm extends Module<[Tensor], Tensor> {
  readonly numGroups: number;
  readonly numChannels: number;
  readonly eps: number;
  weight: Parameter | null;
  bias: Parameter | null;

  constructor(numGroups: number, numChannels: number, opts: GroupNormOptions = {}) {
    super();
    checkPositive({ numGroups, numChannels }, "GroupNorm");
    if (numChannels % numGroups !== 0) {
      throw new ArgumentError(
        `GroupNorm: numChannels (${numChannels}) must be divisible by numGroups (${numGroups})`,
      );
    }
    this.numGroups = numGroups;
    this.numChannels = numChannels;
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.affine ?? true;
    this.weight = affine ? makeParameter(ones([numChannels]), opts) : null;
    this.bias = affine ? makeParameter(zeros([numChannels]), opts) : null;
  }

  override forward(x: Tensor): Tensor {
    return group_norm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions extends Pick<LayerOptions, "dtype"> {
  eps?: number;
  /** Learned elementwise scale and shift (default true). */
  elementwiseAffine?: boolean;
  /** With elementwiseAffine, also learn the shift (default true). */
  bias?: boolean;
}

/**
 * Layer normalisation over the trailing `normalizedShape` dims (Ba et al. 2016; PyTorch's `nn.LayerNorm`),
 * scaled by `weight` (ones) and shifted by `bias` (zeros), both of shape `normalizedShape`.
 */
export class LayerNorm extends Module<[Tensor], Tensor> {
  readonly normalizedShape: readonly number[];
  readonly eps: number;
  weight: Parameter | null;
  bias: Parameter | null;

  constructor(normalizedShape: number | readonly number[], opts: LayerNormOptions = {}) {
    super();
    const shape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    shape.forEach((d, i) => {
      checkPositive({ [`normalizedShape[${i}]`]: d }, "LayerNorm");
    });
    this.normalizedShape = Object.freeze(shape);
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? makeParameter(ones(shape), opts) : null;
    this.bias = affine && (opts.bias ?? true) ? makeParameter(zeros(shape), opts) : null;
  }

  override forward(x: Tensor): Tensor {
    return layer_norm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}
