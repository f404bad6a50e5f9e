// Stable Diffusion (Rombach et al. 2022) text-to-image, image-to-image and inpainting from one pipeline object, with
// the numbers of diffusers' StableDiffusionPipeline / Img2ImgPipeline / InpaintPipeline: same initial noise for a
// seed (torch-compatible generator, the batch drawn at once), same schedule truncation, same guidance.
import type { Image } from "../io/image-tensor.js";
import type { FileInput } from "../io/source.js";
import type { CLIPTextModel, CLIPTextModelWithProjection } from "../models/clip/text-model.js";
import type { CLIPTokenizer } from "../models/clip/tokenizer.js";
import type { AddedCondKwargs, UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import type { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import { div, mul, toDevice } from "../ops/index.js";
import { schedulerFromConfig } from "../schedulers/registry.js";
import { SAMPLERS, samplerFromName, samplerSpec } from "../schedulers/samplers.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { noGrad } from "../tensor/autograd.js";
import { Generator } from "../tensor/generator.js";
import type { Tensor } from "../tensor/tensor.js";
import { encodeSdPrompt, type PromptConditioning, repeatRows } from "./conditioning.js";
import { denoise, unetPredictor } from "./denoise.js";
import { PipelineError } from "./errors.js";
import type { GenerateOptions, GenerateResult } from "./generate-options.js";
import {
  checkGuidance,
  checkGuidanceInterval,
  guidanceScaleEmbedding,
  guidanceWarning,
  usesGuidance,
} from "./guidance.js";
import { prepareImageInputs } from "./image-inputs.js";
import { pixelSize } from "./img2img.js";
import {
  assertFiniteOnCpu,
  checkImageSize,
  checkLatentsShape,
  decodedImages,
  initialNoise,
  latentShape,
} from "./latents.js";
import {
  type LoadPipelineOptions,
  loadPipelineComponents,
  type PipelineComponents,
  type PipelineSource,
} from "./load.js";
import { applyLora, type LoraHandle, type LoraMode, type LoraModels, loadLora } from "./lora.js";
import { autoV2Hash, canHash, loraHash } from "./model-hash.js";
import type { GenerationSettings, LoraUse } from "./params.js";

/** The parts of a Stable Diffusion 1.x / 2.x pipeline. */
export interface StableDiffusionComponents {
  unet: UNet2DConditionModel;
  vae: AutoencoderKL;
  textEncoder: CLIPTextModel | CLIPTextModelWithProjection;
  tokenizer: CLIPTokenizer;
  /** The default scheduler (a model folder's `scheduler/scheduler_config.json`); `sampler` picks another. */
  scheduler: Scheduler;
  /** Name written as "Model" into generation parameters (default: none). */
  modelName?: string;
  /**
   * The file whose hash is the "Model hash" (a single-file checkpoint, or the UNet weights of a folder): a path, or
   * in browsers a URL, Blob or buffer.
   */
  hashPath?: FileInput;
}

/** Options of {@link StableDiffusionPipeline.loadLora}. */
export interface PipelineLoraOptions {
  /** Strength (default 1). */
  scale?: number;
  /** "merge" (default, no cost per step) or "adapter" (weights untouched). */
  mode?: LoraMode;
  /** The LoRA's name in generation parameters (default: its file name without extension). */
  name?: string;
}

interface ActiveLora {
  name: string;
  hash: string | undefined;
  handle: LoraHandle;
}

/**
 * A Stable Diffusion pipeline from its components. Use `generate` for text-to-image, image-to-image (`initImage`,
 * `strength`) and inpainting (`initImage` + `mask`; 9-channel inpainting UNets or any 4-channel UNet).
 *
 * @example
 * const pipe = new StableDiffusionPipeline({ unet, vae, textEncoder, tokenizer, scheduler });
 * const { images } = await pipe.generate({ prompt: "a photo of a cat", seed: 42, steps: 20 });
 */
export class StableDiffusionPipeline {
  readonly unet: UNet2DConditionModel;
  readonly vae: AutoencoderKL;
  readonly textEncoder: CLIPTextModel | CLIPTextModelWithProjection;
  readonly tokenizer: CLIPTokenizer;
  readonly scheduler: Scheduler;
  modelName: string | undefined;
  readonly hashPath: FileInput | undefined;
  protected readonly loras: ActiveLora[] = [];
  #modelHash: Promise<string> | null = null;

  constructor(components: StableDiffusionComponents) {
    const who = new.target.name;
    for (const key of ["unet", "vae", "textEncoder", "scheduler"] as const) {
      if (!components[key]) throw new PipelineError(`${who}: the "${key}" component is missing`);
    }
    if (!components.tokenizer) {
      throw new PipelineError(
        `${who}: no tokenizer; single-file checkpoints carry none: pass { tokenizer } (CLIPTokenizer.fromPretrained of a tokenizer/ folder with vocab.json + merges.txt), or --tokenizer DIR on the command line`,
      );
    }
    this.unet = components.unet;
    this.vae = components.vae;
    this.textEncoder = components.textEncoder;
    this.tokenizer = components.tokenizer;
    this.scheduler = components.scheduler;
    this.modelName = components.modelName;
    this.hashPath = components.hashPath;
    this.checkComponents(who, components);
  }

  /**
   * Loads an SD 1.x / 2.x pipeline from a diffusers folder (model_index.json) or a single-file LDM checkpoint (pass
   * `tokenizer` for single files; see loadPipelineComponents). SDXL models: StableDiffusionXLPipeline.fromPretrained,
   * or loadStableDiffusionPipeline, which picks the class.
   */
  static async fromPretrained(
    source: PipelineSource,
    opts: LoadPipelineOptions = {},
  ): Promise<StableDiffusionPipeline> {
    const c = await loadPipelineComponents(source, opts);
    if (c.family === "sdxl" || c.family === "sdxl-refiner") {
      throw new PipelineError(
        `${c.path} is an SDXL model (${c.family}); load it with StableDiffusionXLPipeline.fromPretrained or loadStableDiffusionPipeline`,
      );
    }
    return new StableDiffusionPipeline(componentsOf(c));
  }

  /**
   * A1111's "Model hash" (AutoV2) of the loaded checkpoint, computed once (streamed from a path); undefined when
   * unknown, or for a Blob or buffer over 256 MiB (browsers cannot stream a digest).
   */
  async modelHash(): Promise<string | undefined> {
    if (!this.hashPath || !canHash(this.hashPath)) return undefined;
    this.#modelHash ??= autoV2Hash(this.hashPath);
    return this.#modelHash;
  }

  /** Checks that the components fit together (text width, latent channels); SDXL adds its second encoder. */
  protected checkComponents(who: string, components: StableDiffusionComponents): void {
    const cross = this.unet.config.cross_attention_dim;
    const { width, what } = this.textWidth(components);
    if (typeof cross === "number" && cross !== width) {
      throw new PipelineError(
        `${who}: the UNet's cross_attention_dim is ${cross} but ${what} = ${width}; the components come from different models`,
      );
    }
    const latent = this.vae.config.latent_channels;
    const inCh = this.unet.config.in_channels;
    if (inCh !== latent && inCh !== 2 * latent + 1) {
      throw new PipelineError(
        `${who}: the UNet takes ${inCh} input channels; expected ${latent} (the VAE's latent channels) or ${2 * latent + 1} (an inpainting UNet)`,
      );
    }
  }

  /** Width of the text conditioning the UNet receives (SDXL: both encoders together). */
  protected textWidth(components: StableDiffusionComponents): { width: number; what: string } {
    return { width: components.textEncoder.config.hidden_size, what: "the text encoder's hidden_size" };
  }

  /** The VAE's image-to-latent downscale factor (8 for Stable Diffusion). */
  get vaeScaleFactor(): number {
    return this.vae.downscaleFactor;
  }

  /** True for a 9-channel inpainting UNet. */
  get isInpaintingUNet(): boolean {
    return this.unet.config.in_channels === 2 * this.vae.config.latent_channels + 1;
  }

  /** Default image size: the UNet's sample_size times the VAE factor. */
  get defaultSize(): { width: number; height: number } {
    const s = this.unet.config.sample_size;
    const [h, w] = typeof s === "number" ? [s, s] : Array.isArray(s) ? [s[0]!, s[1]!] : [64, 64];
    return { width: w * this.vaeScaleFactor, height: h * this.vaeScaleFactor };
  }

  /**
   * The sampler name of the default scheduler: the named sampler with its class and settings, else its class name.
   */
  get defaultSampler(): string {
    const config = this.scheduler.config as Record<string, unknown>;
    const spec = SAMPLERS.find(
      (s) =>
        s.className === this.scheduler.className &&
        Object.entries(s.overrides).every(([k, v]) => (config[k] ?? null) === v),
    );
    return spec?.name ?? this.scheduler.className;
  }

  /**
   * The guidance scale when none is given: 7.5, or 1 (no classifier-free guidance) for a latent consistency model
   * without a guidance embedding (LCMScheduler and a UNet without `time_cond_proj_dim`: an LCM-LoRA fused into its
   * teacher), whose guidance was learnt into its weights.
   */
  get defaultGuidance(): number {
    const fused = this.scheduler.className === "LCMScheduler" && this.unet.config.time_cond_proj_dim == null;
    return fused ? 1 : 7.5;
  }

  /** The step count when none is given: 4 for a latent consistency model (LCMScheduler), else 30. */
  get defaultSteps(): number {
    return this.scheduler.className === "LCMScheduler" ? 4 : 30;
  }

  /** A fresh scheduler for one run: the default one's config, or the named sampler over it. */
  protected makeScheduler(sampler: string | undefined): { scheduler: Scheduler; name: string } {
    const base = this.scheduler;
    const fallback = this.defaultSampler;
    if (!sampler || sampler === base.className || sampler === fallback || isSameSpec(sampler, fallback)) {
      const config = { ...(base.config as Record<string, unknown>), _class_name: base.className };
      return { scheduler: schedulerFromConfig(config), name: fallback };
    }
    return { scheduler: samplerFromName(sampler, base.config), name: samplerSpec(sampler).name };
  }

  /** Prompt embeddings for the guidance batch (SDXL overrides this). */
  protected encodeConditioning(
    prompts: readonly string[],
    negativePrompt: string,
    numImages: number,
    guided: boolean,
    clipSkip: number,
    _size: { width: number; height: number },
  ): PromptConditioning & { addedCondKwargs?: AddedCondKwargs } {
    return encodeSdPrompt(
      { tokenizer: this.tokenizer, encoder: this.textEncoder },
      prompts,
      negativePrompt,
      numImages,
      guided,
      clipSkip,
    );
  }

  /** Runs the pipeline (see {@link GenerateOptions}). */
  async generate(opts: GenerateOptions): Promise<GenerateResult> {
    const prompts = typeof opts.prompt === "string" ? [opts.prompt] : opts.prompt;
    if (
      !Array.isArray(prompts) ||
      prompts.length === 0 ||
      !prompts.every((p: unknown) => typeof p === "string")
    )
      throw new PipelineError("generate: prompt must be a string or a non-empty array of strings");
    const warnings: string[] = [];
    const warn = (m: string) => {
      warnings.push(m);
      opts.onWarning?.(m);
    };
    const negativePrompt = opts.negativePrompt ?? "";
    const steps = opts.steps ?? this.defaultSteps;
    const guidanceScale = opts.guidanceScale ?? this.defaultGuidance;
    const guidanceRescale = opts.guidanceRescale ?? 0;
    const perPrompt = opts.numImages ?? 1;
    const clipSkip = opts.clipSkip ?? 0;
    if (!Number.isInteger(steps) || steps < 1)
      throw new PipelineError(`steps must be a positive integer, got ${steps}`);
    if (!Number.isInteger(perPrompt) || perPrompt < 1) {
      throw new PipelineError(`numImages must be a positive integer, got ${perPrompt}`);
    }
    const numImages = prompts.length * perPrompt;
    checkGuidance(guidanceScale, guidanceRescale);
    if (opts.guidanceInterval) checkGuidanceInterval(opts.guidanceInterval);
    const high = guidanceWarning(guidanceScale);
    if (high) warn(high);
    const factor = this.vaeScaleFactor;
    const size = this.imageSize(opts);
    checkImageSize(size.width, size.height, factor);
    if (this.isInpaintingUNet && (!opts.initImage || !opts.mask)) {
      throw new PipelineError(
        `this is an inpainting UNet (${this.unet.config.in_channels} input channels): give initImage and mask`,
      );
    }
    if (opts.mask && !opts.initImage) throw new PipelineError("a mask needs an initImage to inpaint");
    if (opts.strength !== undefined && !opts.initImage) {
      throw new PipelineError("strength applies to image-to-image and inpainting: give an initImage");
    }
    let seed: number | bigint | undefined = opts.seed;
    if (seed === undefined && !opts.generator) seed = Math.floor(Math.random() * 2 ** 32);
    const generator = opts.generator ?? new Generator(seed);
    const { scheduler, name: samplerName } = this.makeScheduler(opts.sampler);
    // guidance-distilled UNets (LCM) take the scale as an embedding instead of a second branch
    const distilled = this.unet.config.time_cond_proj_dim;
    const guided = usesGuidance(guidanceScale) && distilled == null;
    const timestepCond =
      distilled != null
        ? repeatRows(guidanceScaleEmbedding([guidanceScale - 1], distilled, this.unet.device), numImages)
        : undefined;

    const cond = noGrad(() =>
      this.encodeConditioning(prompts, negativePrompt, perPrompt, guided, clipSkip, size),
    );
    for (const w of cond.warnings) warn(w);

    scheduler.setTimesteps(steps);
    const shape = latentShape(numImages, this.vae.config.latent_channels, size.width, size.height, factor);
    if (opts.latents) {
      checkLatentsShape(opts.latents, shape);
      assertFiniteOnCpu(opts.latents, "the given latents", "pass finite initial noise");
    }
    const image = opts.initImage
      ? prepareImageInputs({
          vae: this.vae,
          inpaintingUNet: this.isInpaintingUNet,
          scheduler,
          steps,
          strength: opts.strength ?? (opts.mask ? 1 : 0.8),
          initImage: opts.initImage,
          mask: opts.mask,
          size,
          shape,
          generator,
          latents: opts.latents,
        })
      : null;
    const timesteps = image ? image.timesteps : scheduler.timesteps;
    let latents = image?.latents;
    if (!latents) {
      const device = this.unet.device;
      const noise = opts.latents ? toDevice(opts.latents, device) : initialNoise(shape, generator, device);
      latents = scheduler.initNoiseSigma === 1 ? noise : noGrad(() => mul(noise, scheduler.initNoiseSigma));
    }
    const inpaint = image?.inpaint;
    const final = await denoise({
      predict: unetPredictor(
        this.unet,
        {
          embeds: cond.embeds,
          addedCondKwargs: cond.addedCondKwargs,
          timestepCond,
          extraChannels: inpaint?.maskedImageLatents && [inpaint.mask, inpaint.maskedImageLatents],
        },
        guided,
      ),
      scheduler,
      timesteps,
      latents,
      guided,
      guidanceScale,
      guidanceRescale,
      guidanceInterval: opts.guidanceInterval,
      generator,
      inpaint,
      onProgress: opts.onProgress,
      signal: opts.signal,
    });
    opts.signal?.throwIfAborted();
    const decoded = this.decodeLatents(final);
    opts.onProgress?.({ stage: "decode", step: 1, total: 1 });
    const images: Image[] = await decodedImages(decoded);
    const settings: GenerationSettings = {
      prompt: prompts[0]!,
      negativePrompt,
      steps,
      sampler: samplerName,
      guidanceScale,
      width: size.width,
      height: size.height,
      batchSize: numImages,
    };
    if (seed !== undefined) settings.seed = seed;
    if (guidanceRescale > 0) settings.guidanceRescale = guidanceRescale;
    if (guided && opts.guidanceInterval) settings.guidanceInterval = opts.guidanceInterval;
    if (image) settings.strength = image.strength;
    if (clipSkip > 0) settings.clipSkip = clipSkip;
    if (this.modelName) settings.modelName = this.modelName;
    const loras = this.activeLoras;
    if (loras.length > 0) settings.loras = loras;
    const imagePrompts = prompts.flatMap((p) => Array<string>(perPrompt).fill(p));
    return { images, latents: final, settings, prompts: imagePrompts, warnings };
  }

  /** The models a LoRA may adapt (SDXL adds its second text encoder). */
  protected loraTargets(): LoraModels {
    return { unet: this.unet, textEncoder: this.textEncoder };
  }

  /**
   * Reads a LoRA file (PEFT, diffusers or kohya layout: a path, or in browsers a File, URL or bytes) and applies it
   * to the UNet and text encoder(s). Several can be active; the returned handle removes this one. Throws
   * LoraMismatchError (nothing applied) when it does not fit.
   */
  async loadLora(file: FileInput, opts: PipelineLoraOptions = {}): Promise<LoraHandle> {
    const lora = await loadLora(file, opts.name);
    const hash = canHash(file) ? await loraHash(file) : undefined;
    const handle = applyLora(this.loraTargets(), lora, {
      scale: opts.scale ?? 1,
      mode: opts.mode ?? "merge",
      name: lora.name,
    });
    this.loras.push({ name: lora.name, hash, handle });
    return handle;
  }

  /** Removes every LoRA loaded with {@link loadLora} (last first), restoring the original weights. */
  unloadLoras(): void {
    for (const l of this.loras.splice(0).reverse()) if (l.handle.active) l.handle.remove();
  }

  /** The LoRAs in effect (name, hash, current scale). */
  get activeLoras(): LoraUse[] {
    return this.loras
      .filter((l) => l.handle.active)
      .map((l) =>
        l.hash
          ? { name: l.name, hash: l.hash, scale: l.handle.scale }
          : { name: l.name, scale: l.handle.scale },
      );
  }

  /** The image size of a run: explicit, else the init image's (rounded down to the factor), else the default. */
  protected imageSize(opts: GenerateOptions): { width: number; height: number } {
    const factor = this.vaeScaleFactor;
    let base = this.defaultSize;
    if (opts.initImage) {
      const src = pixelSize(opts.initImage);
      base = {
        width: Math.max(factor, src.width - (src.width % factor)),
        height: Math.max(factor, src.height - (src.height % factor)),
      };
    }
    return { width: opts.width ?? base.width, height: opts.height ?? base.height };
  }

  /**
   * Decodes latents [B, C, h, w] (divided by the VAE's scaling_factor first) to images [B, 3, H, W] in [-1, 1].
   * Throws a PipelineError when the result holds NaN/Inf. (The VAE computes in float32 here even with fp16
   * weights, so the fp16 overflow of PyTorch pipelines does not arise; NaN means broken weights or latents.)
   */
  decodeLatents(latents: Tensor): Tensor {
    const out = noGrad(() => this.vae.decode(div(latents, this.vae.config.scaling_factor)));
    assertFiniteOnCpu(
      out,
      "the decoded images",
      "the VAE produced NaN/Inf from finite latents: its weights are damaged or hold values beyond the float range (try another VAE file)",
    );
    return out;
  }
}

/** Pipeline components from what loadPipelineComponents returned (missing parts are reported by the constructor). */
export function componentsOf(c: PipelineComponents): StableDiffusionComponents {
  return {
    unet: c.unet,
    vae: c.vae,
    textEncoder: c.textEncoder as CLIPTextModel,
    tokenizer: c.tokenizer as CLIPTokenizer,
    scheduler: c.scheduler,
    modelName: c.modelName,
    hashPath: c.hashPath,
  };
}

function isSameSpec(a: string, b: string): boolean {
  try {
    return samplerSpec(a).name === samplerSpec(b).name;
  } catch {
    return false;
  }
}
