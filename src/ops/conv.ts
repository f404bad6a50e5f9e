import type { Conv2dParams } from "../backend/index.js";
import type { DeviceBuffer } from "../tensor/device.js";
import { ArgumentError, ShapeError } from "../tensor/errors.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  allocOutput,
  allocZeros,
  backendOf,
  contiguousF32,
  fromF32,
  fusableResidual,
  ownElements,
  record,
  requireFloat,
} from "./core.js";
import { addResidualTo } from "./elementwise.js";
import { binaryRaw } from "./raw.js";
import { sum } from "./reduce.js";
import { reshape, slice, squeeze, unsqueeze } from "./view.js";

/** One value for both spatial dims, or [h, w]. */
export type Size2 = number | readonly [number, number];

/** Options of {@link conv2d} (PyTorch's F.conv2d keyword arguments). */
export interface Conv2dOptions {
  stride?: Size2;
  /** zero padding on both sides of each dim, or "valid" (none) / "same" (output size = input size, stride 1) */
  padding?: Size2 | "same" | "valid";
  dilation?: Size2;
  groups?: number;
  /**
   * Added to the result (a skip connection: conv(x) + residual, with that rounding), inside the kernel while the
   * output is in cache where it can be (float32, exactly the output's shape, no gradients to record), else by a
   * separate add.
   */
  residual?: Tensor | null;
}

/** Options of {@link conv_transpose2d} (PyTorch's F.conv_transpose2d keyword arguments). */
export interface ConvTranspose2dOptions {
  stride?: Size2;
  padding?: Size2;
  /** extra rows/columns added on one side of the output (must be below stride or dilation) */
  outputPadding?: Size2;
  groups?: number;
  dilation?: Size2;
}

/** Resolves a number-or-pair argument into [h, w] of integers >= min. */
export function pair(v: Size2 | undefined, fallback: number, what: string, min: number): [number, number] {
  const p: [number, number] =
    v === undefined ? [fallback, fallback] : typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new ArgumentError(
      `${what} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`,
    );
  }
  return p;
}

function checkGroups(groups: number | undefined, op: string): number {
  const g = groups ?? 1;
  if (!Number.isInteger(g) || g < 1)
    throw new ArgumentError(`${op}: groups must be a positive integer, got ${g}`);
  return g;
}

function checkBias(bias: Tensor | null | undefined, channels: number, op: string): void {
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== channels)) {
    throw new ShapeError(`${op}: bias must be [${channels}], got ${formatShape(bias.shape)}`);
  }
  if (bias) requireFloat(bias, op);
}

/** Adds bias[c] to every element of channel c of a contiguous [n, c, plane] buffer. */
/** Runs a function of a 4-D tensor on an unbatched 3-D one too (adding and removing the batch dim). */
function batched(x: Tensor, op: string, fn: (x4: Tensor) => Tensor): Tensor {
  if (x.ndim === 3) return squeeze(fn(unsqueeze(x, 0)), 0);
  if (x.ndim !== 4)
    throw new ShapeError(`${op}: input must be [N, C, H, W] or [C, H, W], got ${formatShape(x.shape)}`);
  return fn(x);
}

/** The kernel call plus its gradients, for already validated conv2d parameters. */
function conv2dCore(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  p: Conv2dParams,
  residual: DeviceBuffer | null = null,
): Tensor {
  const backend = backendOf("conv2d", x, weight, bias);
  const xd = contiguousF32(backend, x);
  const out = allocOutput(backend, p.batch * p.outChannels * p.outH * p.outW);
  const bd = bias ? contiguousF32(backend, bias) : null;
  // float16 weights go to the kernel as they are (widened while packed) when the backend can read them
  const w16 = weight.dtype === "float16" && backend.halfWeights ? ownElements(backend, weight) : null;
  if (w16 && backend.halfWeights) {
    backend.halfWeights.conv2dHalfW(xd, w16, bd, out, p, residual);
  } else {
    backend.conv2d(xd, contiguousF32(backend, weight), bd, out, p, residual);
  }
  const y = fromF32(backend, out, [p.batch, p.outChannels, p.outH, p.outW]);
  return record(y, "conv2d", [x, weight, bias], (g) => {
    const gd = contiguousF32(backend, g);
    const wd = contiguousF32(backend, weight);
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    if (x.requiresGrad) {
      const buf = allocZeros(backend, x.size);
      backend.conv2dBackwardInput(gd, wd, buf, p);
      gx = fromF32(backend, buf, x.shape);
    }
    if (weight.requiresGrad) {
      const buf = allocZeros(backend, weight.size);
      backend.conv2dBackwardWeight(xd, gd, buf, p);
      gw = fromF32(backend, buf, weight.shape);
    }
    return [gx, gw, bias?.requiresGrad ? sum(g, [0, 2, 3]) : null];
  });
}

/**
 * 2-D convolution (cross-correlation, as PyTorch) of x [N, C, H, W] (or [C, H, W]) with weight
 * [O, C/groups, kh, kw] and optional bias [O], plus `opts.residual` when given. Gradients flow to x, weight, bias
 * and the residual.
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  requireFloat(x, "conv2d");
  requireFloat(weight, "conv2d");
  const residual = opts.residual ?? null;
  let fused = false;
  const y = batched(x, "conv2d", (x4) => {
    if (weight.ndim !== 4) {
      throw new ShapeError(`conv2d: weight must be [O, C/groups, kh, kw], got ${formatShape(weight.shape)}`);
    }
    const [n, c, h, w] = x4.shape as [number, number, number, number];
    const [o, cpg, kh, kw] = weight.shape as [number, number, number, number];
    const groups = checkGroups(opts.groups, "conv2d");
    if (o % groups !== 0 || cpg * groups !== c) {
      throw new ShapeError(
        `conv2d: input has ${c} channels and groups=${groups}, so weight must be [O, ${c / groups}, kh, kw] with O divisible by ${groups}; got weight ${formatShape(weight.shape)}`,
      );
    }
    checkBias(bias, o, "conv2d");
    const [sh, sw] = pair(opts.stride, 1, "conv2d: stride", 1);
    const [dh, dw] = pair(opts.dilation, 1, "conv2d: dilation", 1);
    let pad: [number, number];
    // "same" pads dilation*(k-1) in total, the odd extra on the bottom/right (as PyTorch). An asymmetric amount is
    // done as the larger symmetric padding followed by dropping the first output row/column.
    let crop: [boolean, boolean] = [false, false];
    if (opts.padding === "valid") pad = [0, 0];
    else if (opts.padding === "same") {
      if (sh !== 1 || sw !== 1)
        throw new ArgumentError(`conv2d: padding "same" needs stride 1, got [${sh}, ${sw}]`);
      const th = dh * (kh - 1);
      const tw = dw * (kw - 1);
      pad = [Math.ceil(th / 2), Math.ceil(tw / 2)];
      crop = [th % 2 === 1, tw % 2 === 1];
    } else pad = pair(opts.padding, 0, "conv2d: padding", 0);
    const outH = Math.floor((h + 2 * pad[0] - dh * (kh - 1) - 1) / sh) + 1;
    const outW = Math.floor((w + 2 * pad[1] - dw * (kw - 1) - 1) / sw) + 1;
    if (outH < 1 || outW < 1) {
      throw new ShapeError(
        `conv2d: input ${formatShape(x4.shape)} padded by [${pad}] is smaller than the dilated kernel [${dh * (kh - 1) + 1}, ${dw * (kw - 1) + 1}]`,
      );
    }
    const p: Conv2dParams = {
      batch: n,
      inChannels: c,
      inH: h,
      inW: w,
      outChannels: o,
      outH,
      outW,
      kernelH: kh,
      kernelW: kw,
      strideH: sh,
      strideW: sw,
      padH: pad[0],
      padW: pad[1],
      dilationH: dh,
      dilationW: dw,
      groups,
    };
    const shape = [n, o, outH, outW];
    const be = backendOf("conv2d", x4, weight, bias, residual);
    const r =
      crop[0] || crop[1] || x.ndim !== 4 ? null : fusableResidual(be, residual, shape, [x4, weight, bias]);
    // the kernel reads the residual from element 0 of its buffer
    const rd = r && residual ? ownElements(be, residual) : null;
    fused = rd !== null;
    let y = conv2dCore(x4, weight, bias ?? null, p, rd);
    if (crop[0]) y = slice(y, 2, 1);
    if (crop[1]) y = slice(y, 3, 1);
    return y;
  });
  return residual && !fused ? addResidualTo("conv2d", y, residual) : y;
}

/**
 * Transposed 2-D convolution (the gradient of conv2d with respect to its input) of x [N, Cin, H, W] (or
 * [Cin, H, W]) with weight [Cin, Cout/groups, kh, kw] and optional bias [Cout]. The output is
 * [N, Cout, (H-1)*stride - 2*padding + dilation*(kh-1) + outputPadding + 1, ...]. Gradients flow to all inputs.
 */
export function conv_transpose2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  opts: ConvTranspose2dOptions = {},
): Tensor {
  requireFloat(x, "conv_transpose2d");
  requireFloat(weight, "conv_transpose2d");
  return batched(x, "conv_transpose2d", (x4) => {
    if (weight.ndim !== 4) {
      throw new ShapeError(
        `conv_transpose2d: weight must be [Cin, Cout/groups, kh, kw], got ${formatShape(weight.shape)}`,
      );
    }
    const [n, cin, h, w] = x4.shape as [number, number, number, number];
    const [wi, opg, kh, kw] = weight.shape as [number, number, number, number];
    const groups = checkGroups(opts.groups, "conv_transpose2d");
    if (wi !== cin || cin % groups !== 0) {
      throw new ShapeError(
        `conv_transpose2d: weight must be [${cin}, Cout/groups, kh, kw] with ${cin} divisible by groups=${groups}; got weight ${formatShape(weight.shape)} for input ${formatShape(x4.shape)}`,
      );
    }
    const cout = opg * groups;
    checkBias(bias, cout, "conv_transpose2d");
    const [sh, sw] = pair(opts.stride, 1, "conv_transpose2d: stride", 1);
    const [ph, pw] = pair(opts.padding, 0, "conv_transpose2d: padding", 0);
    const [dh, dw] = pair(opts.dilation, 1, "conv_transpose2d: dilation", 1);
    const [oph, opw] = pair(opts.outputPadding, 0, "conv_transpose2d: outputPadding", 0);
    if ((oph >= sh && oph >= dh) || (opw >= sw && opw >= dw)) {
      throw new ArgumentError(
        `conv_transpose2d: outputPadding [${oph}, ${opw}] must be smaller than either stride [${sh}, ${sw}] or dilation [${dh}, ${dw}]`,
      );
    }
    const outH = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1;
    const outW = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1;
    if (outH < 1 || outW < 1) {
      throw new ShapeError(
        `conv_transpose2d: output size [${outH}, ${outW}] is not positive (input ${formatShape(x4.shape)}, padding [${ph}, ${pw}])`,
      );
    }
    // The conv2d whose input gradient this is: input [n, cout, outH, outW], weight [cin, cout/groups, kh, kw].
    const p: Conv2dParams = {
      batch: n,
      inChannels: cout,
      inH: outH,
      inW: outW,
      outChannels: cin,
      outH: h,
      outW: w,
      kernelH: kh,
      kernelW: kw,
      strideH: sh,
      strideW: sw,
      padH: ph,
      padW: pw,
      dilationH: dh,
      dilationW: dw,
      groups,
    };
    const be = backendOf("conv_transpose2d", x4, weight, bias);
    const xd = contiguousF32(be, x4);
    const wd = contiguousF32(be, weight);
    const out = allocZeros(be, n * cout * outH * outW);
    be.conv2dBackwardInput(xd, wd, out, p);
    const product = fromF32(be, out, [n, cout, outH, outW]);
    const y = bias ? binaryRaw("add", product, reshape(bias, [1, cout, 1, 1])) : product;
    return record(y, "conv_transpose2d", [x4, weight, bias ?? null], (g) => {
      const gd = contiguousF32(be, g);
      let gx: Tensor | null = null;
      let gw: Tensor | null = null;
      if (x4.requiresGrad) {
        const buf = allocOutput(be, x4.size);
        be.conv2d(gd, wd, null, buf, p);
        gx = fromF32(be, buf, x4.shape);
      }
      if (weight.requiresGrad) {
        // conv2d's weight gradient with g as the conv input and x as the gradient of the conv output
        const buf = allocZeros(be, weight.size);
        be.conv2dBackwardWeight(gd, xd, buf, p);
        gw = fromF32(be, buf, weight.shape);
      }
      return [gx, gw, bias?.requiresGrad ? sum(g, [0, 2, 3]) : null];
    });
  });
}
