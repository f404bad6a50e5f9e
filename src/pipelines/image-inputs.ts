// Starting latents of image-to-image and inpainting runs, in diffusers' order of random draws (so a seed gives
// diffusers' numbers): image-to-image encodes the init image (posterior sample), then draws the noise;
// inpainting encodes the init image when it needs its latents, draws the noise, then encodes the masked image.
import type { Image } from "../io/image.js";
import type { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import { cat, mul, toDevice } from "../ops/index.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { noGrad } from "../tensor/autograd.js";
import type { Generator } from "../tensor/generator.js";
import type { Tensor } from "../tensor/tensor.js";
import type { InpaintState } from "./denoise.js";
import { PipelineError } from "./errors.js";
import { encodeImageLatents, preprocessImage, strengthTimesteps } from "./img2img.js";
import { checkMaskSize, maskedImage, maskToLatentGrid, preprocessMask } from "./inpaint.js";
import { initialNoise } from "./latents.js";

/** Inputs of {@link prepareImageInputs}. */
export interface ImageInputs {
  vae: AutoencoderKL;
  /** True for a 9-channel inpainting UNet. */
  inpaintingUNet: boolean;
  /** A fresh scheduler; setTimesteps(steps) already called. */
  scheduler: Scheduler;
  steps: number;
  strength: number;
  initImage: Image | Tensor;
  mask?: Image | Tensor;
  size: { width: number; height: number };
  /** Latent shape [B, C, h, w]. */
  shape: readonly number[];
  generator: Generator;
  /** Explicit noise (instead of drawing it). */
  latents?: Tensor;
}

/** The starting point of the loop. */
export interface PreparedImageRun {
  timesteps: number[];
  latents: Tensor;
  strength: number;
  inpaint?: InpaintState;
}

/** [x; x; ...] k times along the batch (diffusers' repeat for images per prompt). */
function tile(x: Tensor, k: number): Tensor {
  return k === 1 ? x : cat(new Array<Tensor>(k).fill(x), 0);
}

/** Truncates the schedule for `strength` and builds the starting latents (and inpainting state). */
export function prepareImageInputs(a: ImageInputs): PreparedImageRun {
  const { vae, scheduler, generator, shape } = a;
  if (a.mask) checkMaskSize(a.mask, a.initImage);
  const { timesteps } = strengthTimesteps(scheduler, a.steps, a.strength);
  const { width, height } = a.size;
  const device = vae.device;
  const image = toDevice(preprocessImage(a.initImage, width, height), device);
  const given = a.latents ? toDevice(a.latents, device) : undefined;
  const n = shape[0]!;
  const b0 = image.shape[0]!;
  if (n % b0 !== 0) {
    throw new PipelineError(
      `${b0} init images cannot make a batch of ${n}; give numImages as a multiple of ${b0}`,
    );
  }
  const t0 = timesteps[0]!;
  const encode = (x: Tensor) => tile(encodeImageLatents(vae, x, generator), n / b0);
  return noGrad(() => {
    if (!a.mask) {
      const imageLatents = encode(image);
      const noise = given ?? initialNoise(shape, generator, device);
      return { timesteps, latents: scheduler.addNoise(imageLatents, noise, t0), strength: a.strength };
    }
    const full = a.strength === 1;
    const imageLatents = !a.inpaintingUNet || !full ? encode(image) : undefined;
    const noise = given ?? initialNoise(shape, generator, device);
    const latents = full
      ? mul(noise, scheduler.initNoiseSigma)
      : scheduler.addNoise(imageLatents!, noise, t0);
    const maskPx = toDevice(preprocessMask(a.mask, width, height), device);
    // diffusers encodes the masked image for every UNet (only 9-channel ones read it); the draw keeps seeds aligned
    const maskedLatents = encode(maskedImage(image, maskPx));
    const mask = tile(maskToLatentGrid(maskPx, vae.downscaleFactor), n);
    const inpaint: InpaintState = a.inpaintingUNet
      ? { mask, maskedImageLatents: maskedLatents, noise }
      : { mask, imageLatents: imageLatents!, noise };
    return { timesteps, latents, strength: a.strength, inpaint };
  });
}
