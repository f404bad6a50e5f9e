// Training a text-conditioned latent diffusion UNet (Rombach et al. 2022, Sec. 3.3): the images' posteriors are
// computed once by the frozen VAE, and per step a latent is drawn from each (times scaling_factor), a caption is
// drawn for each image and encoded by the frozen text encoder (its last hidden state, as Stable Diffusion 1.x),
// replaced by the empty prompt with probability `condDropout` for classifier-free guidance (Ho & Salimans 2022),
// and the UNet regresses the DDPM target (epsilon or v) of the noised latent with an MSE loss.
import type { CLIPTextModel } from "../models/clip/text-model.js";
import type { CLIPTokenizer } from "../models/clip/tokenizer.js";
import type { UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import type { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import { mse_loss, toDevice } from "../ops/index.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { noGrad } from "../tensor/autograd.js";
import { randn, tensor } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import type { Tensor } from "../tensor/tensor.js";
import { type EmojiSet, emojiCaption } from "./data/emoji.js";
import type { LabeledBatch } from "./data/loader.js";
import { CaptionEncoder, latentLoaderData, latentLoaderShape, sampleLatents } from "./text-latents.js";
import {
  type BatchLoss,
  type OptimOptions,
  type ResolvedOptimOptions,
  resolveOptimOptions,
  TrainerBase,
} from "./trainer-base.js";

/** Hyperparameters of {@link TextToImageTrainer} (batch size default 64). */
export interface TextToImageTrainOptions extends OptimOptions {
  /** Probability of training on the empty prompt (default 0.1). */
  condDropout?: number;
}

/** The resolved hyperparameters, as saved with checkpoints. */
export type ResolvedTextToImageOptions = ResolvedOptimOptions & { condDropout: number };

/** The images' latent posteriors: [count, 2C, h, w] (means, then standard deviations), and the VAE's scale. */
export interface LatentSet {
  readonly moments: Float32Array;
  readonly count: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly scalingFactor: number;
}

/**
 * Square RGB images to encode, [count, 3, size, size] in [-1, 1]: all in memory (`images`, e.g. an EmojiSet), or
 * read `n` at a time from `start` (`read`, so a large set is never held as pixels).
 */
export type LatentImages = { readonly count: number; readonly size: number } & (
  | { readonly images: Float32Array }
  | { read(start: number, n: number): Float32Array }
);

/** Encodes every image of `set` with `vae` (no gradients), `batch` at a time. */
export function encodeLatents(
  vae: AutoencoderKL,
  set: LatentImages,
  opts: { batch?: number; onProgress?: ProgressCallback } = {},
): LatentSet {
  const batch = opts.batch ?? 64;
  const per = 3 * set.size * set.size;
  const f = vae.downscaleFactor;
  const c = vae.config.latent_channels;
  const h = set.size / f;
  const plane = c * h * h;
  const moments = new Float32Array(set.count * 2 * plane);
  noGrad(() => {
    for (let i = 0; i < set.count; i += batch) {
      const b = Math.min(batch, set.count - i);
      const pixels = "images" in set ? set.images.subarray(i * per, (i + b) * per) : set.read(i, b);
      const x = tensor(pixels, [b, 3, set.size, set.size]);
      const dist = vae.encode(toDevice(x, vae.device)).latentDist;
      const mean = toDevice(dist.mean, "cpu").toFloat32Array();
      const std = toDevice(dist.std, "cpu").toFloat32Array();
      for (let k = 0; k < b; k++) {
        moments.set(mean.subarray(k * plane, (k + 1) * plane), (i + k) * 2 * plane);
        moments.set(std.subarray(k * plane, (k + 1) * plane), (i + k) * 2 * plane + plane);
      }
      opts.onProgress?.({ stage: "encode", step: i + b, total: set.count });
    }
  });
  return {
    moments,
    count: set.count,
    channels: c,
    height: h,
    width: h,
    scalingFactor: vae.config.scaling_factor,
  };
}

/** The trainer; see the file comment. */
export class TextToImageTrainer extends TrainerBase<UNet2DConditionModel, ResolvedTextToImageOptions> {
  readonly noiseScheduler: Scheduler;
  readonly textEncoder: CLIPTextModel;
  readonly tokenizer: CLIPTokenizer;
  readonly set: EmojiSet;
  readonly latents: LatentSet;
  readonly #captions: CaptionEncoder;

  constructor(
    unet: UNet2DConditionModel,
    noiseScheduler: Scheduler,
    parts: { textEncoder: CLIPTextModel; tokenizer: CLIPTokenizer; set: EmojiSet; latents: LatentSet },
    opts: TextToImageTrainOptions,
  ) {
    const o: ResolvedTextToImageOptions = {
      ...resolveOptimOptions(opts, "TextToImageTrainer", 64),
      condDropout: opts.condDropout ?? 0.1,
    };
    if (!(o.condDropout >= 0 && o.condDropout <= 1))
      throw new ArgumentError(`TextToImageTrainer: condDropout must be in [0, 1], got ${o.condDropout}`);
    const pt = noiseScheduler.config.prediction_type;
    if (pt !== "epsilon" && pt !== "v_prediction")
      throw new ArgumentError(
        `TextToImageTrainer: prediction_type must be "epsilon" or "v_prediction", got "${pt}"`,
      );
    const { latents, set, textEncoder } = parts;
    if (latents.count !== set.count)
      throw new ArgumentError(`TextToImageTrainer: ${latents.count} latents for ${set.count} images`);
    if (unet.config.in_channels !== latents.channels)
      throw new ArgumentError(
        `TextToImageTrainer: the UNet takes ${unet.config.in_channels} channels, the latents have ${latents.channels}`,
      );
    if (unet.config.cross_attention_dim !== textEncoder.config.hidden_size)
      throw new ArgumentError(
        `TextToImageTrainer: the UNet's cross_attention_dim ${unet.config.cross_attention_dim} is not the text encoder's hidden_size ${textEncoder.config.hidden_size}`,
      );
    // the loader's "images" are the moments; its labels are image indices (captions are drawn from the entries)
    super(unet, latentLoaderData(latents), o, { imageShape: latentLoaderShape(latents) });
    this.noiseScheduler = noiseScheduler;
    this.#captions = new CaptionEncoder(textEncoder, parts.tokenizer);
    this.textEncoder = textEncoder;
    this.tokenizer = parts.tokenizer;
    this.set = set;
    this.latents = latents;
  }

  /** The UNet being trained. */
  get unet(): UNet2DConditionModel {
    return this.model;
  }

  checkpointConfigs(): Record<string, Record<string, unknown>> {
    return { unetConfig: { ...this.unet.config }, schedulerConfig: { ...this.noiseScheduler.config } };
  }

  /** The frozen text encoder's last hidden states [B, L, D] of `captions` (cached per caption). */
  encodeText(captions: readonly string[]): Tensor {
    return this.#captions.encode(captions, this.unet.device);
  }

  protected batchLoss(batch: LabeledBatch): BatchLoss {
    const o = this.options;
    const g = this.generator;
    const latents = sampleLatents(batch.images, this.latents.scalingFactor, g, this.unet.device);
    const b = latents.shape[0]!;
    const drop = g.uniform(b);
    const captions = Array.from(batch.labels, (i, k) =>
      drop[k]! < o.condDropout ? "" : emojiCaption(this.set.entries[i]!, g),
    );
    const context = this.encodeText(captions);
    return { loss: denoisingLoss(this.unet, this.noiseScheduler, latents, context, g) };
  }
}

/**
 * The denoising loss of latents z0 [B, C, h, w] under text `context` [B, L, D] (Ho et al. 2020, Eq. 14; with the
 * v target of Salimans & Ho 2022 when the scheduler's prediction_type is v_prediction): a timestep t ~ U{0, T - 1}
 * and noise eps ~ N(0, I) per latent, drawn from `generator` in that order, and MSE(unet(z_t, t, context), target).
 */
export function denoisingLoss(
  unet: UNet2DConditionModel,
  noiseScheduler: Scheduler,
  latents: Tensor,
  context: Tensor,
  generator: Generator,
): Tensor {
  const b = latents.shape[0]!;
  const numTrain = noiseScheduler.config.num_train_timesteps;
  const t = Array.from(generator.randint(0, numTrain, b));
  const noise = randn([...latents.shape], { generator, device: latents.device });
  const noisy = noiseScheduler.addNoise(latents, noise, t);
  const target =
    noiseScheduler.config.prediction_type === "v_prediction"
      ? noiseScheduler.getVelocity(latents, noise, t)
      : noise;
  return mse_loss(unet.call(noisy, t, context), target);
}
