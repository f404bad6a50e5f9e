// Which pipeline a model path holds, and where the shipped model is (Node.js: reads the file system). The CLI and
// the server pick their code path with these.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MODEL_INDEX, readModelIndex } from "./model-index.js";

/** The shipped class-conditional MNIST model (inside the package: resolves from src/ and dist/ alike). */
export const SHIPPED_MODEL_DIR = fileURLToPath(new URL("../../models/mnist", import.meta.url));

/** The shipped text-to-image model (a Stable Diffusion folder trained on emoji; see docs/emoji.md). */
export const SHIPPED_TEXT_MODEL_DIR = fileURLToPath(new URL("../../models/emoji", import.meta.url));

/**
 * True when `path` is a Stable Diffusion model: a .safetensors file, or a folder whose model_index.json names a
 * StableDiffusion* pipeline.
 */
export async function isStableDiffusionModel(path: string): Promise<boolean> {
  let info: ReturnType<typeof statSync>;
  try {
    info = statSync(path);
  } catch {
    return false;
  }
  if (info.isFile()) return /\.safetensors$/i.test(path);
  if (!existsSync(join(path, MODEL_INDEX))) return false;
  const index = await readModelIndex(path).catch(() => null);
  return index?.className.startsWith("StableDiffusion") ?? false;
}

/** The scheduler class a pipeline folder's model_index.json names (e.g. "LCMScheduler"), or null (single files). */
export async function modelSchedulerClass(path: string): Promise<string | null> {
  if (!existsSync(join(path, MODEL_INDEX))) return null;
  const index = await readModelIndex(path).catch(() => null);
  return index?.components.scheduler?.[1] ?? null;
}

/**
 * True for a latent consistency folder whose UNet takes no guidance embedding (an LCM-LoRA fused into its teacher):
 * sampled without classifier-free guidance by default.
 */
export async function isFusedLcmFolder(path: string): Promise<boolean> {
  if ((await modelSchedulerClass(path)) !== "LCMScheduler") return false;
  try {
    const config = JSON.parse(readFileSync(join(path, "unet", "config.json"), "utf8")) as Record<
      string,
      unknown
    >;
    return config.time_cond_proj_dim == null;
  } catch {
    return false;
  }
}
