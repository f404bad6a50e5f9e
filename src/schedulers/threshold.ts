// Keeping predicted x0 in range: plain clipping, and Imagen's dynamic thresholding (Saharia et al. 2022, sec. 2.3).
import { clamp, div, maximum, minimum, neg } from "../ops/elementwise.js";
import { reshape } from "../ops/view.js";
import { tensor } from "../tensor/create.js";
import { DeviceError } from "../tensor/device.js";
import type { Tensor } from "../tensor/tensor.js";

/** The `ratio` quantile of each row of `rows` (torch.quantile, linear interpolation), in float32. */
function rowQuantiles(data: Float32Array, rows: number, cols: number, ratio: number): Float32Array {
  const out = new Float32Array(rows);
  const pos = ratio * (cols - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, cols - 1);
  const w = Math.fround(pos - lo);
  for (let r = 0; r < rows; r++) {
    const row = data.slice(r * cols, (r + 1) * cols).sort();
    const a = row[lo]!;
    const b = row[hi]!;
    // torch.lerp: start + w * (end - start) for w < 0.5, else end - (end - start) * (1 - w)
    out[r] =
      w < 0.5
        ? Math.fround(a + Math.fround(w * Math.fround(b - a)))
        : Math.fround(b - Math.fround(Math.fround(b - a) * Math.fround(1 - w)));
  }
  return out;
}

/**
 * Dynamic thresholding: per sample, s = the `ratio` quantile of |x0| clamped to [1, maxValue]; x0 is clamped to
 * [-s, s] and divided by s.
 */
export function dynamicThreshold(x0: Tensor, ratio: number, maxValue: number): Tensor {
  if (x0.device !== "cpu") {
    throw new DeviceError(
      `dynamic thresholding (thresholding: true) takes a quantile on the CPU and would read the sample back every step; it is not available on device ${x0.device} (turn it off, or sample on the CPU)`,
    );
  }
  const batch = x0.shape[0] ?? 1;
  const per = x0.size / batch;
  const abs = x0.toFloat32Array().map(Math.abs);
  const s = rowQuantiles(abs, batch, per, ratio).map((v) => Math.min(Math.max(v, 1), maxValue));
  const st = tensor(s, [batch, ...x0.shape.slice(1).map(() => 1)]);
  return reshape(div(maximum(minimum(x0, st), neg(st)), st), x0.shape);
}

/** Clamps x0 to [-range, range] (diffusers' `clip_sample`). */
export function clipSample(x0: Tensor, range: number): Tensor {
  return clamp(x0, -range, range);
}

/** The x0 limits a config asks for: dynamic thresholding when `thresholding`, else clipping when `clip_sample`. */
export function limitPredictedX0(
  x0: Tensor,
  config: {
    thresholding?: unknown;
    dynamic_thresholding_ratio?: unknown;
    sample_max_value?: unknown;
    clip_sample?: unknown;
    clip_sample_range?: unknown;
  },
): Tensor {
  if (config.thresholding === true) {
    return dynamicThreshold(
      x0,
      config.dynamic_thresholding_ratio as number,
      config.sample_max_value as number,
    );
  }
  if (config.clip_sample === true) return clipSample(x0, config.clip_sample_range as number);
  return x0;
}
