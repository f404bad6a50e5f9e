// Applying LoRA files to a Stable Diffusion model set (UNet and text encoders): every entry is resolved to a module
// and shape-checked first, and a LoRA that does not fit is refused with LoraMismatchError before any weight is
// touched, naming the model family it was made for when its keys tell. Fitting LoRAs are merged into the weights or
// attached on the fly (src/nn/lora.ts); several can be active at once, and each handle removes exactly its own.
import {
  kohyaNameIndex,
  LORA_FAMILY_LABEL,
  type LoraEntry,
  type LoraFamily,
  type LoraFamilyHint,
  LoraFormatError,
  type LoraTargetName,
  type ParsedLora,
  parseLora,
  resolveKohyaName,
} from "../io/lora-format.js";
import { loadSafetensors } from "../io/safetensors-read.js";
import { describeInput, type FileInput } from "../io/source.js";
import { UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import {
  addLoraAdapter,
  type LoraAdapter,
  type LoraLayer,
  type LoraMode,
  loraShapeProblem,
} from "../nn/lora.js";
import type { Module } from "../nn/module.js";
import { ArgumentError, DiffuseError } from "../tensor/errors.js";
import { baseName, stem } from "./pipeline-source.js";

export {
  type LoraEntry,
  type LoraFamily,
  type LoraFamilyHint,
  type LoraFormat,
  LoraFormatError,
  type LoraTargetName,
  type ParsedLora,
  parseLora,
} from "../io/lora-format.js";
export type { LoraMode } from "../nn/lora.js";

/** The models a LoRA may adapt. */
export interface LoraModels {
  unet: Module;
  /** CLIPTextModel (SD 1/2, SDXL's first encoder). */
  textEncoder?: Module | null;
  /** SDXL's CLIPTextModelWithProjection. */
  textEncoder2?: Module | null;
}

/** Options of {@link applyLora}. */
export interface ApplyLoraOptions {
  /** Strength s (default 1): W' = W + s · (α / r) · B A. */
  scale?: number;
  /** "merge" (default): fold into the weights; "adapter": add on the fly, weights untouched. */
  mode?: LoraMode;
  /** Label for messages (default: the file name for {@link loadLora} results, else "lora"). */
  name?: string;
}

/** A LoRA in place on a model set. */
export interface LoraHandle {
  readonly name: string;
  readonly mode: LoraMode;
  /** One adapter per adapted module. */
  readonly adapters: readonly LoraAdapter[];
  readonly scale: number;
  /** False after {@link remove}. */
  readonly active: boolean;
  /** Changes the strength of every module of this LoRA. */
  setScale(scale: number): void;
  /** Takes this LoRA off every module; other LoRAs stay. */
  remove(): void;
}

/** A parsed LoRA file with its name. */
export interface LoadedLora extends ParsedLora {
  name: string;
  /** The file's path, URL or name (for messages). */
  path: string;
}

/**
 * A LoRA does not fit the models it was applied to: modules it names are missing, or its shapes differ. Nothing was
 * changed. `loraFamily` / `modelFamily`: the families of each, when known.
 */
export class LoraMismatchError extends DiffuseError {
  readonly problems: readonly string[];
  readonly loraFamily: LoraFamily | null;
  readonly modelFamily: LoraFamily | null;

  constructor(
    name: string,
    problems: readonly string[],
    total: number,
    hint: LoraFamilyHint | null,
    model: { family: LoraFamily | null; label: string },
  ) {
    const shown = problems.slice(0, 8).map((p) => `\n  - ${p}`);
    if (problems.length > 8) shown.push(`\n  ... and ${problems.length - 8} more`);
    let family = "";
    if (hint && hint.family !== model.family) {
      family =
        `\n  This LoRA looks made for ${LORA_FAMILY_LABEL[hint.family]} (${hint.reasons.join("; ")}), ` +
        `but the loaded model is ${model.label}. Use a LoRA trained for ${model.label}, or load a ` +
        `${LORA_FAMILY_LABEL[hint.family]} model.`;
    }
    super(
      `LoRA "${name}" does not fit the loaded model (${problems.length} problem${problems.length === 1 ? "" : "s"} ` +
        `in ${total} modules); nothing was applied:${shown.join("")}${family}`,
    );
    this.problems = problems;
    this.loraFamily = hint?.family ?? null;
    this.modelFamily = model.family;
  }
}

/** The family of a loaded UNet from its config (cross-attention width), and a label for messages. */
export function modelFamily(unet: Module): { family: LoraFamily | null; label: string } {
  if (!(unet instanceof UNet2DConditionModel)) return { family: null, label: `a ${unet.constructor.name}` };
  const c = unet.config.cross_attention_dim;
  const cross = typeof c === "number" ? c : c[0]!;
  const family: LoraFamily | null =
    cross === 2048 ? "sdxl" : cross === 1024 ? "sd2" : cross === 768 ? "sd1" : null;
  return family
    ? { family, label: `${LORA_FAMILY_LABEL[family]} (cross_attention_dim ${cross})` }
    : { family: null, label: `a UNet with cross_attention_dim ${cross} (not SD 1.x, 2.x or XL)` };
}

/**
 * Reads a LoRA `.safetensors` file (PEFT, diffusers or kohya layout; a path, or in browsers a File, URL or bytes)
 * and parses it; apply it with {@link applyLora}. `name` defaults to the file name without extension. Throws
 * SafetensorsError for unreadable files and LoraFormatError for files that are not a supported LoRA.
 */
export async function loadLora(file: FileInput, name?: string): Promise<LoadedLora> {
  const path = describeInput(file);
  const fileName = baseName(path);
  const ext = fileName.includes(".") ? fileName.slice(fileName.lastIndexOf(".")).toLowerCase() : "";
  // bytes and unnamed Blobs have no name to check
  if (path !== "<buffer>" && path !== "<blob>" && ext !== ".safetensors") {
    throw new LoraFormatError(
      `${path}: LoRA files are read as .safetensors only (got "${ext || "no extension"}"); convert pickled ` +
        ".ckpt / .pt / .bin files to safetensors first",
    );
  }
  const { tensors, metadata } = await loadSafetensors(file);
  try {
    return { ...parseLora(tensors, metadata), name: name ?? stem(fileName), path };
  } catch (err) {
    if (err instanceof LoraFormatError) throw new LoraFormatError(`${path}: ${err.message}`);
    throw err;
  }
}

const TARGET_LABEL: Readonly<Record<LoraTargetName, string>> = {
  unet: "UNet",
  text_encoder: "text encoder",
  text_encoder_2: "second text encoder (text_encoder_2)",
};

interface Resolved {
  entry: LoraEntry;
  path: string;
  layer: LoraLayer;
}

/** Per target model: its modules by dotted path, and (lazily) the kohya name index. */
class ModelView {
  readonly modules: Map<string, Module>;
  #index: Map<string, string | null> | null = null;
  constructor(readonly model: Module) {
    this.modules = new Map(model.namedModules());
  }
  get index(): Map<string, string | null> {
    this.#index ??= kohyaNameIndex(this.modules.keys());
    return this.#index;
  }
}

/** Every entry resolved and shape-checked; the list of problems when any does not fit. */
function resolveAll(models: LoraModels, lora: ParsedLora): { resolved: Resolved[]; problems: string[] } {
  const views: Partial<Record<LoraTargetName, ModelView | null>> = {};
  const view = (t: LoraTargetName): ModelView | null => {
    if (!(t in views)) {
      const m = t === "unet" ? models.unet : t === "text_encoder" ? models.textEncoder : models.textEncoder2;
      views[t] = m ? new ModelView(m) : null;
    }
    return views[t]!;
  };
  const unet = models.unet;
  const layersPerBlock = unet instanceof UNet2DConditionModel ? unet.config.layers_per_block : 2;
  const problems: string[] = [];
  const resolved: Resolved[] = [];
  const seen = new Map<string, string>();
  for (const entry of lora.entries) {
    const v = view(entry.target);
    if (!v) {
      problems.push(
        `${entry.sourceName}: the LoRA adapts a ${TARGET_LABEL[entry.target]}, but none is loaded`,
      );
      continue;
    }
    let path = entry.modulePath;
    if (entry.pathStyle === "kohya") {
      const r = resolveKohyaName(entry.modulePath, entry.target, v.index, layersPerBlock);
      if ("problem" in r) {
        problems.push(
          `${entry.sourceName}: ${r.problem.replace("the model", `the ${TARGET_LABEL[entry.target]}`)}`,
        );
        continue;
      }
      path = r.path;
    }
    const layer = v.modules.get(path);
    if (!layer) {
      problems.push(`${entry.sourceName}: no module ${path} in the ${TARGET_LABEL[entry.target]}`);
      continue;
    }
    const key = `${entry.target}:${path}`;
    const before = seen.get(key);
    if (before) {
      problems.push(`${entry.sourceName}: adapts ${path}, which ${before} adapts already`);
      continue;
    }
    seen.set(key, entry.sourceName);
    const shape = loraShapeProblem(layer, entry);
    if (shape) {
      problems.push(`${entry.sourceName} (${path}): ${shape}`);
      continue;
    }
    resolved.push({ entry, path, layer: layer as LoraLayer });
  }
  return { resolved, problems };
}

/**
 * Applies a parsed LoRA ({@link loadLora} / parseLora) to a UNet and, when the LoRA adapts them, the text encoders.
 * Every module and shape is checked first: a LoRA that does not fit throws {@link LoraMismatchError} and changes
 * nothing. Returns a handle to rescale or remove it; other LoRAs applied before or after are unaffected.
 *
 * @example
 * const lora = await loadLora("style.safetensors");
 * const h = applyLora({ unet, textEncoder }, lora, { scale: 0.8 });
 * // ... generate ...
 * h.remove();
 */
export function applyLora(models: LoraModels, lora: ParsedLora, opts: ApplyLoraOptions = {}): LoraHandle {
  const name = opts.name ?? (lora as Partial<LoadedLora>).name ?? "lora";
  const mode = opts.mode ?? "merge";
  if (mode !== "merge" && mode !== "adapter")
    throw new ArgumentError(`applyLora: mode must be "merge" or "adapter", got ${JSON.stringify(mode)}`);
  let scale = opts.scale ?? 1;
  if (!Number.isFinite(scale))
    throw new ArgumentError(`applyLora: scale must be a finite number, got ${scale}`);
  const { resolved, problems } = resolveAll(models, lora);
  if (problems.length > 0) {
    throw new LoraMismatchError(
      name,
      problems,
      lora.entries.length,
      lora.familyHint,
      modelFamily(models.unet),
    );
  }
  const adapters: LoraAdapter[] = [];
  try {
    for (const r of resolved) {
      const weights = { down: r.entry.down, up: r.entry.up, alpha: r.entry.alpha };
      adapters.push(addLoraAdapter(r.layer, weights, { scale, mode, name: `${name}:${r.path}` }));
    }
  } catch (err) {
    for (const a of adapters.reverse()) a.remove();
    throw err;
  }
  let active = true;
  return {
    name,
    mode,
    adapters,
    get scale() {
      return scale;
    },
    get active() {
      return active;
    },
    setScale(s: number) {
      if (!active) throw new ArgumentError(`LoRA "${name}": setScale after remove()`);
      if (!Number.isFinite(s)) throw new ArgumentError(`LoRA "${name}": scale must be finite, got ${s}`);
      for (const a of adapters) a.setScale(s);
      scale = s;
    },
    remove() {
      if (!active) return;
      for (const a of [...adapters].reverse()) a.remove();
      active = false;
    },
  };
}
