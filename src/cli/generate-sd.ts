import { basename, extname, resolve } from "node:path";
import type { Command } from "commander";
import { type Image, readImage, writePng } from "../io/image.js";
import { packageVersion } from "../io/package-version.js";
import {
  formatParameters,
  type GenerateOptions,
  type GenerationSettings,
  loadStableDiffusionPipeline,
  loraHash,
  parseParameters,
  type StableDiffusionPipeline,
} from "../pipelines/index.js";
import type { DType } from "../tensor/dtype.js";
import { resolveDevice } from "./device-option.js";
import { CliError } from "./errors.js";
import {
  GUIDANCE_INTERVAL_HELP,
  guidanceIntervalOption,
  resolveGuidanceInterval,
} from "./guidance-interval-option.js";
import { cliSeed } from "./option-values.js";
import { afterDelay, progressReporter } from "./progress.js";

/** Raw option values of the SD path (strings as typed; parsed and checked here). */
export interface SdGenerateOptions {
  device?: string;
  model?: string;
  negative?: string;
  steps?: string;
  sampler?: string;
  guidance?: string;
  rescale?: string;
  guidanceInterval?: string;
  seed?: string;
  width?: string;
  height?: string;
  numImages?: string;
  initImage?: string;
  strength?: string;
  mask?: string;
  lora?: string[];
  clipSkip?: string;
  tokenizer?: string;
  dtype?: string;
  output?: string;
  from?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/**
 * Adds the SD options to a `generate` command, skipping flags the command already has (the class-conditional
 * path shares --model, --steps, --seed, ...).
 */
export function addSdGenerateOptions(cmd: Command): Command {
  const has = (flag: string) => cmd.options.some((o) => o.long === flag);
  const add = (flags: string, description: string, parse?: typeof collect) => {
    const long = flags.split(/[ ,]+/).find((f) => f.startsWith("--"))!;
    if (has(long)) return;
    if (parse) cmd.option(flags, description, parse);
    else cmd.option(flags, description);
  };
  add(
    "--model <path>",
    "diffusers pipeline folder (model_index.json) or single-file .safetensors checkpoint",
  );
  add("--negative <text>", "negative prompt: what to steer away from");
  add("--steps <n>", "inference steps (default 30; 4 for an LCM folder)");
  add(
    "--sampler <name>",
    "sampler, e.g. euler, euler-a, dpmpp-2m, dpmpp-2m-karras, ddim (default: the model's)",
  );
  add(
    "--guidance <g>",
    "classifier-free guidance scale (default 7.5, 7-10 the usual range; 1 for an LCM-LoRA fused folder)",
  );
  add("--rescale <phi>", "guidance rescale in [0, 1] (default 0)");
  add(
    "--guidance-interval <lo,hi>",
    `${GUIDANCE_INTERVAL_HELP} (default: a class-conditional model's own; with --from, the image's; else all)`,
  );
  add("--seed <n>", "seed of the initial noise (default: random, written into the PNG)");
  add("--width <px>", "image width, a multiple of 8 (default: the model's size)");
  add("--height <px>", "image height, a multiple of 8 (default: the model's size)");
  add("--num-images <n>", "images drawn together (default 1)");
  add("--init-image <file>", "image-to-image / inpainting source image (PNG or JPEG)");
  add("--strength <s>", "how much of the init image to repaint, 0..1 (default 0.8; inpainting 1)");
  add("--mask <file>", "inpainting mask, the init image's size: white = repaint, black = keep");
  add("--lora <file[:scale]>", "apply a LoRA .safetensors (repeatable; scale default 1)", collect);
  add("--clip-skip <n>", "text-encoder layers to skip from the end (A1111's Clip skip minus 1)");
  add("--tokenizer <dir>", "tokenizer folder, for single-file checkpoints (which carry none)");
  add("--dtype <type>", "weights dtype in memory: float32, float16 or bfloat16 (default: the checkpoint's)");
  add("-o, --output <file>", "output PNG (default image-<seed>.png; -<i> is added per image of a batch)");
  add("--from <png>", "reproduce an image from the parameters stored in its PNG");
  add("--json", "print progress and the result as JSON lines");
  return cmd;
}

function int(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new CliError(`--${name} must be an integer >= ${min}, got "${v}"`);
  }
  return n;
}

function float(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new CliError(`--${name} must be a number, got "${v}"`);
  return n;
}

function seedOf(v: string | undefined): number | bigint | undefined {
  return v === undefined ? undefined : cliSeed(v);
}

/** "file.safetensors:0.8" -> path and scale (a trailing ":number" is the scale; default 1). */
export function parseLoraArg(arg: string): { path: string; scale: number } {
  const m = /^(.*):(-?\d*\.?\d+(?:e-?\d+)?)$/i.exec(arg);
  if (m && m[1]!.length > 0 && !/^[a-z]$/i.test(m[1]!)) return { path: m[1]!, scale: Number(m[2]) };
  return { path: arg, scale: 1 };
}

/** The generation settings stored in a PNG's `parameters` chunk (clear errors for a PNG without them). */
export function readParameters(path: string): GenerationSettings {
  const image = readImage(path);
  const text = image.text.parameters;
  if (!text) {
    const keys = Object.keys(image.text);
    throw new CliError(
      `${path}: no "parameters" text chunk (${keys.length ? `text chunks: ${keys.join(", ")}` : "the PNG has no text chunks"}); --from reads images written by diffuse generate or A1111`,
    );
  }
  return parseParameters(text);
}

function outputPaths(output: string | undefined, seed: number | bigint | undefined, n: number): string[] {
  const base = output ?? `image-${seed ?? "noseed"}.png`;
  if (n === 1) return [base];
  const ext = extname(base) || ".png";
  const stem = base.slice(0, base.length - extname(base).length);
  return Array.from({ length: n }, (_, i) => `${stem}-${i}${ext}`);
}

/** Runs the SD path of `diffuse generate`. */
export async function runSdGenerate(prompt: string | undefined, opts: SdGenerateOptions): Promise<void> {
  const say = (line: string) => process.stderr.write(`diffuse: ${line}\n`);
  const from = opts.from ? readParameters(opts.from) : null;
  if (!opts.model)
    throw new CliError("--model DIR|FILE is required (a diffusers folder or a .safetensors file)");
  const finalPrompt = prompt ?? from?.prompt;
  if (finalPrompt === undefined)
    throw new CliError('give a prompt: diffuse generate --model DIR "a photo of a cat"');
  const dtype = opts.dtype as DType | undefined;
  if (dtype && !["float32", "float16", "bfloat16"].includes(dtype)) {
    throw new CliError(`--dtype must be float32, float16 or bfloat16, got "${dtype}"`);
  }
  const explicitBatch = int(opts.numImages, "num-images", 1);
  const batchSize = explicitBatch ?? from?.batchSize ?? 1;
  // reproducing one image of a batch: draw the whole batch (its noise is one draw) and keep that image
  const keepOnly = explicitBatch === undefined && from?.batchSize !== undefined ? (from.batchPos ?? 0) : null;
  if (keepOnly !== null && (keepOnly < 0 || keepOnly >= batchSize)) {
    throw new CliError(`${opts.from}: Batch pos ${keepOnly} is outside a batch of ${batchSize}`);
  }
  const loraArgs = (opts.lora ?? []).map(parseLoraArg);
  if (from?.loras?.length && loraArgs.length === 0) {
    throw new CliError(
      `${opts.from} was made with LoRA ${from.loras.map((l) => `${l.name} (scale ${l.scale})`).join(", ")}; pass the file(s) with --lora FILE[:SCALE]`,
    );
  }
  if (from?.strength !== undefined && !opts.initImage) {
    throw new CliError(
      `${opts.from} was made by image-to-image or inpainting; pass the same --init-image (and --mask)`,
    );
  }
  const initImage: Image | undefined = opts.initImage ? readImage(opts.initImage) : undefined;
  const mask: Image | undefined = opts.mask ? readImage(opts.mask) : undefined;
  if (mask && !initImage) throw new CliError("--mask needs --init-image (the image to inpaint)");
  if (opts.strength !== undefined && !initImage) throw new CliError("--strength needs --init-image");

  const device = await resolveDevice(opts.device, (text) => {
    if (!opts.json) say(`warning: ${text}`);
  });
  // one reporter for loading and sampling; a load from the page cache takes about a second, so its bar shows
  // only when a load takes longer (every event with --json)
  const reporter = progressReporter({ json: opts.json });
  let result: Awaited<ReturnType<StableDiffusionPipeline["generate"]>>;
  let pipe: StableDiffusionPipeline;
  let modelHash: string | null | undefined;
  try {
    pipe = await loadStableDiffusionPipeline(opts.model, {
      tokenizer: opts.tokenizer,
      dtype,
      device,
      onProgress: opts.json ? reporter.onProgress : afterDelay(reporter.onProgress, 1000),
    });
    for (const { path, scale } of loraArgs) {
      const handle = await pipe.loadLora(path, { scale: loraScaleFor(path, scale, opts.lora, from) });
      const recorded = from?.loras?.find((l) => l.name === handle.name);
      const hash = recorded?.hash ? await loraHash(path) : undefined;
      if (recorded?.hash && hash !== recorded.hash) {
        say(
          `warning: LoRA ${path} has hash ${hash}, but ${opts.from} was made with ${recorded.hash}; the image will differ`,
        );
      }
    }
    // hashing reads the whole checkpoint (about a second per GB): done before sampling only when --from needs it
    if (from?.modelHash) modelHash = await pipe.modelHash();
    if (from?.modelHash && modelHash && from.modelHash !== modelHash) {
      say(
        `warning: model hash ${modelHash} differs from the image's ${from.modelHash} (${from.modelName ?? "?"}); the image will differ`,
      );
    }
    const seed = seedOf(opts.seed) ?? from?.seed;
    const options: GenerateOptions = {
      prompt: finalPrompt,
      negativePrompt: opts.negative ?? from?.negativePrompt,
      steps: int(opts.steps, "steps", 1) ?? from?.steps,
      sampler: opts.sampler ?? from?.sampler,
      guidanceScale: float(opts.guidance, "guidance") ?? from?.guidanceScale,
      guidanceRescale: float(opts.rescale, "rescale") ?? from?.guidanceRescale,
      guidanceInterval: resolveGuidanceInterval(
        guidanceIntervalOption(opts.guidanceInterval),
        from?.guidanceInterval,
      ),
      seed,
      width: int(opts.width, "width", 1) ?? from?.width,
      height: int(opts.height, "height", 1) ?? from?.height,
      numImages: batchSize,
      initImage,
      mask,
      strength: float(opts.strength, "strength") ?? (initImage ? from?.strength : undefined),
      clipSkip: int(opts.clipSkip, "clip-skip", 0) ?? from?.clipSkip,
      onProgress: reporter.onProgress,
      onWarning: (m) => say(`warning: ${m}`),
    };
    result = await pipe.generate(options);
    modelHash ??= await pipe.modelHash();
  } finally {
    reporter.stop();
  }
  const indices = keepOnly !== null ? [keepOnly] : result.images.map((_, i) => i);
  const paths = outputPaths(opts.output, result.settings.seed, indices.length);
  if (opts.from) {
    const clash = paths.find((p) => resolve(p) === resolve(opts.from!));
    if (clash) throw new CliError(`${clash}: would overwrite the --from image; choose another -o`);
  }
  const version = packageVersion();
  indices.forEach((i, k) => {
    const settings: GenerationSettings = {
      ...result.settings,
      batchPos: i,
      extra: { Version: `diffuse ${version}` },
    };
    if (modelHash) settings.modelHash = modelHash;
    writePng(paths[k]!, result.images[i]!, { parameters: formatParameters(settings) });
  });
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ type: "result", files: paths, seed: result.settings.seed?.toString(), settings: { ...result.settings, seed: result.settings.seed?.toString() } })}\n`,
    );
  } else {
    for (const p of paths) process.stdout.write(`${p}\n`);
  }
}

/** The scale of a --lora: the explicit ":scale", else (with --from) the recorded one for that file name, else 1. */
function loraScaleFor(
  path: string,
  parsed: number,
  raw: string[] | undefined,
  from: GenerationSettings | null,
): number {
  const explicit = (raw ?? []).some((a) => a !== path && parseLoraArg(a).path === path);
  if (explicit || !from?.loras) return parsed;
  const name = basename(path, extname(path));
  return from.loras.find((l) => l.name === name)?.scale ?? parsed;
}
