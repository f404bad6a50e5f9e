// The latent grid of a latent-diffusion pipeline: image size checks against the VAE's downscale factor, the
// seeded initial noise (torch-compatible, so it equals diffusers' on CPU) and finiteness checks.
import { randn } from "../tensor/create.js";
import type { Generator } from "../tensor/generator.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { PipelineError } from "./errors.js";

/** The two multiples of `factor` closest to `n` (below and above; one value when n is below `factor`). */
export function nearestMultiples(n: number, factor: number): number[] {
  const below = Math.floor(n / factor) * factor;
  const above = below + factor;
  return below >= factor ? [below, above] : [above];
}

/**
 * Throws a PipelineError unless width and height are positive integers divisible by the VAE's downscale factor
 * (8 for Stable Diffusion); the message names the nearest valid sizes.
 */
export function checkImageSize(width: number, height: number, factor: number): void {
  for (const [name, v] of [
    ["width", width],
    ["height", height],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new PipelineError(`${name} must be a positive integer number of pixels, got ${v}`);
    }
    if (v % factor !== 0) {
      const near = nearestMultiples(v, factor);
      throw new PipelineError(
        `${name} ${v} is not a multiple of ${factor} (the VAE's downscale factor); nearest valid ${name}s: ${near.join(" or ")}`,
      );
    }
  }
}

/** Shape [batch, channels, height / factor, width / factor] of the latents for an image size. */
export function latentShape(
  batch: number,
  channels: number,
  width: number,
  height: number,
  factor: number,
): number[] {
  checkImageSize(width, height, factor);
  return [batch, channels, height / factor, width / factor];
}

/**
 * The initial noise of a run: one draw of the whole batch from `generator`, as diffusers' `randn_tensor(shape,
 * generator)` on CPU (`torch.randn(shape, generator=g)`), so the same seed gives diffusers' starting latents.
 */
export function initialNoise(shape: readonly number[], generator: Generator): Tensor {
  return randn(shape, { generator });
}

/** Throws unless `latents` has exactly `shape` (explicit latents passed to a pipeline). */
export function checkLatentsShape(latents: Tensor, shape: readonly number[]): void {
  if (latents.shape.length !== shape.length || latents.shape.some((d, i) => d !== shape[i])) {
    throw new PipelineError(
      `latents must have shape ${formatShape(shape)} (batch, latent channels, height / f, width / f), got ${formatShape(latents.shape)}`,
    );
  }
}

/** Index of the first NaN or infinite value, or -1. */
export function firstNonFinite(t: Tensor): number {
  const data = t.toFloat32Array();
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return i;
  return -1;
}

/** Throws a PipelineError naming `what` when `t` holds a NaN or an infinity; `hint` says what to try. */
export function assertFinite(t: Tensor, what: string, hint: string): void {
  const i = firstNonFinite(t);
  if (i >= 0) {
    const v = t.toFloat32Array()[i];
    throw new PipelineError(`${what} contain ${v} (element ${i} of ${formatShape(t.shape)}); ${hint}`);
  }
}
