import { isGradEnabled } from "../tensor/autograd.js";
import { ShapeError } from "../tensor/errors.js";
import { broadcastShapes, formatShape, sizeOf } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  allocOutput,
  backendOf,
  contiguousF32,
  fromF32,
  fusableResidual,
  record,
  requireFloat,
  stridedF32,
} from "./core.js";
import { add, addResidualTo } from "./elementwise.js";
import { expand, sum } from "./reduce.js";
import { contiguous, reshape, squeeze, transpose, unsqueeze } from "./view.js";

/** One stride that walks all leading `nb` dims of `t` in row-major order, or null if none does. */
function collapsedBatchStride(t: Tensor, nb: number): number | null {
  let stride: number | null = null;
  for (let i = nb - 1; i >= 0; i--) {
    const d = t.shape[i]!;
    if (d === 1) continue;
    const s = t.strides[i]!;
    if (stride === null) {
      stride = s;
      // the next outer dim must step over this one
      continue;
    }
    const inner = t.shape.slice(i + 1, nb).reduce((a, b) => a * b, 1);
    if (s !== stride * inner && !(s === 0 && stride === 0)) return null;
  }
  return stride ?? 0;
}

/** Raw batched product of a [..., m, k] and b [..., k, n] already broadcast to the same batch shape. */
function matmulRaw(a: Tensor, b: Tensor): Tensor {
  const nb = a.ndim - 2;
  const batchShape = a.shape.slice(0, nb);
  const batch = sizeOf(batchShape);
  const m = a.shape[nb]!;
  const k = a.shape[nb + 1]!;
  const n = b.shape[nb + 1]!;
  let sa = collapsedBatchStride(a, nb);
  let sb = collapsedBatchStride(b, nb);
  let A = a;
  let B = b;
  if (sa === null) {
    A = contiguous(a);
    sa = m * k;
  }
  if (sb === null) {
    B = contiguous(b);
    sb = k * n;
  }
  const backend = backendOf("matmul", A, B);
  const av = stridedF32(backend, A);
  const bv = stridedF32(backend, B);
  // widened half tensors come back contiguous: their batch stride changes
  if (A.dtype !== "float32") sa = batch > 1 ? m * k : 0;
  if (B.dtype !== "float32") sb = batch > 1 ? k * n : 0;
  const out = allocOutput(backend, batch * m * n);
  backend.gemm({
    batch,
    m,
    n,
    k,
    a: av.data,
    aOffset: av.offset,
    aBatchStride: sa,
    aRowStride: av.strides[nb]!,
    aColStride: av.strides[nb + 1]!,
    b: bv.data,
    bOffset: bv.offset,
    bBatchStride: sb,
    bRowStride: bv.strides[nb]!,
    bColStride: bv.strides[nb + 1]!,
    out,
    outOffset: 0,
    alpha: 1,
    accumulate: false,
  });
  return fromF32(backend, out, [...batchShape, m, n]);
}

/** Matrix product with NumPy semantics: 1-D operands are promoted, batch dims broadcast. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  requireFloat(a, "matmul");
  requireFloat(b, "matmul");
  if (a.ndim === 0 || b.ndim === 0) throw new ShapeError("matmul: both operands need at least one dimension");
  const a2 = a.ndim === 1 ? unsqueeze(a, 0) : a;
  const b2 = b.ndim === 1 ? unsqueeze(b, 1) : b;
  const k = a2.shape[a2.ndim - 1]!;
  if (b2.shape[b2.ndim - 2] !== k) {
    throw new ShapeError(
      `matmul: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} do not align (${k} vs ${b2.shape[b2.ndim - 2]})`,
    );
  }
  const batch = broadcastShapes(a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const ae = expand(a2, [...batch, ...a2.shape.slice(-2)]);
  const be = expand(b2, [...batch, ...b2.shape.slice(-2)]);
  let out = record(matmulRaw(ae, be), "matmul", [ae, be], (g) => [
    ae.requiresGrad ? matmul(g, transpose(be, -1, -2)) : null,
    be.requiresGrad ? matmul(transpose(ae, -1, -2), g) : null,
  ]);
  if (a.ndim === 1) out = squeeze(out, -2);
  if (b.ndim === 1) out = squeeze(out, -1);
  return out;
}

/**
 * y = x W^T + b for x [..., in], W [out, in], b [out] (PyTorch's F.linear); plus `residual` when given (a
 * residual connection, y + residual with the same rounding), added inside the product while each output tile is
 * in cache where it can be (see {@link fusableResidual}), else by a separate add.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, residual?: Tensor | null): Tensor {
  requireFloat(x, "linear");
  if (weight.ndim !== 2)
    throw new ShapeError(`linear: weight must be 2-D [out, in], got ${formatShape(weight.shape)}`);
  const [outF, inF] = weight.shape as [number, number];
  if (x.shape[x.ndim - 1] !== inF) {
    throw new ShapeError(
      `linear: input has ${x.shape[x.ndim - 1]} features, weight expects ${inF} (weight ${formatShape(weight.shape)})`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new ShapeError(`linear: bias must be [${outF}], got ${formatShape(bias.shape)}`);
  }
  const lead = x.shape.slice(0, -1);
  const rows = sizeOf(lead);
  const backend = backendOf("linear", x, weight, bias, residual);
  const fused = fusableResidual(backend, residual, [...lead, outF], [x, weight, bias]);
  // a strided float32 [B, L, in] (e.g. an image [B, C, H, W] seen as tokens) is read in place as B products
  const batchStride =
    x.ndim === 3 && x.size > 0 && x.dtype === "float32" && !x.isContiguous()
      ? collapsedBatchStride(x, 1)
      : null;
  const x2 = batchStride === null ? contiguous(x) : x;
  const xv = stridedF32(backend, x2);
  const batch = batchStride === null ? 1 : x.shape[0]!;
  const out = allocOutput(backend, rows * outF);
  const params = {
    batch,
    m: rows / batch,
    n: outF,
    k: inF,
    a: xv.data,
    aOffset: xv.offset,
    aBatchStride: batchStride ?? 0,
    aRowStride: batchStride === null ? inF : xv.strides[1]!,
    aColStride: batchStride === null ? 1 : xv.strides[2]!,
    bBatchStride: 0,
    out,
    outOffset: 0,
    alpha: 1,
    accumulate: false,
    bias: bias ? contiguousF32(backend, bias) : null,
    ...fused,
  };
  if (weight.dtype === "float16" && backend.halfWeights) {
    // a float16 weight is read as it is (widened inside the kernel), never copied to float32
    backend.halfWeights.gemmHalfB({
      ...params,
      b: weight.storage.buffer,
      bOffset: weight.offset,
      bRowStride: weight.strides[1]!,
      bColStride: weight.strides[0]!,
    });
  } else {
    const wv = stridedF32(backend, weight);
    backend.gemm({
      ...params,
      b: wv.data,
      bOffset: wv.offset,
      bRowStride: wv.strides[1]!,
      bColStride: wv.strides[0]!,
    });
  }
  const y = fromF32(backend, out, [...lead, outF]);
  const product = record(y, "linear", [x, weight, bias ?? null], (g) => {
    const g2 = reshape(g, [rows, outF]);
    const xf = reshape(contiguous(x2), [rows, inF]);
    return [
      x.requiresGrad ? reshape(matmul(g2, weight), x.shape) : null,
      weight.requiresGrad ? matmul(transpose(g2, 0, 1), xf) : null,
      bias?.requiresGrad ? sum(g2, 0) : null,
    ];
  });
  return residual && !fused ? addResidualTo("linear", product, residual) : product;
}

/**
 * A 1x1 convolution applied to tokens: tokens [B, L, C] are read as the image [B, C, L] they came from, and the
 * result is channels-first, out [B, O, L] = weight [O, C] @ tokens[b]^T + bias[o] (no transposing copy of the
 * tokens). `weight` may be [O, C] or a 1x1 kernel [O, C, 1, 1]. `residual` ([B, O, L], optional) is added to the
 * result, inside the product where it can be (as in {@link linear}).
 */
export function linearToChannels(
  tokens: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  residual?: Tensor | null,
): Tensor {
  requireFloat(tokens, "linearToChannels");
  if (tokens.ndim !== 3)
    throw new ShapeError(`linearToChannels: tokens must be [B, L, C], got ${formatShape(tokens.shape)}`);
  const [b, l, c] = tokens.shape as [number, number, number];
  const w2 =
    weight.ndim === 4 && weight.shape[2] === 1 && weight.shape[3] === 1
      ? reshape(weight, weight.shape.slice(0, 2))
      : weight;
  if (w2.ndim !== 2 || w2.shape[1] !== c) {
    throw new ShapeError(
      `linearToChannels: weight must be [O, ${c}] or [O, ${c}, 1, 1] for tokens ${formatShape(tokens.shape)}, got ${formatShape(weight.shape)}`,
    );
  }
  const o = w2.shape[0]!;
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== o)) {
    throw new ShapeError(`linearToChannels: bias must be [${o}], got ${formatShape(bias.shape)}`);
  }
  const needGrad =
    isGradEnabled() && (tokens.requiresGrad || w2.requiresGrad || (bias?.requiresGrad ?? false));
  if (needGrad || w2.dtype !== "float32" || tokens.dtype !== "float32") {
    const y = matmul(w2, transpose(tokens, 1, 2));
    const biased = bias ? add(y, reshape(bias, [o, 1])) : y;
    return residual ? addResidualTo("linearToChannels", biased, residual) : biased;
  }
  const backend = backendOf("linearToChannels", tokens, w2, bias, residual);
  const fused = fusableResidual(backend, residual, [b, o, l], [tokens, w2, bias]);
  const wv = stridedF32(backend, w2);
  const tv = stridedF32(backend, tokens);
  const out = allocOutput(backend, b * o * l);
  backend.gemm({
    batch: b,
    m: o,
    n: l,
    k: c,
    a: wv.data,
    aOffset: wv.offset,
    aBatchStride: 0,
    aRowStride: wv.strides[0]!,
    aColStride: wv.strides[1]!,
    b: tv.data,
    bOffset: tv.offset,
    bBatchStride: tv.strides[0]!,
    bRowStride: tv.strides[2]!,
    bColStride: tv.strides[1]!,
    out,
    outOffset: 0,
    alpha: 1,
    accumulate: false,
    biasRows: bias ? contiguousF32(backend, bias) : null,
    ...fused,
  });
  const y = fromF32(backend, out, [b, o, l]);
  return residual && !fused ? addResidualTo("linearToChannels", y, residual) : y;
}
