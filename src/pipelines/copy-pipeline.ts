// Copying a diffusers pipeline folder (Node.js: reads and writes files): model_index.json and every component's
// folder, config and tokenizer files as they are, safetensors weights re-written with floating-point tensors in
// another dtype (e.g. float16 to ship a model at half the size). Training leftovers (checkpoint/, samples/) and
// files that are not part of a component are not copied.
import { copyFileSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadSafetensors, saveSafetensors } from "../io/safetensors.js";
import type { DType } from "../tensor/dtype.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";
import { MODEL_INDEX, readModelIndex } from "./model-index.js";

const FLOATS = new Set<DType>(["float32", "float16", "bfloat16"]);

/** What {@link copyPipelineFolder} wrote. */
export interface CopiedPipeline {
  components: string[];
  /** Bytes of weights written. */
  weightBytes: number;
}

/** Copies the pipeline folder `src` to `dst` (see the file comment); `dtype` recasts the floating-point weights. */
export async function copyPipelineFolder(
  src: string,
  dst: string,
  opts: { dtype?: DType } = {},
): Promise<CopiedPipeline> {
  if (opts.dtype && !FLOATS.has(opts.dtype))
    throw new ArgumentError(
      `copyPipelineFolder: dtype must be float32, float16 or bfloat16, got ${opts.dtype}`,
    );
  const index = await readModelIndex(src);
  mkdirSync(dst, { recursive: true });
  copyFileSync(join(src, MODEL_INDEX), join(dst, MODEL_INDEX));
  const components: string[] = [];
  let weightBytes = 0;
  for (const [name, entry] of Object.entries(index.components)) {
    if (!entry) continue;
    const from = join(src, name);
    const to = join(dst, name);
    mkdirSync(to, { recursive: true });
    for (const file of readdirSync(from)) {
      const path = join(from, file);
      if (!statSync(path).isFile()) continue;
      if (file.endsWith(".safetensors")) {
        const { tensors, metadata } = await loadSafetensors(path);
        const out = new Map<string, Tensor>();
        for (const [k, t] of tensors) out.set(k, opts.dtype && FLOATS.has(t.dtype) ? t.to(opts.dtype) : t);
        await saveSafetensors(join(to, file), out, metadata);
        weightBytes += statSync(join(to, file)).size;
      } else if (/\.(json|txt)$/.test(file)) {
        copyFileSync(path, join(to, file));
      }
    }
    components.push(name);
  }
  return { components, weightBytes };
}
