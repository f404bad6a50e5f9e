import type { AdamWParams, Backend, SgdParams } from "../backend.js";

/** Optimizer and weight-averaging updates, in place on contiguous float32 arrays (float64 arithmetic per element). */
export const optimKernels: Pick<Backend, "adamw" | "sgd" | "lerpTo"> = {
  adamw(p: AdamWParams): void {
    const { param: x, grad: g, expAvg: m, expAvgSq: v, maxExpAvgSq: vmax, size } = p;
    const { beta1, beta2, eps, decay, stepSize, bc2Sqrt } = p;
    for (let i = 0; i < size; i++) {
      const gi = g[i]!;
      const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
      let vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
      if (vmax) vi = vmax[i] = Math.max(vmax[i]!, vi);
      x[i] = x[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
    }
  },

  sgd(p: SgdParams): void {
    const { param: x, grad: g, momentumBuffer: buf, first, size } = p;
    const { lr, momentum, dampening, weightDecay, nesterov } = p;
    if (!buf) {
      for (let i = 0; i < size; i++) x[i] = x[i]! - lr * (g[i]! + weightDecay * x[i]!);
      return;
    }
    for (let i = 0; i < size; i++) {
      const d = g[i]! + weightDecay * x[i]!;
      const b = (buf[i] = first ? d : momentum * buf[i]! + (1 - dampening) * d);
      x[i] = x[i]! - lr * (nesterov ? d + momentum * b : b);
    }
  },

  lerpTo(avg: Float32Array, x: Float32Array, weight: number, size: number): void {
    for (let i = 0; i < size; i++) avg[i] = avg[i]! - weight * (avg[i]! - x[i]!);
  },
};
