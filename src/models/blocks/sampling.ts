// diffusers' `Downsample2D` and `Upsample2D`: the resolution changes between UNet / VAE stages.
import { Conv2d, type LayerOptions, Module } from "../../nn/index.js";
import { avg_pool2d, interpolate, pad } from "../../ops/index.js";
import { ShapeError } from "../../tensor/errors.js";
import { formatShape } from "../../tensor/shape.js";
import type { Tensor } from "../../tensor/tensor.js";
import { ModelConfigError } from "./errors.js";

function checkInput(x: Tensor, channels: number, who: string): void {
  if (x.ndim !== 4 || x.shape[1] !== channels) {
    throw new ShapeError(`${who}: expected input [B, ${channels}, H, W], got ${formatShape(x.shape)}`);
  }
}

/** Options of {@link Downsample2D}. */
export interface Downsample2DOptions extends LayerOptions {
  /** A 3x3 stride-2 convolution (default true) or a 2x2 average pool. */
  useConv?: boolean;
  /** Default channels (must equal channels without a conv). */
  outChannels?: number;
  /**
   * Zero padding of the conv (default 1). 0 means diffusers' asymmetric padding: one row and column of zeros
   * on the bottom and right only, as the VAE encoder does.
   */
  padding?: number;
}

/** Halves H and W: `conv` (3x3, stride 2) or a 2x2 average pool. */
export class Downsample2D extends Module<[Tensor], Tensor> {
  readonly channels: number;
  readonly padding: number;
  conv: Conv2d | null;

  constructor(channels: number, opts: Downsample2DOptions = {}) {
    super();
    const out = opts.outChannels ?? channels;
    this.channels = channels;
    this.padding = opts.padding ?? 1;
    if (opts.useConv ?? true) {
      const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
      this.conv = new Conv2d(channels, out, 3, { ...layer, stride: 2, padding: this.padding });
    } else {
      if (out !== channels) {
        throw new ModelConfigError(
          `Downsample2D: average pooling keeps the channels (${channels}), cannot output ${out}`,
        );
      }
      this.conv = null;
    }
  }

  override forward(x: Tensor): Tensor {
    checkInput(x, this.channels, "Downsample2D");
    if (!this.conv) return avg_pool2d(x, 2, 2);
    return this.conv.call(this.padding === 0 ? pad(x, [0, 1, 0, 1]) : x);
  }
}

/** Options of {@link Upsample2D}. */
export interface Upsample2DOptions extends LayerOptions {
  /** A 3x3 convolution after the upsampling (default true). */
  useConv?: boolean;
  /** Default channels. */
  outChannels?: number;
}

/** Doubles H and W (nearest neighbour; or resizes to a given size) and applies `conv` (3x3, padding 1). */
export class Upsample2D extends Module<[Tensor, (readonly [number, number] | null)?], Tensor> {
  readonly channels: number;
  conv: Conv2d | null;

  constructor(channels: number, opts: Upsample2DOptions = {}) {
    super();
    this.channels = channels;
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    this.conv =
      (opts.useConv ?? true)
        ? new Conv2d(channels, opts.outChannels ?? channels, 3, { ...layer, padding: 1 })
        : null;
  }

  /** x [B, C, H, W] -> [B, C', 2H, 2W], or [B, C', ...size] when `size` is given (odd-sized UNet inputs). */
  override forward(x: Tensor, size?: readonly [number, number] | null): Tensor {
    checkInput(x, this.channels, "Upsample2D");
    const up = size ? interpolate(x, { size: [size[0], size[1]] }) : interpolate(x, { scaleFactor: 2 });
    return this.conv ? this.conv.call(up) : up;
  }
}
