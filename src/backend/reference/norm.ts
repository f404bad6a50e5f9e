import type { Backend } from "../backend.js";

// Group norm and layer norm normalise contiguous slices: a group of (c / groups) channels of one sample is one
// contiguous run of m = (c / groups) * spatial values; a layer-norm row is a run of `cols` values. Statistics use
// the biased variance (as PyTorch) computed in two passes in float64.
//
// Backward (for one slice of m values, xhat = (x - mean) * rstd, dy_w = dy * weight):
//   dx = rstd * (dy_w - mean(dy_w) - xhat * mean(dy_w * xhat)),   dweight = sum dy * xhat,   dbias = sum dy.

/** Mean and 1/std of x[base .. base + m). */
function moments(x: Float32Array, base: number, m: number, eps: number): [number, number] {
  let s = 0;
  for (let j = 0; j < m; j++) s += x[base + j]!;
  const mu = m > 0 ? s / m : 0;
  let v = 0;
  for (let j = 0; j < m; j++) {
    const d = x[base + j]! - mu;
    v += d * d;
  }
  return [mu, 1 / Math.sqrt((m > 0 ? v / m : 0) + eps)];
}

export const normKernels: Pick<
  Backend,
  "groupNorm" | "groupNormBackward" | "layerNorm" | "layerNormBackward"
> = {
  groupNorm(x, weight, bias, out, mean, rstd, n, c, spatial, groups, eps, silu): void {
    const cpg = c / groups;
    const m = cpg * spatial;
    for (let i = 0; i < n * groups; i++) {
      const [mu, r] = moments(x, i * m, m, eps);
      mean[i] = mu;
      rstd[i] = r;
      const g = i % groups;
      for (let cl = 0; cl < cpg; cl++) {
        const ch = g * cpg + cl;
        // y = (x - mu) * r * w + b = x * a + shift
        const a = r * (weight ? weight[ch]! : 1);
        const shift = (bias ? bias[ch]! : 0) - mu * a;
        const base = i * m + cl * spatial;
        for (let s = 0; s < spatial; s++) {
          const y = x[base + s]! * a + shift;
          out[base + s] = silu ? y / (1 + Math.exp(-y)) : y;
        }
      }
    }
  },

  groupNormBackward(
    gradOut,
    x,
    weight,
    mean,
    rstd,
    gradX,
    gradWeight,
    gradBias,
    n,
    c,
    spatial,
    groups,
  ): void {
    const cpg = c / groups;
    const m = cpg * spatial;
    const dw = new Float64Array(c);
    const db = new Float64Array(c);
    for (let i = 0; i < n * groups; i++) {
      const mu = mean[i]!;
      const r = rstd[i]!;
      const g = i % groups;
      let sumDyW = 0;
      let sumDyWXhat = 0;
      for (let cl = 0; cl < cpg; cl++) {
        const ch = g * cpg + cl;
        const base = i * m + cl * spatial;
        let a = 0;
        let b = 0;
        for (let s = 0; s < spatial; s++) {
          const dy = gradOut[base + s]!;
          a += dy * (x[base + s]! - mu) * r;
          b += dy;
        }
        dw[ch]! += a;
        db[ch]! += b;
        const wc = weight ? weight[ch]! : 1;
        sumDyW += wc * b;
        sumDyWXhat += wc * a;
      }
      const meanDyW = sumDyW / m;
      const meanDyWXhat = sumDyWXhat / m;
      for (let cl = 0; cl < cpg; cl++) {
        const ch = g * cpg + cl;
        const wc = weight ? weight[ch]! : 1;
        const base = i * m + cl * spatial;
        for (let s = 0; s < spatial; s++) {
          const xhat = (x[base + s]! - mu) * r;
          gradX[base + s] = r * (gradOut[base + s]! * wc - meanDyW - xhat * meanDyWXhat);
        }
      }
    }
    if (gradWeight) gradWeight.set(dw);
    if (gradBias) gradBias.set(db);
  },

  layerNorm(x, weight, bias, out, mean, rstd, rows, cols, eps): void {
    for (let i = 0; i < rows; i++) {
      const base = i * cols;
      const [mu, r] = moments(x, base, cols, eps);
      mean[i] = mu;
      rstd[i] = r;
      for (let j = 0; j < cols; j++) {
        const y = (x[base + j]! - mu) * r;
        out[base + j] = (weight ? y * weight[j]! : y) + (bias ? bias[j]! : 0);
      }
    }
  },

  layerNormBackward(gradOut, x, weight, mean, rstd, gradX, gradWeight, gradBias, rows, cols): void {
    const dw = new Float64Array(cols);
    const db = new Float64Array(cols);
    for (let i = 0; i < rows; i++) {
      const base = i * cols;
      const mu = mean[i]!;
      const r = rstd[i]!;
      let sumDyW = 0;
      let sumDyWXhat = 0;
      for (let j = 0; j < cols; j++) {
        const dy = gradOut[base + j]!;
        const xhat = (x[base + j]! - mu) * r;
        const dyw = dy * (weight ? weight[j]! : 1);
        dw[j]! += dy * xhat;
        db[j]! += dy;
        sumDyW += dyw;
        sumDyWXhat += dyw * xhat;
      }
      const meanDyW = sumDyW / cols;
      const meanDyWXhat = sumDyWXhat / cols;
      for (let j = 0; j < cols; j++) {
        const xhat = (x[base + j]! - mu) * r;
        const dyw = gradOut[base + j]! * (weight ? weight[j]! : 1);
        gradX[base + j] = r * (dyw - meanDyW - xhat * meanDyWXhat);
      }
    }
    if (gradWeight) gradWeight.set(dw);
    if (gradBias) gradBias.set(db);
  },
};
