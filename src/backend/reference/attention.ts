import type { AttentionParams, Backend } from "../backend.js";

export const attentionKernels: Pick<Backend, "attention"> = {
  /**
   * softmax(scale * q k^T + mask) v, one query row at a time: only a row of lk scores is held, never the whole
   * [lq, lk] matrix. Scores, the softmax and the weighted sum of values are accumulated in float64.
   * A row whose scores are all -Infinity (fully masked) gives zeros, as PyTorch's scaled_dot_product_attention.
   */
  attention(p: AttentionParams): void {
    const { batch, lq, lk, d, dv, scale, q, k, v, out } = p;
    const mask = p.mask ?? null;
    const mbs = p.maskBatchStride ?? 0;
    const mrs = p.maskRowStride ?? 0;
    const scores = new Float64Array(lk);
    const acc = new Float64Array(dv);
    for (let b = 0; b < batch; b++) {
      const kBase = b * lk * d;
      const vBase = b * lk * dv;
      for (let i = 0; i < lq; i++) {
        const qRow = (b * lq + i) * d;
        const mRow = b * mbs + i * mrs;
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < lk; j++) {
          const kRow = kBase + j * d;
          let dot = 0;
          for (let t = 0; t < d; t++) dot += q[qRow + t]! * k[kRow + t]!;
          const s = dot * scale + (mask ? mask[mRow + j]! : 0);
          scores[j] = s;
          if (s > max || Number.isNaN(s)) max = Number.isNaN(max) ? max : s;
        }
        const oRow = (b * lq + i) * dv;
        if (max === Number.NEGATIVE_INFINITY) {
          out.fill(0, oRow, oRow + dv);
          continue;
        }
        let sum = 0;
        acc.fill(0);
        for (let j = 0; j < lk; j++) {
          const e = Math.exp(scores[j]! - max);
          sum += e;
          const vRow = vBase + j * dv;
          for (let t = 0; t < dv; t++) acc[t]! += e * v[vRow + t]!;
        }
        for (let t = 0; t < dv; t++) out[oRow + t] = acc[t]! / sum;
      }
    }
  },
};
