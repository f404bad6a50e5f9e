// The models and LoRAs a server offers, by name. Requests name them; paths never come from a request: a name is
// looked up in the table built at start-up from --model entries and the configured folders, so "../x" is simply
// an unknown name.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, extname, join, resolve } from "node:path";
import {
  type ClassConditionalPipeline,
  loadClassConditionalPipeline,
} from "../pipelines/class-conditional.js";
import { MODEL_INDEX, readModelIndex } from "../pipelines/model-index.js";
import {
  isStableDiffusionModel,
  SHIPPED_MODEL_DIR,
  SHIPPED_TEXT_MODEL_DIR,
} from "../pipelines/model-kind.js";
import type { StableDiffusionPipeline } from "../pipelines/stable-diffusion.js";
import { loadStableDiffusionPipeline } from "../pipelines/stable-diffusion-xl.js";
import type { Device } from "../tensor/device.js";
import { HttpError, ServerConfigError } from "./errors.js";

/** One servable model. */
export interface ModelEntry {
  readonly name: string;
  readonly kind: "class-conditional" | "stable-diffusion";
  /** Where it is on disk (never sent to clients). */
  readonly path: string;
  /** Class-conditional models: the number of classes and the fixed image size. */
  readonly classes?: number;
  readonly size?: { width: number; height: number };
}

/** A model in memory. */
export type LoadedModel =
  | { entry: ModelEntry; kind: "class-conditional"; pipeline: ClassConditionalPipeline }
  | { entry: ModelEntry; kind: "stable-diffusion"; pipe: StableDiffusionPipeline };

/** Where a server finds its models and LoRAs. */
export interface ModelCatalogOptions {
  /** Model folders / .safetensors files, or names of models in `modelsDir`; the first is the default model. */
  models?: readonly string[];
  /** A folder whose model folders and .safetensors checkpoints are offered. */
  modelsDir?: string;
  /** A folder whose .safetensors LoRAs are offered. */
  lorasDir?: string;
  /** Tokenizer folder for single-file checkpoints (which carry none). */
  tokenizer?: string;
  /** The device models compute on (default "cpu"). */
  device?: Device;
}

/** The name of a model or LoRA path: its folder name, or its file name without ".safetensors". */
function nameOf(path: string): string {
  const base = basename(resolve(path));
  return extname(base).toLowerCase() === ".safetensors" ? base.slice(0, -".safetensors".length) : base;
}

async function entryOf(path: string, name = nameOf(path)): Promise<ModelEntry> {
  if (!existsSync(path)) throw new ServerConfigError(`model ${path} not found`);
  if (await isStableDiffusionModel(path)) return { name, kind: "stable-diffusion", path };
  if (!statSync(path).isDirectory() || !existsSync(join(path, MODEL_INDEX))) {
    throw new ServerConfigError(
      `${path} is neither a model folder with ${MODEL_INDEX} nor a .safetensors Stable Diffusion checkpoint`,
    );
  }
  const index = await readModelIndex(path);
  if (index.components.unet?.[1] !== "UNet2DModel") {
    throw new ServerConfigError(`${index.path}: pipeline "${index.className}" cannot be served`);
  }
  // the class count and image size are read from the config, so requests are checked before anything loads
  const config = JSON.parse(readFileSync(join(path, "unet", "config.json"), "utf8")) as Record<
    string,
    unknown
  >;
  const embeds = Number(config.num_class_embeds ?? 0);
  const s = config.sample_size;
  const [h, w] = Array.isArray(s) ? [Number(s[0]), Number(s[1])] : [Number(s), Number(s)];
  return { name, kind: "class-conditional", path, classes: embeds - 1, size: { width: w, height: h } };
}

/** The servable files of a folder: model folders (with model_index.json) and .safetensors files. */
function folderEntries(dir: string, want: "models" | "loras"): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new ServerConfigError(`folder ${dir} not found`);
  return readdirSync(dir)
    .sort()
    .map((f) => join(dir, f))
    .filter((p) =>
      /\.safetensors$/i.test(p)
        ? statSync(p).isFile()
        : want === "models" && statSync(p).isDirectory() && existsSync(join(p, MODEL_INDEX)),
    );
}

/** The models and LoRAs of a server, by name, with the current default model and one model kept loaded. */
export class ModelCatalog {
  #models = new Map<string, ModelEntry>();
  #loras = new Map<string, string>();
  #default: string;
  #loaded: LoadedModel | null = null;

  private constructor(
    models: ModelEntry[],
    loras: Map<string, string>,
    defaultName: string,
    readonly options: ModelCatalogOptions,
  ) {
    for (const m of models) this.#models.set(m.name, m);
    this.#loras = loras;
    this.#default = defaultName;
  }

  /** Scans the folders and checks every --model entry (errors name the path). */
  static async create(opts: ModelCatalogOptions = {}): Promise<ModelCatalog> {
    const models: ModelEntry[] = [];
    const add = (m: ModelEntry) => {
      const clash = models.find((x) => x.name === m.name);
      if (clash && resolve(clash.path) !== resolve(m.path)) {
        throw new ServerConfigError(`two models are named "${m.name}": ${clash.path} and ${m.path}`);
      }
      if (!clash) models.push(m);
    };
    const inDir = opts.modelsDir ? folderEntries(opts.modelsDir, "models") : [];
    const dirEntries = await Promise.all(inDir.map((p) => entryOf(p)));
    let defaultName: string | undefined;
    for (const arg of opts.models ?? []) {
      const named = dirEntries.find((e) => e.name === arg);
      const entry = named ?? (existsSync(arg) ? await entryOf(arg) : undefined);
      if (!entry) {
        throw new ServerConfigError(
          `--model ${arg}: no such file or folder${opts.modelsDir ? `, and no model of that name in ${opts.modelsDir}` : ""}`,
        );
      }
      add(entry);
      defaultName ??= entry.name;
    }
    // both shipped models are always served; the text-to-image one is the default when no --model is given
    const shipped = [await entryOf(SHIPPED_TEXT_MODEL_DIR), await entryOf(SHIPPED_MODEL_DIR)];
    for (const e of shipped) if (!models.some((m) => m.name === e.name)) add(e);
    for (const e of dirEntries) add(e);
    const loras = new Map<string, string>();
    for (const p of opts.lorasDir ? folderEntries(opts.lorasDir, "loras") : []) loras.set(nameOf(p), p);
    return new ModelCatalog(models, loras, defaultName ?? shipped[0]!.name, opts);
  }

  /** Every model, the default first. */
  list(): ModelEntry[] {
    const all = [...this.#models.values()];
    return [this.#models.get(this.#default)!, ...all.filter((m) => m.name !== this.#default)];
  }

  /** The model of that name (default: the default model), or a 400 listing the names. */
  get(name?: string): ModelEntry {
    const entry = this.#models.get(name ?? this.#default);
    if (!entry) {
      throw new HttpError(
        400,
        `unknown model ${JSON.stringify(name)}; this server has: ${[...this.#models.keys()].join(", ")}`,
      );
    }
    return entry;
  }

  /** The default model's name. */
  get defaultModel(): string {
    return this.#default;
  }

  /** Makes `name` the default model (400 when unknown). */
  setDefault(name: string): void {
    this.#default = this.get(name).name;
  }

  /** The LoRA names. */
  loraNames(): string[] {
    return [...this.#loras.keys()].sort();
  }

  /** The file of a LoRA name, or a 400 listing the names. */
  loraPath(name: string): string {
    const path = this.#loras.get(name);
    if (path === undefined) {
      const known = this.loraNames();
      throw new HttpError(
        400,
        `unknown LoRA ${JSON.stringify(name)}; ${known.length ? `this server has: ${known.join(", ")}` : "this server has none (start it with --loras-dir DIR)"}`,
      );
    }
    return path;
  }

  /** The model in memory, loading it (and dropping the one before) when another is asked for. */
  async load(name: string): Promise<LoadedModel> {
    const entry = this.get(name);
    if (this.#loaded?.entry.name === entry.name) return this.#loaded;
    this.#loaded = null; // let the previous model be collected before the next one is read
    const device = this.options.device;
    this.#loaded =
      entry.kind === "class-conditional"
        ? { entry, kind: entry.kind, pipeline: await loadClassConditionalPipeline(entry.path, { device }) }
        : {
            entry,
            kind: entry.kind,
            pipe: await loadStableDiffusionPipeline(entry.path, {
              device,
              tokenizer: this.options.tokenizer,
            }),
          };
    return this.#loaded;
  }
}
