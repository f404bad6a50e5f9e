import type { Backend } from "../backend.js";

export const reduceKernels: Pick<Backend, "reduce" | "softmax"> = {
  reduce(op, x, outer, n, inner, out): void {
    for (let o = 0; o < outer; o++) {
      const base = o * n * inner;
      for (let i = 0; i < inner; i++) {
        let p = base + i;
        if (op === "sum") {
          // accumulate in float64: the reference is the accurate answer
          let s = 0;
          for (let j = 0; j < n; j++, p += inner) s += x[p]!;
          out[o * inner + i] = s;
        } else {
          let best = n > 0 ? x[p]! : op === "max" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
          let bestIdx = 0;
          const wantMax = op === "max" || op === "argmax";
          for (let j = 1; j < n; j++) {
            p += inner;
            const v = x[p]!;
            // NaN propagates (it wins every comparison), as in PyTorch
            if (Number.isNaN(best)) break;
            if (Number.isNaN(v) || (wantMax ? v > best : v < best)) {
              best = v;
              bestIdx = j;
            }
          }
          out[o * inner + i] = op === "argmax" || op === "argmin" ? bestIdx : best;
        }
      }
    }
  },

  softmax(x, out, rows, cols, log): void {
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < cols; j++) max = Math.max(max, x[base + j]!);
      if (max === Number.NEGATIVE_INFINITY) max = 0; // fully masked row: exp(-inf) = 0 everywhere
      let sum = 0;
      for (let j = 0; j < cols; j++) sum += Math.exp(x[base + j]! - max);
      if (log) {
        const lse = max + Math.log(sum);
        for (let j = 0; j < cols; j++) out[base + j] = x[base + j]! - lse;
      } else {
        const inv = 1 / sum;
        for (let j = 0; j < cols; j++) out[base + j] = Math.exp(x[base + j]! - max) * inv;
      }
    }
  },
};
