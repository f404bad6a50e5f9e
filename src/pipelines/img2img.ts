// Image-to-image (SDEdit, Meng et al. 2022): the init image is encoded, noised to an intermediate timestep and
// denoised from there. `strength` picks that timestep by truncating the schedule exactly as diffusers'
// `get_timesteps`.
import { type Image, imageToTensor } from "../io/image-tensor.js";
import type { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import { mul } from "../ops/index.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import type { Generator } from "../tensor/generator.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { PipelineError } from "./errors.js";
import { resizeImage } from "./resize.js";

/** The part of the schedule an image-to-image run goes through. */
export interface StrengthSchedule {
  /** The timesteps left (from `startIndex` on). */
  timesteps: number[];
  /** Index into `scheduler.timesteps` of the first one (set as the scheduler's begin index). */
  startIndex: number;
  /** Inference steps actually run (diffusers' second return value). */
  numSteps: number;
}

/** Throws unless strength is in [0, 1]. */
export function checkStrength(strength: number): void {
  if (!Number.isFinite(strength) || strength < 0 || strength > 1) {
    throw new PipelineError(`strength must be in [0, 1] (1 = ignore the init image), got ${strength}`);
  }
}

/**
 * Truncates the schedule for `strength` after `scheduler.setTimesteps(steps)`: init = min(floor(steps * strength),
 * steps), t_start = steps - init, timesteps = timesteps[t_start * order:], and sets the scheduler's begin index
 * there (diffusers' `get_timesteps`). Throws when no step is left.
 */
export function strengthTimesteps(scheduler: Scheduler, steps: number, strength: number): StrengthSchedule {
  checkStrength(strength);
  const init = Math.min(Math.floor(steps * strength), steps);
  const tStart = Math.max(steps - init, 0);
  const startIndex = tStart * scheduler.order;
  const timesteps = scheduler.timesteps.slice(startIndex);
  scheduler.setBeginIndex(startIndex);
  if (timesteps.length === 0 || steps - tStart < 1) {
    const need = Math.ceil(1 / Math.max(strength, 1e-9));
    throw new PipelineError(
      `strength ${strength} with ${steps} steps leaves no denoising step (floor(steps * strength) = ${init}); raise strength, or use at least ${need} steps`,
    );
  }
  return { timesteps, startIndex, numSteps: steps - tStart };
}

/**
 * An init image as a [B, 3, height, width] tensor in [-1, 1]: an 8-bit image is resized (Lanczos) to the size
 * when it differs; a tensor ([B, 3, H, W] in [-1, 1]) must already have it.
 */
export function preprocessImage(image: Image | Tensor, width: number, height: number): Tensor {
  if (isImage(image)) return imageToTensor(resizeImage(image, width, height), [-1, 1], 3);
  if (image.ndim !== 4 || image.shape[1] !== 3 || image.shape[2] !== height || image.shape[3] !== width) {
    throw new PipelineError(
      `initImage tensor must be [B, 3, ${height}, ${width}] in [-1, 1] (or pass an Image, which is resized), got ${formatShape(image.shape)}`,
    );
  }
  return image;
}

/** Width and height of an Image or of a [B, C, H, W] tensor. */
export function pixelSize(image: Image | Tensor): { width: number; height: number } {
  if (isImage(image)) return { width: image.width, height: image.height };
  if (image.ndim !== 4) {
    throw new PipelineError(`expected an image tensor [B, C, H, W], got ${formatShape(image.shape)}`);
  }
  return { width: image.shape[3]!, height: image.shape[2]! };
}

/** True for an 8-bit {@link Image} (as opposed to a tensor). */
export function isImage(x: Image | Tensor): x is Image {
  return (x as Image).data instanceof Uint8Array && typeof (x as Image).channels === "number";
}

/**
 * Encodes images [B, 3, H, W] in [-1, 1] to scaled latents: a sample of the VAE's posterior drawn from `generator`
 * (diffusers' `retrieve_latents(..., sample_mode="sample")`), times `scaling_factor`.
 */
export function encodeImageLatents(vae: AutoencoderKL, images: Tensor, generator: Generator): Tensor {
  const dist = vae.encode(images).latentDist;
  return mul(dist.sample(generator), vae.config.scaling_factor);
}
