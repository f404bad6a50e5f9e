import { contiguousHeads, type HeadLayout } from "../backend/index.js";
import { isGradEnabled } from "../tensor/autograd.js";
import { tensor } from "../tensor/create.js";
import type { Device, DeviceBuffer } from "../tensor/device.js";
import { isFloating } from "../tensor/dtype.js";
import { ArgumentError, DTypeError, ShapeError } from "../tensor/errors.js";
import { broadcastShapes, formatShape, type Shape, shapesEqual, sizeOf } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { allocOutput, backendOf, contiguousF32, fromF32, requireFloat, stridedF32 } from "./core.js";
import { add, eq, mul, where } from "./elementwise.js";
import { matmul } from "./matmul.js";
import { expand, max } from "./reduce.js";
import { softmax } from "./softmax.js";
import { permute, reshape, transpose } from "./view.js";

/** Options of {@link scaled_dot_product_attention}. */
export interface AttentionOptions {
  /**
   * Broadcastable to [..., Lq, Lk]: a bool mask (true = attend, false = masked out) or a float mask added to the
   * scores.
   */
  attnMask?: Tensor | null;
  /** Query i attends to keys j <= i only (top-left aligned when Lq != Lk, as PyTorch). */
  isCausal?: boolean;
  /** Score scale; default 1/sqrt(D). */
  scale?: number | null;
}

/** The bool [lq, lk] lower-triangular mask of causal attention (true = keep). */
function causalMask(lq: number, lk: number, device: Device): Tensor {
  const keep = new Uint8Array(lq * lk);
  for (let i = 0; i < lq; i++) keep.fill(1, i * lk, i * lk + Math.min(i + 1, lk));
  return tensor(keep, [lq, lk], { dtype: "bool", device });
}

/** A float additive mask (0 where kept, -Infinity where masked) from a bool mask; float masks pass through. */
function additive(mask: Tensor): Tensor {
  return mask.dtype === "bool" ? where(mask, 0, Number.NEGATIVE_INFINITY) : mask;
}

/** softmax(scale * q k^T + mask) v from differentiable ops (autograd flows to q, k, v and a float mask). */
function composed(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  causal: boolean,
  scale: number,
): Tensor {
  let s = mul(matmul(q, transpose(k, -1, -2)), scale);
  if (mask) s = mask.dtype === "bool" ? where(mask, s, Number.NEGATIVE_INFINITY) : add(s, mask);
  if (causal) {
    const keep = causalMask(s.shape[s.ndim - 2]!, s.shape[s.ndim - 1]!, s.device);
    s = where(keep, s, Number.NEGATIVE_INFINITY);
  }
  if (!mask && !causal) return matmul(softmax(s, -1), v);
  // a query whose keys are all masked attends to nothing: zeros (as the fused kernel), not softmax's 0/0 = NaN. Its
  // scores are replaced before the softmax too, so no NaN reaches the gradients either.
  const none = eq(max(s, -1, { keepdim: true }), Number.NEGATIVE_INFINITY);
  const p = where(none, 0, softmax(where(none, 0, s), -1));
  return matmul(p, v);
}

/** The fused kernel over the flattened batch; k, v and the mask are materialised where they broadcast. */
function fused(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  causal: boolean,
  scale: number,
  batchShape: Shape,
): Tensor {
  const lq = q.shape[q.ndim - 2]!;
  const d = q.shape[q.ndim - 1]!;
  const lk = k.shape[k.ndim - 2]!;
  const dv = v.shape[v.ndim - 1]!;
  const batch = sizeOf(batchShape);
  const be = backendOf("scaled_dot_product_attention", q, k, v, mask);
  let maskData: DeviceBuffer | null = null;
  let maskBatchStride = 0;
  let maskRowStride = 0;
  if (causal) {
    maskData = contiguousF32(be, additive(causalMask(lq, lk, be.device)));
    maskRowStride = lk;
  } else if (mask) {
    const m = additive(mask);
    const padded = [...new Array<number>(batchShape.length + 2 - m.ndim).fill(1), ...m.shape];
    const perBatch = padded.slice(0, -2).some((s) => s !== 1);
    const rows = padded[padded.length - 2] === 1 ? 1 : lq;
    const target = perBatch ? [...batchShape, rows, lk] : [rows, lk];
    const mm = perBatch ? m : reshape(m, padded.slice(-2));
    maskData = contiguousF32(be, expand(mm, target));
    maskBatchStride = perBatch ? rows * lk : 0;
    maskRowStride = rows === 1 ? 0 : lk;
  }
  // up to two batch dims are read in place through strides (a head-split view of [B, L, heads * D] needs no copy);
  // more are flattened into contiguous copies
  const nb = batchShape.length;
  const inPlace = nb <= 2;
  const heads = inPlace && nb > 0 ? batchShape[nb - 1]! : 1;
  const operand = (t: Tensor, rows: number, cols: number) => {
    const e = expand(t, [...batchShape, rows, cols]);
    const sv = inPlace ? stridedF32(be, e) : null;
    if (sv && (cols === 1 || sv.strides[nb + 1] === 1)) {
      const s = sv.strides;
      const layout: HeadLayout = {
        offset: sv.offset,
        outerStride: nb === 2 ? s[0]! : 0,
        headStride: nb >= 1 ? s[nb - 1]! : 0,
        rowStride: s[nb]!,
      };
      return { data: sv.data, layout };
    }
    return { data: contiguousF32(be, e), layout: contiguousHeads(heads, rows, cols) };
  };
  const qo = operand(q, lq, d);
  const ko = operand(k, lk, d);
  const vo = operand(v, lk, dv);
  // the output mirrors q's layout: heads interleaved within rows when q's are (then the caller's merge of the
  // heads back into [B, L, heads * Dv] is a free view)
  const interleaved = nb >= 1 && heads > 1 && qo.layout.headStride < qo.layout.rowStride;
  const outer = batch / heads;
  const outLayout: HeadLayout = interleaved
    ? { offset: 0, outerStride: lq * heads * dv, headStride: dv, rowStride: heads * dv }
    : contiguousHeads(heads, lq, dv);
  const out = allocOutput(be, batch * lq * dv);
  be.attention({
    batch,
    lq,
    lk,
    d,
    dv,
    scale,
    q: qo.data,
    k: ko.data,
    v: vo.data,
    out,
    mask: maskData,
    maskBatchStride,
    maskRowStride,
    heads,
    qLayout: qo.layout,
    kLayout: ko.layout,
    vLayout: vo.layout,
    outLayout,
  });
  if (!interleaved) return fromF32(be, out, [...batchShape, lq, dv]);
  const stored = fromF32(be, out, nb === 2 ? [outer, lq, heads, dv] : [lq, heads, dv]);
  return nb === 2 ? permute(stored, [0, 2, 1, 3]) : permute(stored, [1, 0, 2]);
}

/**
 * Attention `softmax(q k^T * scale + mask) v` (PyTorch's F.scaled_dot_product_attention, without dropout) for
 * q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv]; the leading (batch/head) dims broadcast. Returns [..., Lq, Dv].
 * Runs the fused kernel unless a gradient is needed, then the matmul/softmax composition.
 */
export function scaled_dot_product_attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionOptions = {},
): Tensor {
  for (const [t, name] of [
    [q, "q"],
    [k, "k"],
    [v, "v"],
  ] as const) {
    requireFloat(t, "scaled_dot_product_attention");
    if (t.ndim < 2) {
      throw new ShapeError(
        `scaled_dot_product_attention: ${name} needs at least 2 dims, got ${formatShape(t.shape)}`,
      );
    }
  }
  const lq = q.shape[q.ndim - 2]!;
  const d = q.shape[q.ndim - 1]!;
  const lk = k.shape[k.ndim - 2]!;
  if (k.shape[k.ndim - 1] !== d || v.shape[v.ndim - 2] !== lk) {
    throw new ShapeError(
      `scaled_dot_product_attention: expected k [..., Lk, ${d}] and v [..., Lk, Dv] with the same Lk for q ${formatShape(q.shape)}; got k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`,
    );
  }
  let batchShape: number[];
  try {
    batchShape = broadcastShapes(
      broadcastShapes(q.shape.slice(0, -2), k.shape.slice(0, -2)),
      v.shape.slice(0, -2),
    );
  } catch {
    throw new ShapeError(
      `scaled_dot_product_attention: batch dims of q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)} do not broadcast`,
    );
  }
  const mask = opts.attnMask ?? null;
  const causal = !!opts.isCausal;
  if (mask) {
    if (mask.dtype !== "bool" && !isFloating(mask.dtype)) {
      throw new DTypeError(
        `scaled_dot_product_attention: attnMask must be bool or floating, got ${mask.dtype}`,
      );
    }
    const full = [...batchShape, lq, lk];
    let ok = mask.ndim <= full.length;
    if (ok) {
      try {
        ok = shapesEqual(broadcastShapes(mask.shape, full), full);
      } catch {
        ok = false;
      }
    }
    if (!ok) {
      throw new ShapeError(
        `scaled_dot_product_attention: attnMask ${formatShape(mask.shape)} does not broadcast to the scores ${formatShape(full)}`,
      );
    }
    if (causal)
      throw new ArgumentError("scaled_dot_product_attention: give either attnMask or isCausal, not both");
  }
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const needsGraph = isGradEnabled() && [q, k, v, mask].some((t) => t?.requiresGrad);
  if (needsGraph) return composed(q, k, v, mask, causal, scale);
  return fused(q, k, v, mask, causal, scale, batchShape);
}
