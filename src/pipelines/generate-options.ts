// What a Stable Diffusion pipeline run takes and returns.
import type { Image } from "../io/image.js";
import type { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import type { Tensor } from "../tensor/tensor.js";
import type { GuidanceInterval } from "./guidance.js";
import type { GenerationSettings } from "./params.js";

/** Options of {@link StableDiffusionPipeline.generate}. */
export interface GenerateOptions {
  /** The prompt, or a list of prompts drawn in one batch (numImages images each, in order). */
  prompt: string | readonly string[];
  /** What to steer away from (default ""). */
  negativePrompt?: string;
  /** Image size in pixels, multiples of the VAE's downscale factor (default: the init image's size, else the UNet's
   * sample_size x factor: 512 for SD 1.x). */
  width?: number;
  height?: number;
  /** Inference steps (default 30). */
  steps?: number;
  /** Classifier-free guidance scale (default 7.5; <= 1 runs the conditional branch only). */
  guidanceScale?: number;
  /** Guidance rescale phi in [0, 1] (default 0; 0.7 is the paper's choice for zero-terminal-SNR models). */
  guidanceRescale?: number;
  /**
   * Guide only the steps whose noise level sigma lies in (sigmaMin, sigmaMax] (default: every step); the other steps
   * run the conditional branch alone, at half the cost. See {@link GuidanceInterval}.
   */
  guidanceInterval?: GuidanceInterval;
  /** Sampler name ("dpmpp-2m", "euler-a", "DPM++ 2M Karras", ...) on the model's schedule; default: its scheduler. */
  sampler?: string;
  /** Seed of the generator (default: a random 32-bit seed, reported in the result). */
  seed?: number | bigint;
  /** A generator to use instead of `seed`. */
  generator?: Generator;
  /**
   * The initial noise [numImages, C, h, w] instead of a draw (diffusers' `latents=`): scaled by the scheduler's
   * init sigma for text-to-image; the noise added to the init image's latents for image-to-image / inpainting.
   */
  latents?: Tensor;
  /** Images drawn at once per prompt (default 1). */
  numImages?: number;
  /** Image-to-image / inpainting source (8-bit image, resized to the size; or [B, 3, H, W] in [-1, 1]). */
  initImage?: Image | Tensor;
  /** How much of the init image to repaint: 1 = all noise (default 0.8 image-to-image, 1 inpainting). */
  strength?: number;
  /** Inpainting mask, the init image's size: white = repaint, black = keep. */
  mask?: Image | Tensor;
  /** Text-encoder layers to skip from the end (default 0; A1111's "Clip skip 2" is 1). */
  clipSkip?: number;
  /**
   * Progress: stage "sample" after every step (`values.t` the timestep, `sample` the latents after it), then
   * "decode".
   */
  onProgress?: ProgressCallback;
  /** Receives warnings (also returned in the result). */
  onWarning?: (message: string) => void;
  /** Stops between steps (throws the signal's reason). */
  signal?: AbortSignal;
}

/** What {@link StableDiffusionPipeline.generate} returns. */
export interface GenerateResult {
  images: Image[];
  /** The final latents [numImages, C, h, w] (before decoding). */
  latents: Tensor;
  /**
   * The parameters of the run (batchSize = all images; set batchPos per image when writing them; with a prompt
   * list, `prompt` is the first: take each image's from `prompts`).
   */
  settings: GenerationSettings;
  /** The prompt of each image. */
  prompts: string[];
  warnings: string[];
}
