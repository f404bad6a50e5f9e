// Training a text-conditioned latent diffusion UNet (Rombach et al. 2022, Sec. 3.3): the images' posteriors are
// computed once by the frozen VAE, and per step a latent is drawn from each (times scaling_factor), a caption is
// drawn for each image and encoded by the frozen text encoder (its last hidden state, as Stable Diffusion 1.x),
// replaced by the empty prompt with probability `condDropout` for classifier-free guidance (Ho & Salimans 2022),
// and the UNet regresses the DDPM target (epsilon or v) of the noised latent with an MSE loss.
import type { CLIPTextModel } from "../models/clip/text-model.js";
import type { CLIPTokenizer } from "../models/clip/tokenizer.js";
import type { UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import type { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import { add, chunk, mse_loss, mul, toDevice } from "../ops/index.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { noGrad } from "../tensor/autograd.js";
import { randn, tensor } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import type { ProgressCallback } from "../tensor/progress.js";
import type { Tensor } from "../tensor/tensor.js";
import { type EmojiSet, emojiCaption } from "./data/emoji.js";
import type { LabeledBatch } from "./data/loader.js";
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

/** Encodes every image of `set` with `vae` (no gradients), `batch` at a time. */
export function encodeLatents(
  vae: AutoencoderKL,
  set: EmojiSet,
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
      const x = tensor(set.images.subarray(i * per, (i + b) * per), [b, 3, set.size, set.size]);
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

/** Text embeddings kept per caption (the CLDR names recur every epoch); bounded so memory stays small. */
const CACHE_LIMIT = 8192;

/** The trainer; see the file comment. */
export class TextToImageTrainer extends TrainerBase<UNet2DConditionModel, ResolvedTextToImageOptions> {
  readonly noiseScheduler: Scheduler;
  readonly textEncoder: CLIPTextModel;
  readonly tokenizer: CLIPTokenizer;
  readonly set: EmojiSet;
  readonly latents: LatentSet;
  readonly #textCache = new Map<string, Float32Array>();

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
    const data = {
      images: latents.moments,
      labels: Int32Array.from(set.entries, (_, i) => i),
      count: set.count,
    };
    super(unet, data, o, { imageShape: [2 * latents.channels, latents.height, latents.width] });
    this.noiseScheduler = noiseScheduler;
    this.textEncoder = textEncoder.eval();
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
    const missing = [...new Set(captions.filter((c) => !this.#textCache.has(c)))];
    const fresh = new Map<string, Float32Array>();
    if (missing.length > 0) {
      const ids = this.tokenizer.encodeBatch(missing, { padding: "max_length" }).inputIds;
      const h = noGrad(() => toDevice(this.textEncoder.call(ids).lastHiddenState, "cpu").toFloat32Array());
      const row = h.length / missing.length;
      missing.forEach((c, i) => {
        const v = h.slice(i * row, (i + 1) * row);
        fresh.set(c, v);
        if (this.#textCache.size < CACHE_LIMIT) this.#textCache.set(c, v);
      });
    }
    const rows = captions.map((c) => this.#textCache.get(c) ?? fresh.get(c)!);
    const row = rows[0]!.length;
    const out = new Float32Array(rows.length * row);
    for (let i = 0; i < rows.length; i++) out.set(rows[i]!, i * row);
    const length = this.tokenizer.modelMaxLength;
    return tensor(out, [rows.length, length, row / length], { device: this.unet.device });
  }

  protected batchLoss(batch: LabeledBatch): BatchLoss {
    const o = this.options;
    const g = this.generator;
    const moments = toDevice(batch.images, this.unet.device);
    const [mean, std] = chunk(moments, 2, 1) as [Tensor, Tensor];
    const b = mean.shape[0]!;
    const latents = mul(
      add(mean, mul(std, randn([...mean.shape], { generator: g, device: mean.device }))),
      this.latents.scalingFactor,
    );
    const drop = g.uniform(b);
    const captions = Array.from(batch.labels, (i, k) =>
      drop[k]! < o.condDropout ? "" : emojiCaption(this.set.entries[i]!, g),
    );
    const context = this.encodeText(captions);
    const numTrain = this.noiseScheduler.config.num_train_timesteps;
    const t = Array.from(g.randint(0, numTrain, b));
    const noise = randn([...latents.shape], { generator: g, device: latents.device });
    const noisy = this.noiseScheduler.addNoise(latents, noise, t);
    const target =
      this.noiseScheduler.config.prediction_type === "v_prediction"
        ? this.noiseScheduler.getVelocity(latents, noise, t)
        : noise;
    return { loss: mse_loss(this.unet.call(noisy, t, context), target) };
  }
}
