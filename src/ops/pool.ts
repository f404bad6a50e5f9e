import { full } from "../tensor/create.js";
import { ArgumentError, ShapeError } from "../tensor/errors.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { conv2d, pair, type Size2 } from "./conv.js";
import { allocOutput, allocZeros, backendOf, contiguousF32, fromF32, record, requireFloat } from "./core.js";

/** Options of {@link interpolate}: exactly one of `size` and `scaleFactor`. */
export interface InterpolateOptions {
  size?: Size2;
  scaleFactor?: number | readonly [number, number];
  /** only "nearest" (PyTorch's legacy nearest: src = floor(dst * in / out)) */
  mode?: "nearest";
}

/**
 * Resizes x [N, C, H, W] to `size` or by `scaleFactor` (output = floor(in * factor)) with nearest-neighbour
 * sampling, as PyTorch's F.interpolate(mode="nearest"). The gradient sums each output's gradient into its source.
 */
export function interpolate(x: Tensor, opts: InterpolateOptions): Tensor {
  requireFloat(x, "interpolate");
  const mode = opts.mode ?? "nearest";
  if (mode !== "nearest")
    throw new ArgumentError(`interpolate: only mode "nearest" is supported, got "${mode}"`);
  if (x.ndim !== 4)
    throw new ShapeError(`interpolate: input must be [N, C, H, W], got ${formatShape(x.shape)}`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if ((opts.size === undefined) === (opts.scaleFactor === undefined)) {
    throw new ArgumentError("interpolate: give exactly one of size and scaleFactor");
  }
  let oh: number;
  let ow: number;
  if (opts.size !== undefined) {
    [oh, ow] = pair(opts.size, 0, "interpolate: size", 1);
  } else {
    const sf = opts.scaleFactor!;
    const [fh, fw] = typeof sf === "number" ? [sf, sf] : sf;
    if (!(fh > 0 && fw > 0)) throw new ArgumentError(`interpolate: scaleFactor must be positive, got ${sf}`);
    oh = Math.floor(h * fh);
    ow = Math.floor(w * fw);
    if (oh < 1 || ow < 1) {
      throw new ShapeError(`interpolate: scaleFactor ${sf} shrinks ${formatShape(x.shape)} to nothing`);
    }
    // PyTorch maps positions with 1/scaleFactor when one is given; the kernel uses in/out. They agree whenever the
    // float32 ratios are equal (every integer factor, and exact downscales).
    if (Math.fround(1 / fh) !== Math.fround(h / oh) || Math.fround(1 / fw) !== Math.fround(w / ow)) {
      throw new ArgumentError(
        `interpolate: scaleFactor ${JSON.stringify(sf)} on ${formatShape(x.shape)} maps pixels differently from size=[${oh}, ${ow}] in PyTorch; pass size instead (or an integer factor)`,
      );
    }
  }
  const planes = n * c;
  const be = backendOf("interpolate", x);
  const out = allocOutput(be, planes * oh * ow);
  be.upsampleNearest(contiguousF32(be, x), out, planes, h, w, oh, ow);
  return record(fromF32(be, out, [n, c, oh, ow]), "interpolate", [x], (g) => {
    const gbe = backendOf("interpolate backward", g);
    const gx = allocZeros(gbe, x.size);
    gbe.upsampleNearestBackward(contiguousF32(gbe, g), gx, planes, h, w, oh, ow);
    return [fromF32(gbe, gx, x.shape)];
  });
}

/**
 * 2-D average pooling of x [N, C, H, W] (or [C, H, W]) with zero padding counted in the average
 * (PyTorch's count_include_pad=true, ceil_mode=false). Runs as a depthwise convolution with weights 1/(kh*kw).
 */
export function avg_pool2d(x: Tensor, kernelSize: Size2, stride?: Size2 | null, padding: Size2 = 0): Tensor {
  requireFloat(x, "avg_pool2d");
  if (x.ndim !== 3 && x.ndim !== 4) {
    throw new ShapeError(`avg_pool2d: input must be [N, C, H, W] or [C, H, W], got ${formatShape(x.shape)}`);
  }
  const [kh, kw] = pair(kernelSize, 1, "avg_pool2d: kernelSize", 1);
  const [sh, sw] = pair(stride ?? kernelSize, 1, "avg_pool2d: stride", 1);
  const [ph, pw] = pair(padding, 0, "avg_pool2d: padding", 0);
  if (2 * ph > kh || 2 * pw > kw) {
    throw new ArgumentError(
      `avg_pool2d: padding [${ph}, ${pw}] must be at most half the kernel size [${kh}, ${kw}]`,
    );
  }
  const c = x.shape[x.ndim - 3]!;
  const weight = full([c, 1, kh, kw], 1 / (kh * kw), { device: x.device });
  return conv2d(x, weight, null, { stride: [sh, sw], padding: [ph, pw], groups: c });
}
