import { encodePng, type Image, ImageError, tensorToImage } from "../io/image.js";
import { packageVersion } from "../io/package-version.js";
import { select, toDeviceAsync } from "../ops/index.js";
import { generateClassImages } from "../pipelines/class-conditional.js";
import { PipelineError } from "../pipelines/errors.js";
import { usesGuidance } from "../pipelines/guidance.js";
import { LoraMismatchError } from "../pipelines/lora.js";
import { formatParameters, type GenerationSettings } from "../pipelines/params.js";
import { SchedulerError } from "../schedulers/errors.js";
import { samplerFromName, samplerSpec } from "../schedulers/samplers.js";
import { ArgumentError } from "../tensor/errors.js";
import { HttpError } from "./errors.js";
import { checkRequestLimits, type ServerLimits } from "./limits.js";
import type { LoadedModel, ModelCatalog } from "./models.js";

/** A generation request, after the HTTP layer (ours or A1111's) parsed it. */
export interface GenerationRequest {
  /** Model name (default: the catalog's default model). */
  model?: string;
  prompt: string;
  negativePrompt: string;
  /** Sampler name (ours or A1111's spelling; default: the model's). */
  sampler?: string;
  steps?: number;
  guidance?: number;
  /** Seed of the first image; undefined = random (reported in the result). */
  seed?: number;
  width?: number;
  height?: number;
  /** Images drawn together, and how many such batches run one after the other. */
  batchSize: number;
  iterations: number;
  initImage?: Image;
  mask?: Image;
  strength?: number;
  loras: { name: string; scale: number }[];
}

/** One image of a finished job. */
export interface GeneratedImage {
  png: Buffer;
  /** The A1111 `parameters` text in the PNG. */
  parameters: string;
  seed: number;
}

/** What a job produces. */
export interface GenerationResult {
  model: string;
  images: GeneratedImage[];
  /** Settings of the first image (every image shares them but the seed / batch position). */
  settings: GenerationSettings;
  warnings: string[];
}

/** Progress of a job across its images: steps done of all steps. */
export type StepCallback = (step: number, total: number) => void;

// the class-conditional defaults of `diffuse generate` (its README table measures them)
const CLASS_DEFAULTS = { sampler: "dpmpp-2m", steps: 20, guidance: 3 };

/**
 * Checks a request against the catalog and the limits before it is queued: the model and LoRA names, the
 * sampler, sizes, and what the model can do (a class-conditional model takes a class number as its prompt and makes
 * images of its own size, without init images). Throws HttpError 400.
 */
export function checkRequest(req: GenerationRequest, catalog: ModelCatalog, limits: ServerLimits): void {
  const entry = catalog.get(req.model);
  checkRequestLimits(limits, req);
  if (req.sampler !== undefined) {
    try {
      samplerSpec(req.sampler);
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
  }
  for (const l of req.loras) catalog.loraPath(l.name);
  if (req.mask && !req.initImage)
    throw new HttpError(400, "a mask needs an init image (the image to inpaint)");
  if (req.strength !== undefined && !req.initImage) {
    throw new HttpError(400, "strength applies to img2img and inpainting: give an init image");
  }
  if (entry.kind !== "class-conditional") return;
  const max = entry.classes! - 1;
  if (!/^\s*\d+\s*$/.test(req.prompt) || Number(req.prompt) > max) {
    throw new HttpError(
      400,
      `model "${entry.name}" is class-conditional: the prompt must be a class number 0..${max}, got ${JSON.stringify(req.prompt)}`,
    );
  }
  const { width, height } = entry.size!;
  if (
    (req.width !== undefined && req.width !== width) ||
    (req.height !== undefined && req.height !== height)
  ) {
    throw new HttpError(
      400,
      `model "${entry.name}" makes ${width}x${height} images; leave width and height out or give those, got ${req.width ?? width}x${req.height ?? height}`,
    );
  }
  if (req.initImage)
    throw new HttpError(400, `model "${entry.name}" does text-to-image only (no init image)`);
  if (req.loras.length > 0) throw new HttpError(400, `model "${entry.name}" takes no LoRAs`);
}

/**
 * Runs a checked request (see {@link checkRequest}) on the catalog's model; stops between steps on `signal`. What
 * the library refuses as input (a size that is not a multiple of the VAE factor, a LoRA for another family, ...)
 * becomes an HttpError 400; other failures stay as they are (500).
 */
export async function runGeneration(
  req: GenerationRequest,
  catalog: ModelCatalog,
  ctx: { signal: AbortSignal; onStep: StepCallback },
): Promise<GenerationResult> {
  try {
    return await generate(req, catalog, ctx);
  } catch (err) {
    const input = [PipelineError, ArgumentError, SchedulerError, LoraMismatchError, ImageError];
    if (!ctx.signal.aborted && input.some((cls) => err instanceof cls)) {
      throw new HttpError(400, (err as Error).message);
    }
    throw err;
  }
}

async function generate(
  req: GenerationRequest,
  catalog: ModelCatalog,
  ctx: { signal: AbortSignal; onStep: StepCallback },
): Promise<GenerationResult> {
  const model = await catalog.load(catalog.get(req.model).name);
  ctx.signal.throwIfAborted();
  const seed = req.seed ?? Math.floor(Math.random() * 2 ** 32);
  return model.kind === "class-conditional"
    ? runClassConditional(model, req, seed, ctx)
    : runStableDiffusion(model, req, seed, ctx, catalog);
}

async function runClassConditional(
  model: Extract<LoadedModel, { kind: "class-conditional" }>,
  req: GenerationRequest,
  seed0: number,
  ctx: { signal: AbortSignal; onStep: StepCallback },
): Promise<GenerationResult> {
  const { unet, scheduler, guidanceInterval } = model.pipeline;
  const sampler = req.sampler ?? CLASS_DEFAULTS.sampler;
  const steps = req.steps ?? CLASS_DEFAULTS.steps;
  const guidance = req.guidance ?? CLASS_DEFAULTS.guidance;
  const label = Number(req.prompt);
  const n = req.batchSize * req.iterations;
  const images: GeneratedImage[] = [];
  let settings: GenerationSettings | undefined;
  // each image is drawn alone with seed + i, as `diffuse generate` does, so any one can be redone alone
  for (let i = 0; i < n; i++) {
    const seed = seed0 + i;
    const x = await generateClassImages(unet, samplerFromName(sampler, scheduler.config), {
      classLabels: [label],
      guidanceScale: guidance,
      guidanceInterval,
      steps,
      seed,
      signal: ctx.signal,
      onProgress: (e) => {
        const per = e.total ?? steps; // model calls per image (Heun makes two a step)
        ctx.onStep(i * per + e.step, n * per);
      },
    });
    const image = tensorToImage(select(x.device === "cpu" ? x : await toDeviceAsync(x, "cpu"), 0, 0));
    const s: GenerationSettings = {
      prompt: req.prompt,
      negativePrompt: "",
      steps,
      sampler: samplerSpec(sampler).name,
      guidanceScale: guidance,
      seed,
      width: image.width,
      height: image.height,
      modelName: model.entry.name,
      extra: { Version: `diffuse ${packageVersion()}` },
    };
    if (usesGuidance(guidance) && guidanceInterval) s.guidanceInterval = guidanceInterval;
    settings ??= s;
    const parameters = formatParameters(s);
    images.push({ png: encodePng(image, { parameters }), parameters, seed });
  }
  return { model: model.entry.name, images, settings: settings!, warnings: [] };
}

async function runStableDiffusion(
  model: Extract<LoadedModel, { kind: "stable-diffusion" }>,
  req: GenerationRequest,
  seed0: number,
  ctx: { signal: AbortSignal; onStep: StepCallback },
  catalog: ModelCatalog,
): Promise<GenerationResult> {
  const { pipe } = model;
  const images: GeneratedImage[] = [];
  const warnings: string[] = [];
  let settings: GenerationSettings | undefined;
  try {
    // inside the try: a LoRA refused after others were applied still takes those off again
    for (const l of req.loras) await pipe.loadLora(catalog.loraPath(l.name), { scale: l.scale });
    const modelHash = await pipe.modelHash();
    for (let k = 0; k < req.iterations; k++) {
      // batch k draws its noise from seed0 + k * batchSize, so seeds never overlap between batches
      const seed = seed0 + k * req.batchSize;
      const result = await pipe.generate({
        prompt: req.prompt,
        negativePrompt: req.negativePrompt,
        sampler: req.sampler,
        steps: req.steps,
        guidanceScale: req.guidance,
        seed,
        width: req.width,
        height: req.height,
        numImages: req.batchSize,
        initImage: req.initImage,
        mask: req.mask,
        strength: req.strength,
        signal: ctx.signal,
        onProgress: (e) => {
          if (e.stage === "sample" && e.total) ctx.onStep(k * e.total + e.step, req.iterations * e.total);
        },
      });
      warnings.push(...result.warnings);
      result.images.forEach((image, i) => {
        const s: GenerationSettings = {
          ...result.settings,
          batchPos: i,
          modelName: model.entry.name,
          extra: { Version: `diffuse ${packageVersion()}` },
        };
        if (modelHash) s.modelHash = modelHash;
        settings ??= s;
        const parameters = formatParameters(s);
        images.push({ png: encodePng(image, { parameters }), parameters, seed });
      });
    }
  } finally {
    pipe.unloadLoras();
  }
  return { model: model.entry.name, images, settings: settings!, warnings };
}
