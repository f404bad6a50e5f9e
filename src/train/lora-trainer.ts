// Training LoRA adapters (Hu et al. 2021) on a frozen text-to-image model: the base UNet, VAE and text encoder keep
// their weights (requiresGrad off: backward neither computes nor stores their gradients); only the low-rank factors
// are given to AdamW, averaged by the EMA and saved in checkpoints. The loss is the text-to-image trainer's
// (sampleLatents + denoisingLoss: epsilon or v target from the scheduler's prediction_type) on the images' cached
// latent posteriors, with each image's own caption (the empty prompt with probability condDropout). With a text
// encoder LoRA the captions are encoded with gradients every step; without, the frozen encoder's output is cached.
import type { CLIPTextModel } from "../models/clip/text-model.js";
import type { CLIPTokenizer } from "../models/clip/tokenizer.js";
import type { UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import { Module } from "../nn/index.js";
import { freezeParameters, LoraNetwork } from "../nn/lora-network.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Generator } from "../tensor/generator.js";
import type { Tensor } from "../tensor/tensor.js";
import type { LabeledBatch } from "./data/loader.js";
import { type LoraTargetSet, textEncoderLoraPaths, unetLoraPaths } from "./lora-targets.js";
import { CaptionEncoder, latentLoaderData, latentLoaderShape, sampleLatents } from "./text-latents.js";
import { denoisingLoss, type LatentSet } from "./text-to-image-trainer.js";
import {
  type BatchLoss,
  type OptimOptions,
  type ResolvedOptimOptions,
  resolveOptimOptions,
  TrainerBase,
} from "./trainer-base.js";

/** How a LoRA is laid out: which layers, its rank and α. */
export interface LoraLayout {
  targets: LoraTargetSet;
  rank: number;
  /** α (default rank): the update is scaled by α / r. */
  alpha?: number;
  /** Also adapt the text encoder's attention and MLP layers (default false). */
  textEncoder?: boolean;
}

/**
 * The trainable part of a LoRA run: the UNet's adapters and, optionally, the text encoder's, as one Module (state
 * dict `unet.<layer>.down` / `.up`, `text_encoder.<layer>.down` / `.up`). Attached to the models at construction.
 */
export class LoraSet extends Module {
  readonly unet: LoraNetwork;
  readonly text_encoder: LoraNetwork | null;

  constructor(
    models: { unet: UNet2DConditionModel; textEncoder: CLIPTextModel },
    layout: LoraLayout,
    generator?: Generator,
  ) {
    super();
    const { rank, alpha } = layout;
    this.unet = new LoraNetwork(models.unet, unetLoraPaths(models.unet, layout.targets), {
      rank,
      alpha,
      generator,
      name: "unet",
    });
    try {
      this.text_encoder = layout.textEncoder
        ? new LoraNetwork(models.textEncoder, textEncoderLoraPaths(models.textEncoder), {
            rank,
            alpha,
            generator,
            name: "text_encoder",
          })
        : null;
    } catch (err) {
      this.unet.remove();
      throw err;
    }
  }

  /** Sets the scale of every adapter (0: the base model). */
  setScale(scale: number): void {
    this.unet.setScale(scale);
    this.text_encoder?.setScale(scale);
  }

  /** Takes every adapter off the models. */
  remove(): void {
    this.unet.remove();
    this.text_encoder?.remove();
  }
}

/** Hyperparameters of {@link LoraTrainer} (batch size default 4). */
export interface LoraTrainOptions extends OptimOptions {
  /** Probability of training on the empty prompt (default 0: a LoRA usually leaves the unconditional alone). */
  condDropout?: number;
}

/** The resolved hyperparameters, as saved with checkpoints. */
export type ResolvedLoraTrainOptions = ResolvedOptimOptions & { condDropout: number };

/** What the trainer works on: the frozen models, the training schedule, the latents and their captions. */
export interface LoraTrainerParts {
  unet: UNet2DConditionModel;
  textEncoder: CLIPTextModel;
  tokenizer: CLIPTokenizer;
  /** The training noise schedule and target (a DDPM schedule with the model's betas and prediction_type). */
  noiseScheduler: Scheduler;
  latents: LatentSet;
  /** One caption per latent. */
  captions: readonly string[];
  /** What the run records about itself in checkpoints (`loraRun` in trainer_state.json). */
  record?: Record<string, unknown>;
}

/** The trainer; see the file comment. */
export class LoraTrainer extends TrainerBase<LoraSet, ResolvedLoraTrainOptions> {
  readonly unet: UNet2DConditionModel;
  readonly textEncoder: CLIPTextModel;
  readonly tokenizer: CLIPTokenizer;
  readonly noiseScheduler: Scheduler;
  readonly latents: LatentSet;
  readonly captions: readonly string[];
  readonly #frozenText: CaptionEncoder;
  readonly #record: Record<string, unknown>;

  constructor(parts: LoraTrainerParts, lora: LoraSet, opts: LoraTrainOptions) {
    const o: ResolvedLoraTrainOptions = {
      ...resolveOptimOptions(opts, "LoraTrainer", 4),
      condDropout: opts.condDropout ?? 0,
    };
    if (!(o.condDropout >= 0 && o.condDropout <= 1))
      throw new ArgumentError(`LoraTrainer: condDropout must be in [0, 1], got ${o.condDropout}`);
    const { unet, textEncoder, latents, captions, noiseScheduler } = parts;
    const pt = noiseScheduler.config.prediction_type;
    if (pt !== "epsilon" && pt !== "v_prediction")
      throw new ArgumentError(
        `LoraTrainer: prediction_type must be "epsilon" or "v_prediction", got "${pt}"`,
      );
    if (captions.length !== latents.count)
      throw new ArgumentError(`LoraTrainer: ${captions.length} captions for ${latents.count} latents`);
    if (unet.config.in_channels !== latents.channels)
      throw new ArgumentError(
        `LoraTrainer: the UNet takes ${unet.config.in_channels} channels, the latents have ${latents.channels}`,
      );
    if (lora.text_encoder && textEncoder.device !== unet.device)
      throw new ArgumentError(
        `LoraTrainer: a text encoder LoRA needs the text encoder on the UNet's device (${textEncoder.device} vs ${unet.device})`,
      );
    // only the factors train: the base weights get no gradients (and the EMA averages only the factors)
    freezeParameters(unet);
    freezeParameters(textEncoder);
    super(lora, latentLoaderData(latents), o, { imageShape: latentLoaderShape(latents) });
    this.unet = unet.eval();
    this.textEncoder = textEncoder.eval();
    this.tokenizer = parts.tokenizer;
    this.noiseScheduler = noiseScheduler;
    this.latents = latents;
    this.captions = captions;
    this.#frozenText = new CaptionEncoder(textEncoder, parts.tokenizer);
    this.#record = { ...parts.record };
  }

  checkpointConfigs(): Record<string, Record<string, unknown>> {
    return { schedulerConfig: { ...this.noiseScheduler.config }, loraRun: { ...this.#record } };
  }

  /** The text encoder's last hidden states [B, L, D] of `captions` (with gradients when it carries a LoRA). */
  encodeText(captions: readonly string[]): Tensor {
    if (!this.model.text_encoder) return this.#frozenText.encode(captions, this.unet.device);
    const ids = this.tokenizer.encodeBatch([...captions], { padding: "max_length" }).inputIds;
    return this.textEncoder.call(ids).lastHiddenState;
  }

  protected batchLoss(batch: LabeledBatch): BatchLoss {
    const g = this.generator;
    const latents = sampleLatents(batch.images, this.latents.scalingFactor, g, this.unet.device);
    const drop = g.uniform(latents.shape[0]!);
    const captions = Array.from(batch.labels, (i, k) =>
      drop[k]! < this.options.condDropout ? "" : this.captions[i]!,
    );
    const context = this.encodeText(captions);
    return { loss: denoisingLoss(this.unet, this.noiseScheduler, latents, context, g) };
  }
}
