/**
 * `diffuse generate`: images from a model folder. The folder's `model_index.json` `_class_name` picks the pipeline;
 * today that is the class-conditional pixel pipeline (`diffuse train mnist`), whose shipped model under
 * models/mnist is the default. Each image i is sampled with seed + i on its own, so any one image can be redone
 * alone; PNGs carry the settings in an A1111-style `parameters` text chunk.
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import type { Command } from "commander";
import { imageGrid, tensorToImage, writePng } from "../io/image.js";
import { select, toDeviceAsync } from "../ops/index.js";
import {
  CLASS_CONDITIONAL_PIPELINE,
  generateClassImages,
  loadClassConditionalPipeline,
} from "../pipelines/class-conditional.js";
import { formatGuidanceInterval, type GuidanceInterval, usesGuidance } from "../pipelines/guidance.js";
import { MODEL_INDEX, readModelIndex } from "../pipelines/model-index.js";
import {
  isStableDiffusionModel,
  SHIPPED_MODEL_DIR,
  SHIPPED_TEXT_MODEL_DIR,
} from "../pipelines/model-kind.js";
import { formatParameters } from "../pipelines/params.js";
import { samplerFromName, samplerSpec } from "../schedulers/samplers.js";
import type { Device } from "../tensor/device.js";
import type { ProgressCallback } from "../tensor/progress.js";
import { addDeviceOption, resolveDevice } from "./device-option.js";
import { CliError } from "./errors.js";
import {
  addSdGenerateOptions,
  readParameters,
  runSdGenerate,
  type SdGenerateOptions,
} from "./generate-sd.js";
import { guidanceIntervalOption, resolveGuidanceInterval } from "./guidance-interval-option.js";
import { cliInt, cliSeed, offsetSeed } from "./option-values.js";
import { progressReporter } from "./progress.js";

export { SHIPPED_MODEL_DIR };

/** Parsed options of `diffuse generate`. */
export interface GenerateCliOptions {
  model?: string;
  class?: string;
  numImages?: string;
  sampler?: string;
  steps?: string;
  guidance?: string;
  /** "LO,HI" or "all" (default: the model folder's). */
  guidanceInterval?: string;
  seed?: string;
  output?: string;
  grid?: string;
  json?: boolean;
  device?: string;
}

/** Settings shared by the pipelines. */
interface GenerateSettings {
  modelDir: string;
  numImages: number;
  sampler: string;
  steps: number;
  guidance: number;
  /** Typed interval; null = every step guided; undefined = the model's default. */
  guidanceInterval: GuidanceInterval | null | undefined;
  seed: number | bigint;
  output: string;
  grid?: string;
  classes?: string;
  onProgress: ProgressCallback;
  /** Called with each file written. */
  onFile: (path: string, info: Record<string, unknown>) => void;
  device: Device;
}

/** `out.png` for one image; `out-0.png`, `out-1.png`, ... for several. */
export function outputPaths(output: string, n: number): string[] {
  const ext = extname(output).toLowerCase() === ".png" ? extname(output) : "";
  if (extname(output) !== "" && ext === "") throw new CliError(`-o must name a .png file, got "${output}"`);
  const stem = ext ? output.slice(0, -ext.length) : output;
  if (n === 1) return [`${stem}.png`];
  return Array.from({ length: n }, (_, i) => `${stem}-${i}.png`);
}

/** The class-conditional pipeline: `--class` (one number or a comma list, cycled; default 0..9 cycled). */
async function generateClassConditional(s: GenerateSettings): Promise<void> {
  const {
    unet,
    scheduler,
    guidanceInterval: modelInterval,
  } = await loadClassConditionalPipeline(s.modelDir, {
    device: s.device,
  });
  const guidanceInterval = resolveGuidanceInterval(s.guidanceInterval, modelInterval);
  const numClasses = unet.numClassEmbeds - 1;
  const classes =
    s.classes === undefined
      ? [...Array(numClasses).keys()]
      : s.classes.split(",").map((c) => {
          const n = Number(c.trim());
          if (c.trim() === "" || !Number.isInteger(n) || n < 0 || n >= numClasses) {
            throw new CliError(
              `--class must be integers in 0..${numClasses - 1} for this model, got "${c.trim()}"`,
            );
          }
          return n;
        });
  const paths = outputPaths(s.output, s.numImages);
  requireFolderOf(paths[0]!);
  const modelName = basename(resolve(s.modelDir));
  // A1111-style parameters text (the class as the prompt), with the interval when one applied
  const parametersText = (prompt: string, seed: number | bigint, width: number, height: number) =>
    formatParameters({
      prompt,
      negativePrompt: "",
      steps: s.steps,
      sampler: s.sampler,
      guidanceScale: s.guidance,
      seed,
      width,
      height,
      modelName,
      guidanceInterval: usesGuidance(s.guidance) ? guidanceInterval : undefined,
    });
  const images = [];
  for (let i = 0; i < s.numImages; i++) {
    const label = classes[i % classes.length]!;
    const seed = offsetSeed(s.seed, i);
    const sampler = samplerFromName(s.sampler, scheduler.config);
    const x = await generateClassImages(unet, sampler, {
      classLabels: [label],
      guidanceScale: s.guidance,
      guidanceInterval,
      steps: s.steps,
      seed,
      onProgress: (e) => {
        const per = e.total ?? s.steps; // model calls per image (Heun makes two per step)
        s.onProgress({ ...e, step: i * per + e.step, total: s.numImages * per });
      },
    });
    const image = tensorToImage(select(await toDeviceAsync(x, "cpu"), 0, 0));
    images.push(image);
    const parameters = parametersText(`class ${label}`, seed, image.width, image.height);
    writePng(paths[i]!, image, { parameters });
    // JSON numbers are exact below 2^53: a larger seed is written as a string
    s.onFile(paths[i]!, { class: label, seed: typeof seed === "bigint" ? seed.toString() : seed });
  }
  if (s.grid) {
    requireFolderOf(s.grid);
    const labels = `classes ${images.map((_, i) => classes[i % classes.length]).join(",")}`;
    const parameters = parametersText(labels, s.seed, images[0]!.width, images[0]!.height);
    writePng(s.grid, imageGrid(images, Math.min(images.length, 10)), { parameters });
    s.onFile(s.grid, { grid: true });
  }
}

/** Throws a CliError unless the folder `path` goes into exists. */
function requireFolderOf(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) throw new CliError(`output folder ${dir} does not exist`);
}

/** Pipelines by model_index.json `_class_name`. */
const PIPELINES: Record<string, (s: GenerateSettings) => Promise<void>> = {
  [CLASS_CONDITIONAL_PIPELINE]: generateClassConditional,
};

/** The `_class_name` of a model folder's model_index.json, with clear errors for what is not a model folder. */
export async function pipelineClassOf(dir: string): Promise<string> {
  if (!existsSync(dir)) throw new CliError(`model folder ${dir} not found`);
  if (!statSync(dir).isDirectory()) throw new CliError(`--model ${dir} is not a folder`);
  if (!existsSync(join(dir, MODEL_INDEX))) {
    throw new CliError(
      `${dir} is not a pipeline folder: it has no ${MODEL_INDEX} (train one with "diffuse train mnist")`,
    );
  }
  const index = await readModelIndex(dir);
  if (!(index.className in PIPELINES)) {
    throw new CliError(
      `${index.path}: pipeline ${JSON.stringify(index.className)} is not supported by generate (supported: ${Object.keys(PIPELINES).join(", ")})`,
    );
  }
  return index.className;
}

/** Defaults of the class-conditional path (the SD path has its own; see generate-sd.ts). */
const CLASS_DEFAULTS = {
  numImages: "1",
  sampler: "dpmpp-2m",
  steps: "20",
  guidance: "3",
  seed: "0",
  output: "out.png",
};

/** Runs the class-conditional path of `diffuse generate`. */
export async function runGenerate(o: Partial<GenerateCliOptions>): Promise<void> {
  const v = {
    ...CLASS_DEFAULTS,
    ...Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)),
  };
  samplerSpec(v.sampler); // unknown sampler names fail before any loading
  const guidance = Number(v.guidance);
  if (v.guidance.trim() === "" || !Number.isFinite(guidance)) {
    throw new CliError(`--guidance must be a number, got "${v.guidance}"`);
  }
  const modelDir = o.model ?? SHIPPED_MODEL_DIR;
  const pipeline = PIPELINES[await pipelineClassOf(modelDir)]!;
  const device = await resolveDevice(o.device, (text) => {
    if (!o.json) process.stderr.write(`diffuse: warning: ${text}\n`);
  });
  const reporter = progressReporter({ json: o.json });
  try {
    await pipeline({
      device,
      modelDir,
      numImages: cliInt("num-images", v.numImages, 1),
      sampler: v.sampler,
      steps: cliInt("steps", v.steps, 1),
      guidance,
      guidanceInterval: guidanceIntervalOption(o.guidanceInterval),
      seed: cliSeed(v.seed),
      output: v.output,
      grid: o.grid,
      classes: o.class,
      onProgress: reporter.onProgress,
      onFile: (path, info) => {
        if (o.json) process.stdout.write(`${JSON.stringify({ type: "image", path, ...info })}\n`);
      },
    });
  } finally {
    reporter.stop();
  }
}

/** Options of both paths, as commander parses them. */
type AllGenerateOptions = Partial<GenerateCliOptions> & SdGenerateOptions;

/**
 * Adds `generate` to the program: a Stable Diffusion model (a .safetensors file, or a folder whose model_index.json
 * names a StableDiffusion* pipeline) goes to the text-to-image path, every other folder to the pipeline its
 * model_index.json names (class-conditional today; the shipped MNIST model without --model).
 */
export function registerGenerate(program: Command): void {
  const cmd = program
    .command("generate")
    .description(
      "generate images: from a prompt (default: the shipped emoji model) or a class (default: the shipped MNIST model)",
    )
    .argument("[prompt]", "text prompt (text-to-image models)")
    .option(
      "--model <path>",
      "model folder or SD checkpoint (default: models/emoji with a prompt, models/mnist without)",
    )
    .option(
      "--class <list>",
      "class-conditional: class label, or a comma list cycled over the images (default: all)",
    )
    .option("--num-images <n>", "number of images (default 1)")
    .option(
      "--sampler <name>",
      "sampler: dpmpp-2m, euler-a, ddim, unipc, ... (class-conditional default dpmpp-2m)",
    )
    .option("--steps <n>", "inference steps (class-conditional default 20)")
    .option("--guidance <g>", "classifier-free guidance scale (class-conditional default 3)")
    .option("--seed <n>", "seed (class-conditional: of the first image, image i uses seed + i; default 0)")
    .option(
      "-o, --output <file>",
      "output PNG (several images: <name>-<i>.png; class-conditional default out.png)",
    )
    .option("--grid <file>", "class-conditional: also write all images as one grid PNG")
    .option("--json", "print progress and written files as JSON lines");
  addSdGenerateOptions(cmd);
  addDeviceOption(cmd);
  cmd.action(async (prompt: string | undefined, o: AllGenerateOptions) => {
    // a class-conditional PNG ("class 7" as its prompt) is replayed by the class-conditional path
    if (o.from !== undefined) {
      const p = readParameters(o.from);
      if (/^classes /.test(p.prompt))
        throw new CliError(`${o.from} is a grid of several classes; replay one of its images instead`);
      const cls = /^class (\d+)$/.exec(p.prompt);
      if (cls) {
        if (prompt !== undefined)
          throw new CliError(`${o.from} is a class-conditional image: it takes no prompt`);
        const shipped = basename(SHIPPED_MODEL_DIR);
        if (o.model === undefined && p.modelName !== shipped)
          throw new CliError(
            `${o.from} was made with the model "${p.modelName ?? "unknown"}", not the shipped ${shipped}; pass --model DIR`,
          );
        const { from: _, ...rest } = o;
        return runGenerate({
          ...rest,
          class: o.class ?? cls[1],
          steps: o.steps ?? String(p.steps),
          sampler: o.sampler ?? p.sampler,
          guidance: o.guidance ?? String(p.guidanceScale),
          seed: o.seed ?? (p.seed !== undefined ? p.seed.toString() : undefined),
          guidanceInterval:
            o.guidanceInterval ?? (p.guidanceInterval ? formatGuidanceInterval(p.guidanceInterval) : "all"),
        });
      }
      // an image of the shipped text-to-image model replays with it
      if (o.model === undefined && p.modelName === basename(SHIPPED_TEXT_MODEL_DIR))
        return runSdGenerate(prompt, { ...o, model: SHIPPED_TEXT_MODEL_DIR });
    }
    const textToImage =
      o.from !== undefined ||
      (o.model !== undefined && (await isStableDiffusionModel(o.model))) ||
      (prompt !== undefined && o.model === undefined && o.class === undefined);
    if (textToImage) {
      const classOnly = [o.class !== undefined && "--class", o.grid !== undefined && "--grid"].filter(
        Boolean,
      );
      if (classOnly.length > 0)
        throw new CliError(
          `${classOnly.join(", ")} ${classOnly.length > 1 ? "apply" : "applies"} to class-conditional models; this is a text-to-image run (give a prompt)`,
        );
      // a prompt without --model: the shipped text-to-image model
      return runSdGenerate(
        prompt,
        o.model === undefined && !o.from ? { ...o, model: SHIPPED_TEXT_MODEL_DIR } : o,
      );
    }
    // options of the text-to-image path that a class-conditional model has no use for: refused, not ignored
    const textOnly: [keyof AllGenerateOptions, string][] = [
      ["negative", "--negative"],
      ["rescale", "--rescale"],
      ["width", "--width"],
      ["height", "--height"],
      ["initImage", "--init-image"],
      ["strength", "--strength"],
      ["mask", "--mask"],
      ["lora", "--lora"],
      ["clipSkip", "--clip-skip"],
      ["tokenizer", "--tokenizer"],
      ["dtype", "--dtype"],
    ];
    const given = textOnly.filter(([k]) => o[k] !== undefined).map(([, flag]) => flag);
    if (given.length > 0) {
      throw new CliError(
        `${given.join(", ")} ${given.length > 1 ? "apply" : "applies"} to text-to-image models; ${o.model ?? "the shipped MNIST model"} is class-conditional (it takes --class, --num-images, --sampler, --steps, --guidance, --guidance-interval, --seed, -o, --grid)`,
      );
    }
    if (prompt !== undefined) {
      throw new CliError(
        `a prompt was given, but ${o.model ?? "the shipped MNIST model"} is not a Stable Diffusion model (class-conditional models take --class)`,
      );
    }
    return runGenerate(o);
  });
}
