import { conv2d, type Size2 } from "../ops/index.js";
import { zeros } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";
import { defaultLinearInit } from "./init.js";
import { checkPositive, initialOptions, makeParameter } from "./linear.js";
import { Module } from "./module.js";
import type { LayerOptions } from "./options.js";
import type { Parameter } from "./parameter.js";

/** Options of {@link Conv2d}. */
export interface Conv2dOptions extends LayerOptions {
  stride?: Size2;
  /** zero padding of each side, or "valid" (none) / "same" (output size = input size; stride 1) */
  padding?: Size2 | "same" | "valid";
  dilation?: Size2;
  groups?: number;
  /** Add a learned bias (default true). */
  bias?: boolean;
}

function pair(v: Size2, what: string): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= 0)) {
    throw new ArgumentError(`Conv2d: ${what} must be non-negative integers, got ${JSON.stringify(v)}`);
  }
  return p;
}

/**
 * 2-D convolution over NCHW input (PyTorch's `nn.Conv2d`): `weight` [out, in / groups, kh, kw], `bias` [out].
 * Initialised as PyTorch: weight kaiming_uniform(a = sqrt(5)), bias U(±1/sqrt(fan_in)), fan_in = in/groups·kh·kw.
 */
export class Conv2d extends Module<[Tensor, (Tensor | null)?], Tensor> {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | "same" | "valid";
  readonly dilation: [number, number];
  readonly groups: number;
  weight: Parameter;
  bias: Parameter | null;

  constructor(inChannels: number, outChannels: number, kernelSize: Size2, opts: Conv2dOptions = {}) {
    super();
    const groups = opts.groups ?? 1;
    checkPositive({ inChannels, outChannels, groups }, "Conv2d");
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new ArgumentError(
        `Conv2d: inChannels (${inChannels}) and outChannels (${outChannels}) must be divisible by groups (${groups})`,
      );
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize, "kernelSize");
    checkPositive({ kernelH: this.kernelSize[0], kernelW: this.kernelSize[1] }, "Conv2d");
    this.stride = pair(opts.stride ?? 1, "stride");
    checkPositive({ strideH: this.stride[0], strideW: this.stride[1] }, "Conv2d");
    const padding = opts.padding ?? 0;
    this.padding = padding === "same" || padding === "valid" ? padding : pair(padding, "padding");
    this.dilation = pair(opts.dilation ?? 1, "dilation");
    checkPositive({ dilationH: this.dilation[0], dilationW: this.dilation[1] }, "Conv2d");
    this.groups = groups;
    const initial = initialOptions(opts);
    const weight = zeros([outChannels, inChannels / groups, ...this.kernelSize], initial);
    const bias = (opts.bias ?? true) ? zeros([outChannels], initial) : null;
    if (!opts.skipInit) defaultLinearInit(weight, bias, opts.generator);
    this.weight = makeParameter(weight, opts);
    this.bias = bias && makeParameter(bias, opts);
  }

  /** conv(x), plus `residual` (the output's shape) when given: added inside the kernel where it can be. */
  override forward(x: Tensor, residual?: Tensor | null): Tensor {
    return conv2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
      residual,
    });
  }
}
