// Writing LoRA files: the inverse of the key mapping in lora-format.ts, in the two layouts other programs load.
//   kohya (AUTOMATIC1111, ComfyUI, kohya's sd-scripts): `lora_unet_<module path with "_" for ".">.lora_down.weight`
//          [r, in(, kh, kw)], `.lora_up.weight` [out, r(, 1, 1)] and `.alpha` (a 0-d tensor); text encoders
//          `lora_te_` (`lora_te1_` / `lora_te2_` when a second encoder is adapted too), and `ss_*` metadata;
//   PEFT (diffusers' `load_lora_weights`): `unet.<dotted path>.lora_A.weight` / `.lora_B.weight` (same shapes),
//          `text_encoder.` / `text_encoder_2.` prefixes, α in the `lora_adapter_metadata` JSON (PEFT LoraConfig
//          fields prefixed with the model name: `unet.r`, `unet.lora_alpha`, `unet.alpha_pattern`, ...).
// Module paths are diffusers' / transformers' dotted paths, which every reader of the two layouts maps itself.
import { contiguous, to, toDevice } from "../ops/index.js";
import { tensor } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";
import { LORA_FAMILY_LABEL, type LoraFamily, type LoraTargetName } from "./lora-format.js";
import { saveSafetensors } from "./safetensors-write.js";

/** The layouts {@link loraStateDict} writes. */
export type LoraSaveFormat = "kohya" | "peft";

/** The formats accepted by {@link loraStateDict}, for messages and option checks. */
export const LORA_SAVE_FORMATS: readonly LoraSaveFormat[] = ["kohya", "peft"];

/** One adapted module to write. */
export interface LoraSaveEntry {
  target: LoraTargetName;
  /** The module's dotted path in the diffusers / transformers model. */
  modulePath: string;
  /** A [r, in] or [r, in, kh, kw]. */
  down: Tensor;
  /** B [out, r] or [out, r, 1, 1]. */
  up: Tensor;
  alpha: number;
}

const KOHYA_PREFIX: Readonly<Record<LoraTargetName, string>> = {
  unet: "lora_unet_",
  text_encoder: "lora_te_",
  text_encoder_2: "lora_te2_",
};

/**
 * The kohya module name of a module (`lora_unet_down_blocks_0_attentions_0_proj_in`); `twoEncoders`: the first
 * text encoder is `lora_te1_` (SDXL) rather than `lora_te_`.
 */
export function kohyaModuleName(target: LoraTargetName, modulePath: string, twoEncoders = false): string {
  const prefix = target === "text_encoder" && twoEncoders ? "lora_te1_" : KOHYA_PREFIX[target];
  return `${prefix}${modulePath.replaceAll(".", "_")}`;
}

/** The PEFT / diffusers module name of a module (`unet.down_blocks.0.attentions.0.proj_in`). */
export function peftModuleName(target: LoraTargetName, modulePath: string): string {
  return `${target}.${modulePath}`;
}

/** A float32 CPU copy in row-major order (what a file holds). */
function fileTensor(t: Tensor): Tensor {
  return contiguous(to(toDevice(t, "cpu"), "float32"));
}

function checkEntry(e: LoraSaveEntry): void {
  const where = `LoRA entry ${e.target}:${e.modulePath}`;
  if (!/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(e.modulePath))
    throw new ArgumentError(`${where}: the module path must be dotted names (letters, digits, "_")`);
  const r = e.down.shape[0];
  if ((e.down.ndim !== 2 && e.down.ndim !== 4) || (e.up.ndim !== 2 && e.up.ndim !== 4) || !r)
    throw new ArgumentError(
      `${where}: expected down [r, in(, kh, kw)] and up [out, r(, 1, 1)], got [${e.down.shape.join(", ")}] and [${e.up.shape.join(", ")}]`,
    );
  if (e.up.shape[1] !== r) throw new ArgumentError(`${where}: up has ${e.up.shape[1]} columns for rank ${r}`);
  if (!Number.isFinite(e.alpha)) throw new ArgumentError(`${where}: alpha must be finite, got ${e.alpha}`);
}

/**
 * The tensors of a LoRA file in `format` (float32, on the CPU); throws ArgumentError for malformed entries or two
 * entries that would share a key.
 */
export function loraStateDict(
  entries: readonly LoraSaveEntry[],
  format: LoraSaveFormat,
): Map<string, Tensor> {
  if (!LORA_SAVE_FORMATS.includes(format))
    throw new ArgumentError(`LoRA format must be kohya or peft, got ${JSON.stringify(format)}`);
  if (entries.length === 0) throw new ArgumentError("a LoRA file needs at least one module");
  const twoEncoders = entries.some((e) => e.target === "text_encoder_2");
  const out = new Map<string, Tensor>();
  for (const e of entries) {
    checkEntry(e);
    const name =
      format === "kohya"
        ? kohyaModuleName(e.target, e.modulePath, twoEncoders)
        : peftModuleName(e.target, e.modulePath);
    const [down, up] = format === "kohya" ? ["lora_down", "lora_up"] : ["lora_A", "lora_B"];
    if (out.has(`${name}.${down}.weight`))
      throw new ArgumentError(`two LoRA entries are written as ${name}; module paths must be distinct`);
    out.set(`${name}.${down}.weight`, fileTensor(e.down));
    out.set(`${name}.${up}.weight`, fileTensor(e.up));
    if (format === "kohya") out.set(`${name}.alpha`, tensor([e.alpha], [], { dtype: "float32" }));
  }
  return out;
}

/**
 * diffusers' `lora_adapter_metadata` JSON for PEFT files: per adapted model the rank `r`, `lora_alpha` (the most
 * common α; others in `alpha_pattern` by module path), the adapted module names and plain-LoRA flags.
 */
export function peftAdapterMetadata(entries: readonly LoraSaveEntry[]): string {
  const cfg: Record<string, unknown> = {};
  const targets = [...new Set(entries.map((e) => e.target))];
  for (const t of targets) {
    const mine = entries.filter((e) => e.target === t);
    const mostCommon = <T>(xs: T[]): T => {
      const counts = new Map<T, number>();
      for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
      return [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    };
    const r = mostCommon(mine.map((e) => e.down.shape[0]!));
    const alpha = mostCommon(mine.map((e) => e.alpha));
    const rankPattern = Object.fromEntries(
      mine.filter((e) => e.down.shape[0] !== r).map((e) => [e.modulePath, e.down.shape[0]!]),
    );
    const alphaPattern = Object.fromEntries(
      mine.filter((e) => e.alpha !== alpha).map((e) => [e.modulePath, e.alpha]),
    );
    Object.assign(cfg, {
      [`${t}.r`]: r,
      [`${t}.lora_alpha`]: alpha,
      [`${t}.rank_pattern`]: rankPattern,
      [`${t}.alpha_pattern`]: alphaPattern,
      [`${t}.target_modules`]: mine.map((e) => e.modulePath),
      [`${t}.lora_dropout`]: 0,
      [`${t}.bias`]: "none",
      [`${t}.use_rslora`]: false,
      [`${t}.use_dora`]: false,
    });
  }
  return JSON.stringify(cfg);
}

/** The model a LoRA was trained on, recorded in its file. */
export interface LoraBaseModel {
  /** A name (folder or file name). */
  name: string;
  /** SD 1.x / 2.x / XL, or null for another UNet (e.g. the shipped emoji model). */
  family: LoraFamily | null;
  /** A description of the family for people (`SD 1.x`, `a UNet with cross_attention_dim 256`). */
  familyLabel: string;
  /** The full sha256 of the model's weights file (see pipelines' modelHashFile). */
  sha256: string;
}

/** What {@link loraFileMetadata} records about training. */
export interface LoraTrainingInfo {
  steps: number;
  learningRate: number;
  images: number;
  /** The adapted layer set (e.g. `attn`). */
  targets: string;
  /** Version of this package. */
  version?: string;
  /** How it was trained, for people (default `diffuse train lora --targets <targets>`). */
  comment?: string;
}

const KOHYA_BASE_VERSION: Readonly<Record<LoraFamily, string>> = {
  sd1: "sd_v1",
  sd2: "sd_v2",
  sdxl: "sdxl_base_v1-0",
};
const MODELSPEC_ARCHITECTURE: Readonly<Record<LoraFamily, string>> = {
  sd1: "stable-diffusion-v1/lora",
  sd2: "stable-diffusion-v2-512/lora",
  sdxl: "stable-diffusion-xl-v1-base/lora",
};

/**
 * The string metadata of a LoRA file: kohya's `ss_*` keys (network rank and α, base model name, hash and version,
 * training steps) and the modelspec architecture, which A1111 / ComfyUI show and the family check of this package
 * reads; `diffuse_base_*` keys with the base model's family and AutoV2 hash for any UNet; and for PEFT files
 * diffusers' `lora_adapter_metadata` with the α values.
 */
export function loraFileMetadata(
  entries: readonly LoraSaveEntry[],
  format: LoraSaveFormat,
  base: LoraBaseModel,
  training: LoraTrainingInfo,
): Record<string, string> {
  const first = entries[0];
  if (!first) throw new ArgumentError("a LoRA file needs at least one module");
  const convs = entries.filter((e) => e.down.ndim === 4 && (e.down.shape[2]! > 1 || e.down.shape[3]! > 1));
  const meta: Record<string, string> = {
    ss_network_module: "networks.lora",
    ss_network_dim: String(first.down.shape[0]),
    ss_network_alpha: String(first.alpha),
    ss_sd_model_name: base.name,
    ss_new_sd_model_hash: base.sha256,
    ss_max_train_steps: String(training.steps),
    ss_steps: String(training.steps),
    ss_learning_rate: String(training.learningRate),
    ss_num_train_images: String(training.images),
    ss_v2: String(base.family === "sd2" ? "True" : "False"),
    ss_training_comment: training.comment ?? `diffuse train lora --targets ${training.targets}`,
    diffuse_base_model: base.name,
    diffuse_base_family: base.family ?? "other",
    diffuse_base_family_label: base.family ? LORA_FAMILY_LABEL[base.family] : base.familyLabel,
    diffuse_base_hash: base.sha256.slice(0, 10),
    diffuse_lora_targets: training.targets,
    diffuse_lora_format: format,
  };
  if (training.version) meta.diffuse_version = training.version;
  if (convs.length > 0) {
    meta.ss_network_args = JSON.stringify({
      conv_dim: String(convs[0]!.down.shape[0]),
      conv_alpha: String(convs[0]!.alpha),
    });
  }
  if (base.family) {
    meta.ss_base_model_version = KOHYA_BASE_VERSION[base.family];
    meta["modelspec.sai_model_spec"] = "1.0.0";
    meta["modelspec.architecture"] = MODELSPEC_ARCHITECTURE[base.family];
    meta["modelspec.implementation"] = "diffusers";
  }
  if (format === "peft") {
    meta.format = "pt";
    meta.lora_adapter_metadata = peftAdapterMetadata(entries);
  }
  return meta;
}

/** Writes a LoRA file (atomically) in `format` with `metadata` (see {@link loraFileMetadata}). */
export async function saveLoraFile(
  path: string,
  entries: readonly LoraSaveEntry[],
  format: LoraSaveFormat,
  metadata: Record<string, string> = {},
): Promise<void> {
  await saveSafetensors(path, loraStateDict(entries, format), metadata);
}
