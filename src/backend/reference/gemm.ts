import type { Backend, GemmParams } from "../backend.js";

export const gemmKernels: Pick<Backend, "gemm"> = {
  /** Textbook triple loop (i, p, j order so the inner loop walks a row of B), accumulating in float64. */
  gemm(p: GemmParams): void {
    const { batch, m, n, k, a, b, out, alpha, bias } = p;
    const biasRows = p.biasRows ?? null;
    const residual = p.residual ?? null;
    const row = new Float64Array(n);
    for (let bi = 0; bi < batch; bi++) {
      const aBase = p.aOffset + bi * p.aBatchStride;
      const bBase = p.bOffset + bi * p.bBatchStride;
      const oBase = p.outOffset + bi * m * n;
      const rBase = (p.residualOffset ?? 0) + bi * m * n;
      for (let i = 0; i < m; i++) {
        row.fill(0);
        for (let q = 0; q < k; q++) {
          const av = a[aBase + i * p.aRowStride + q * p.aColStride]!;
          if (av === 0) continue;
          let pb = bBase + q * p.bRowStride;
          const cs = p.bColStride;
          for (let j = 0; j < n; j++, pb += cs) row[j]! += av * b[pb]!;
        }
        const o = oBase + i * n;
        const rowBias = biasRows ? biasRows[i]! : 0;
        for (let j = 0; j < n; j++) {
          const v = alpha * row[j]! + (bias ? bias[j]! : 0) + rowBias;
          out[o + j] = p.accumulate ? out[o + j]! + v : v;
        }
        // rounded to float32 first, then the residual added: the order of the fused native kernel
        if (residual) for (let j = 0; j < n; j++) out[o + j] = out[o + j]! + residual[rBase + i * n + j]!;
      }
    }
  },
};
