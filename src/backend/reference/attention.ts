import { type AttentionParams, type Backend, contiguousHeads, type HeadLayout } from "../backend.js";

const headStart = (l: HeadLayout, b: number, heads: number) =>
  l.offset + Math.floor(b / heads) * l.outerStride + (b % heads) * l.headStride;

export const attentionKernels: Pick<Backend, "attention"> = {
  /**
   * softmax(scale * q k^T + mask) v, one query row at a time: only a row of lk scores is held, never the whole
   * [lq, lk] matrix. Scores, the softmax and the weighted sum of values are accumulated in float64.
   * A row whose scores are all -Infinity (fully masked) gives zeros, as PyTorch's scaled_dot_product_attention.
   */
  attention(p: AttentionParams): void {
    const { batch, lq, lk, d, dv, scale, q, k, v, out } = p;
    const heads = p.heads ?? 1;
    const ql = p.qLayout ?? contiguousHeads(heads, lq, d);
    const kl = p.kLayout ?? contiguousHeads(heads, lk, d);
    const vl = p.vLayout ?? contiguousHeads(heads, lk, dv);
    const ol = p.outLayout ?? contiguousHeads(heads, lq, dv);
    const mask = p.mask ?? null;
    const mbs = p.maskBatchStride ?? 0;
    const mrs = p.maskRowStride ?? 0;
    const scores = new Float64Array(lk);
    const acc = new Float64Array(dv);
    for (let b = 0; b < batch; b++) {
      const kBase = headStart(kl, b, heads);
      const vBase = headStart(vl, b, heads);
      const qBase = headStart(ql, b, heads);
      const oBase = headStart(ol, b, heads);
      for (let i = 0; i < lq; i++) {
        const qRow = qBase + i * ql.rowStride;
        const mRow = b * mbs + i * mrs;
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < lk; j++) {
          const kRow = kBase + j * kl.rowStride;
          let dot = 0;
          for (let t = 0; t < d; t++) dot += q[qRow + t]! * k[kRow + t]!;
          const s = dot * scale + (mask ? mask[mRow + j]! : 0);
          scores[j] = s;
          if (s > max || Number.isNaN(s)) max = Number.isNaN(max) ? max : s;
        }
        const oRow = oBase + i * ol.rowStride;
        if (max === Number.NEGATIVE_INFINITY) {
          out.fill(0, oRow, oRow + dv);
          continue;
        }
        let sum = 0;
        acc.fill(0);
        for (let j = 0; j < lk; j++) {
          const e = Math.exp(scores[j]! - max);
          sum += e;
          const vRow = vBase + j * vl.rowStride;
          for (let t = 0; t < dv; t++) acc[t]! += e * v[vRow + t]!;
        }
        for (let t = 0; t < dv; t++) out[oRow + t] = acc[t]! / sum;
      }
    }
  },
};
