// The latent grid of a latent-diffusion pipeline: image size checks against the VAE's downscale factor, the
// seeded initial noise (torch-compatible, so it equals diffusers' on CPU) and finiteness checks.
import { type Image, imagesFromPixels } from "../io/image-tensor.js";
import { randn } from "../tensor/create.js";
import type { Device } from "../tensor/device.js";
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
export function initialNoise(shape: readonly number[], generator: Generator, device: Device = "cpu"): Tensor {
  return randn(shape, { generator, device });
}

/** Throws unless `latents` has exactly `shape` (explicit latents passed to a pipeline). */
export function checkLatentsShape(latents: Tensor, shape: readonly number[]): void {
  if (latents.shape.length !== shape.length || latents.shape.some((d, i) => d !== shape[i])) {
    throw new PipelineError(
      `latents must have shape ${formatShape(shape)} (batch, latent channels, height / f, width / f), got ${formatShape(latents.shape)}`,
    );
  }
}

/** Index of the first NaN or infinite value of values read back, or -1. */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return i;
  return -1;
}

/**
 * Throws a PipelineError naming `what` when `t` holds a NaN or an infinity; `hint` says what to try. Reads `t` (or
 * takes `values` already read from it).
 */
export function assertFinite(t: Tensor, what: string, hint: string, values = t.toFloat32Array()): void {
  const i = firstNonFinite(values);
  if (i >= 0) {
    throw new PipelineError(
      `${what} contain ${values[i]} (element ${i} of ${formatShape(t.shape)}); ${hint}`,
    );
  }
}

/**
 * {@link assertFinite} for CPU tensors, where reading them costs nothing; tensors on other devices are checked once
 * at the end instead (the final image, see {@link decodedImages}), since each check would be a readback.
 */
export function assertFiniteOnCpu(t: Tensor, what: string, hint: string): void {
  if (t.device === "cpu") assertFinite(t, what, hint);
}

/** The images of a decoded batch [B, C, H, W] in [-1, 1]: one readback, checked for NaN/Inf first. */
export async function decodedImages(decoded: Tensor): Promise<Image[]> {
  const pixels = await decoded.toFloat32ArrayAsync();
  assertFinite(
    decoded,
    "the decoded images",
    "the UNet or the VAE produced NaN/Inf: check the model weights and dtype, and lower the guidance scale",
    pixels,
  );
  return imagesFromPixels(pixels, decoded.shape);
}

/** What to try when the UNet produces NaN/Inf. */
export const NON_FINITE_HINT =
  "the UNet produced NaN/Inf: check the model weights and dtype, and lower the guidance scale";
