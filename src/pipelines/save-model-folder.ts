// Writing one model folder of a pipeline (Node.js: writes files): `config.json` plus the weights as safetensors,
// named as diffusers (`diffusion_pytorch_model.safetensors`) or transformers (`model.safetensors`) names them.
// Each file is written atomically.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { stringifyConfigJson } from "../io/config-json.js";
import { saveSafetensors } from "../io/safetensors.js";
import type { DType } from "../tensor/dtype.js";
import type { Tensor } from "../tensor/tensor.js";

/** Options of {@link saveModelFolder}. */
export interface SaveModelFolderOptions {
  /** The config.json object (with its `_class_name` / `architectures` as the library that reads it expects). */
  config: Readonly<Record<string, unknown>>;
  weights: ReadonlyMap<string, Tensor>;
  /** "diffusers" (default) or "transformers": the weights file's name. */
  library?: "diffusers" | "transformers";
  /** Stored dtype of floating-point weights (default: as they are). */
  dtype?: DType;
}

/** The JSON text of a config file (2-space indent, final newline, non-finite numbers bare, as diffusers writes them). */
export function configJson(value: unknown): string {
  return `${stringifyConfigJson(value, 2)}\n`;
}

/** Writes `dir/config.json` and the weights file (see {@link SaveModelFolderOptions}). */
export async function saveModelFolder(dir: string, opts: SaveModelFolderOptions): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const weights = new Map<string, Tensor>();
  for (const [k, t] of opts.weights) {
    const float = t.dtype === "float32" || t.dtype === "float16" || t.dtype === "bfloat16";
    weights.set(k, opts.dtype && float && opts.dtype !== t.dtype ? t.to(opts.dtype) : t);
  }
  const file = opts.library === "transformers" ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
  await saveSafetensors(join(dir, file), weights, { format: "pt" });
  writeFileAtomic(join(dir, "config.json"), configJson(opts.config));
}
