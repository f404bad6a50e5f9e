// Classifier-free guidance (Ho & Salimans 2022): the UNet runs once on the batch [unconditional; conditional] and
// the two predictions are mixed as e_u + g (e_c - e_u). Guidance rescale (Lin et al. 2024, "Common Diffusion Noise
// Schedules and Sample Steps are Flawed", eq. 15-16) pulls the guided prediction's std back toward the
// conditional one's to avoid over-exposure at high g. A guidance interval (Kynkäänniemi et al. 2024, "Applying
// Guidance in a Limited Interval Improves Sample and Distribution Quality in Diffusion Models") guides only the steps
// whose noise level lies in (sigmaMin, sigmaMax]: guidance at high noise mostly collapses the variety of the layouts.

import { add, cat, div, mul, narrow, sqrt, sub, variance } from "../ops/index.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { tensor } from "../tensor/create.js";
import type { Device } from "../tensor/device.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { PipelineError } from "./errors.js";

/** Guidance scales above this burn images out (over-saturated, high contrast); 7-10 is the usual range. */
export const GUIDANCE_WARN_ABOVE = 15;

/** True when the pipeline runs both branches (diffusers: guidance_scale > 1). */
export function usesGuidance(guidanceScale: number): boolean {
  return guidanceScale > 1;
}

/** A warning for guidance scales that burn images out, or null. */
export function guidanceWarning(guidanceScale: number): string | null {
  if (guidanceScale <= GUIDANCE_WARN_ABOVE) return null;
  return `guidance scale ${guidanceScale} is above ${GUIDANCE_WARN_ABOVE}: images tend to burn out (over-saturated, harsh contrast); 7-10 is the usual range`;
}

/** Throws unless the guidance parameters are usable. */
export function checkGuidance(guidanceScale: number, guidanceRescale: number): void {
  if (!Number.isFinite(guidanceScale) || guidanceScale < 0) {
    throw new PipelineError(`guidanceScale must be a finite number >= 0, got ${guidanceScale}`);
  }
  if (!Number.isFinite(guidanceRescale) || guidanceRescale < 0 || guidanceRescale > 1) {
    throw new PipelineError(`guidanceRescale must be in [0, 1], got ${guidanceRescale}`);
  }
}

/**
 * The noise levels sigma = sqrt((1 - alpha_bar_t) / alpha_bar_t) whose steps are guided: sigmaMin < sigma <=
 * sigmaMax. Outside it a step runs the conditional branch alone (half the UNet batch).
 */
export interface GuidanceInterval {
  sigmaMin: number;
  /** May be Infinity (no upper bound). */
  sigmaMax: number;
}

/** Throws unless `interval` is a usable {@link GuidanceInterval}. */
export function checkGuidanceInterval(interval: GuidanceInterval): void {
  const { sigmaMin, sigmaMax } = interval;
  if (!(Number.isFinite(sigmaMin) && sigmaMin >= 0) || Number.isNaN(sigmaMax) || !(sigmaMax > sigmaMin)) {
    throw new PipelineError(
      `a guidance interval needs 0 <= sigmaMin < sigmaMax (sigmaMax may be Infinity), got (${sigmaMin}, ${sigmaMax}]`,
    );
  }
}

/**
 * The training-schedule noise level of timestep `t`: sqrt((1 - alpha_bar_t) / alpha_bar_t), interpolated in log
 * sigma between the neighbouring integer timesteps for fractional `t` (as k-diffusion maps t to sigma).
 */
export function timestepSigma(scheduler: Scheduler, t: number): number {
  const ac = scheduler.alphasCumprod;
  const clamped = Math.min(Math.max(t, 0), ac.length - 1);
  const lo = Math.floor(clamped);
  const hi = Math.min(lo + 1, ac.length - 1);
  // alpha-bar 0 (a zero-terminal-SNR schedule's last step) is infinite noise
  const logSigma = (i: number) =>
    ac[i]! > 0 ? 0.5 * Math.log((1 - ac[i]!) / ac[i]!) : Number.POSITIVE_INFINITY;
  const w = clamped - lo;
  if (w === 0) return Math.exp(logSigma(lo));
  return Math.exp((1 - w) * logSigma(lo) + w * logSigma(hi));
}

/** Parses "LO,HI" (HI may be "inf") into a checked {@link GuidanceInterval}. */
export function parseGuidanceInterval(text: string): GuidanceInterval {
  const parts = text.split(",").map((p) => p.trim());
  const value = (p: string | undefined) =>
    p === undefined || p === ""
      ? Number.NaN
      : /^\+?inf(inity)?$/i.test(p)
        ? Number.POSITIVE_INFINITY
        : Number(p);
  const interval = { sigmaMin: value(parts[0]), sigmaMax: value(parts[1]) };
  if (parts.length !== 2 || Number.isNaN(interval.sigmaMin) || Number.isNaN(interval.sigmaMax)) {
    throw new PipelineError(
      `a guidance interval is "SIGMA_MIN,SIGMA_MAX" (e.g. "0.3,5" or "0,inf"), got "${text}"`,
    );
  }
  checkGuidanceInterval(interval);
  return interval;
}

/** "LO,HI" as {@link parseGuidanceInterval} reads it. */
export function formatGuidanceInterval(interval: GuidanceInterval): string {
  const f = (v: number) => (v === Number.POSITIVE_INFINITY ? "inf" : String(v));
  return `${f(interval.sigmaMin)},${f(interval.sigmaMax)}`;
}

/** True when the step at timestep `t` is guided under `interval` (always, without an interval). */
export function guidedAt(scheduler: Scheduler, t: number, interval: GuidanceInterval | undefined): boolean {
  if (!interval) return true;
  const sigma = timestepSigma(scheduler, t);
  return sigma > interval.sigmaMin && sigma <= interval.sigmaMax;
}

/** The conditional half of a [uncond; cond] guidance batch. */
export function conditionalHalf(x: Tensor): Tensor {
  const n = x.shape[0]!;
  if (n % 2 !== 0) {
    throw new PipelineError(`a guidance batch [uncond; cond] is even, got ${formatShape(x.shape)}`);
  }
  return narrow(x, 0, n / 2, n / 2);
}

/** The UNet input of a guided step: [x; x] (unconditional half first), or x alone without guidance. */
export function guidanceBatch(x: Tensor, guided: boolean): Tensor {
  return guided ? cat([x, x], 0) : x;
}

/**
 * Splits the UNet output of the batch [uncond; cond] (2B samples) into its halves and returns e_u + g (e_c - e_u),
 * then rescaled by `rescale` (phi) when it is > 0. Also returns the conditional half. `guidanceScale` is one number,
 * or a tensor of one scale per sample ([B, 1, 1, 1]: guidance-distillation draws a scale per sample).
 */
export function applyGuidance(
  output: Tensor,
  guidanceScale: number | Tensor,
  rescale = 0,
): { guided: Tensor; cond: Tensor; uncond: Tensor } {
  const n = output.shape[0]!;
  if (n % 2 !== 0) {
    throw new PipelineError(
      `classifier-free guidance needs an even batch [uncond; cond], got ${formatShape(output.shape)}`,
    );
  }
  const uncond = narrow(output, 0, 0, n / 2);
  const cond = narrow(output, 0, n / 2, n / 2);
  let guided = add(uncond, mul(sub(cond, uncond), guidanceScale));
  if (rescale > 0) guided = rescaleGuidance(guided, cond, rescale);
  return { guided, cond, uncond };
}

/**
 * Guidance rescale: with s_c and s_g the per-sample standard deviations (unbiased, over all non-batch dims) of the
 * conditional and the guided prediction, returns phi (guided s_c / s_g) + (1 - phi) guided.
 */
export function rescaleGuidance(guided: Tensor, cond: Tensor, phi: number): Tensor {
  const dims = Array.from({ length: guided.ndim - 1 }, (_, i) => i + 1);
  const stdCond = sqrt(variance(cond, dims, { keepdim: true }));
  const stdGuided = sqrt(variance(guided, dims, { keepdim: true }));
  const rescaled = mul(guided, div(stdCond, stdGuided));
  return add(mul(rescaled, phi), mul(guided, 1 - phi));
}

/**
 * The guidance-scale embedding of guidance-distilled UNets (config `time_cond_proj_dim`, e.g. LCM; Meng et al.
 * 2023 "On Distillation of Guided Diffusion Models"): sinusoids of w * 1000 with `dim` channels, [sin | cos], for
 * each w in `scales` (diffusers feeds guidance_scale - 1). Returns [B, dim].
 */
export function guidanceScaleEmbedding(
  scales: readonly number[],
  dim: number,
  device: Device = "cpu",
): Tensor {
  const half = Math.floor(dim / 2);
  const out = new Float32Array(scales.length * dim);
  const step = Math.fround(Math.log(10000) / (half - 1));
  scales.forEach((w, b) => {
    const wf = Math.fround(w * 1000);
    for (let i = 0; i < half; i++) {
      const arg = Math.fround(wf * Math.fround(Math.exp(Math.fround(i * -step))));
      out[b * dim + i] = Math.sin(arg);
      out[b * dim + half + i] = Math.cos(arg);
    }
  });
  return tensor(out, [scales.length, dim], { device });
}
