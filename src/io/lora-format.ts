// LoRA files in the three common key layouts, parsed into one list of (model, module, down, up, alpha):
//   PEFT:      `unet.<module>.lora_A.weight` [r, in] / `.lora_B.weight` [out, r] (also `text_encoder.`,
//              `text_encoder_2.`, bare keys, `base_model.model.`), α from `lora_adapter_metadata` or `.alpha` keys;
//   diffusers: `<module>.lora.down.weight` / `.lora.up.weight` (also `.lora_linear_layer.` and the older attention
//              processor layout `...attn1.processor.to_q_lora.down.weight`);
//   kohya:     `lora_unet_<module with "_" for ".">.lora_down.weight` / `.lora_up.weight` / `.alpha`, `lora_te_`
//              (text encoder), `lora_te1_` / `lora_te2_` (SDXL's two encoders).
// Kohya names cannot be split back into a dotted path by themselves (module names contain "_"): they are resolved
// against the model's own module names (kohyaNameIndex), after mapping LDM-style UNet names (`input_blocks_4_1_...`)
// to diffusers' (ldmToDiffusersUnetName). Nothing here touches a model.
import { DiffuseError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";

/** The model a LoRA entry applies to. */
export type LoraTargetName = "unet" | "text_encoder" | "text_encoder_2";
export type LoraFormat = "peft" | "diffusers" | "kohya";
/** Model families a LoRA can be recognised as made for. */
export type LoraFamily = "sd1" | "sd2" | "sdxl";

/** Human-readable family names. */
export const LORA_FAMILY_LABEL: Readonly<Record<LoraFamily, string>> = {
  sd1: "SD 1.x",
  sd2: "SD 2.x",
  sdxl: "SDXL",
};

/** One adapted module. */
export interface LoraEntry {
  target: LoraTargetName;
  /**
   * The module's dotted path in the diffusers / transformers model (`down_blocks.0.attentions.0.transformer_blocks.0
   * .attn1.to_q`, `text_model.encoder.layers.0.self_attn.q_proj`); for kohya files the underscore name after the
   * prefix (`down_blocks_0_attentions_0_...`, maybe LDM-style) until resolved against a model.
   */
  modulePath: string;
  pathStyle: "dotted" | "kohya";
  /** The module's name as written in the file (key without its suffix), for messages. */
  sourceName: string;
  /** A [r, in(, kh, kw)]. */
  down: Tensor;
  /** B [out, r(, 1, 1)]. */
  up: Tensor;
  /** α (the update is scaled by α / r); null: none given, meaning α = r. */
  alpha: number | null;
  rank: number;
}

/** What the LoRA's keys and shapes say about the model it was trained on. */
export interface LoraFamilyHint {
  family: LoraFamily;
  reasons: string[];
}

/** A parsed LoRA file. */
export interface ParsedLora {
  /** The layout of most entries. */
  format: LoraFormat;
  entries: LoraEntry[];
  familyHint: LoraFamilyHint | null;
  metadata: Readonly<Record<string, string>> | null;
}

/** A file that is not a LoRA this package can read (unknown keys, unpaired factors, unsupported variants). */
export class LoraFormatError extends DiffuseError {}

const TARGETS = new Set<string>(["unet", "text_encoder", "text_encoder_2"]);
const KOHYA_TARGET: Readonly<Record<string, LoraTargetName>> = {
  unet: "unet",
  te: "text_encoder",
  te1: "text_encoder",
  te2: "text_encoder_2",
};

/** Suffixes of adapter variants other than plain LoRA, with their names. */
const UNSUPPORTED: readonly [RegExp, string][] = [
  [/\.hada_\w+$/, "LoHa (LyCORIS)"],
  [/\.lokr_\w+$/, "LoKr (LyCORIS)"],
  [/\.lora_mid\.weight$/, "LoCon with Tucker decomposition (lora_mid)"],
  [/\.(dora_scale|lora_magnitude_vector(\.\w+)?)$/, "DoRA"],
  [/\.(diff|diff_b)$/, "full weight differences (diff)"],
  [/\.oft_\w+$/, "OFT"],
  [/\.lora_embedding_[AB](\.\w+)?$/, "embedding LoRA"],
  [/\.(w_norm|b_norm)$/, "norm weights"],
];

type Part = "down" | "up" | "alpha";
interface KeyInfo {
  format: LoraFormat;
  target: LoraTargetName;
  path: string;
  sourceName: string;
  part: Part;
}

/** Target of a PEFT / diffusers path: its prefix, else text_model.* is the text encoder, anything else the UNet. */
function splitTarget(prefix: string | undefined, rest: string): { target: LoraTargetName; path: string } {
  let path = prefix ? `${prefix}.${rest}` : rest;
  let target: LoraTargetName | null = null;
  if (prefix && TARGETS.has(prefix)) {
    target = prefix as LoraTargetName;
    path = rest;
  }
  if (path.startsWith("base_model.model.")) path = path.slice("base_model.model.".length);
  return { target: target ?? (path.startsWith("text_model.") ? "text_encoder" : "unet"), path };
}

const KOHYA = /^lora_(unet|te1|te2|te)_([^.]+)\.(lora_down\.weight|lora_up\.weight|alpha)$/;
const PEFT = /^(?:(\w+)\.)?(.+)\.lora_(A|B)(?:\.[\w-]+)?\.weight$/;
const DIFFUSERS = /^(?:(\w+)\.)?(.+)\.(?:lora|lora_linear_layer)\.(down|up)\.weight$/;
const PROCESSOR = /^(?:(\w+)\.)?(.+)\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$/;
const ALPHA = /^(?:(\w+)\.)?(.+)\.alpha$/;

/** What a key holds, or null when it is not a LoRA key. */
function classify(key: string): KeyInfo | null {
  let m = KOHYA.exec(key);
  if (m) {
    const part: Part = m[3] === "alpha" ? "alpha" : m[3]!.startsWith("lora_down") ? "down" : "up";
    const target = KOHYA_TARGET[m[1]!]!;
    return { format: "kohya", target, path: m[2]!, sourceName: `lora_${m[1]}_${m[2]}`, part };
  }
  m = PROCESSOR.exec(key);
  if (m) {
    const { target, path } = splitTarget(m[1], `${m[2]}.${m[3] === "to_out" ? "to_out.0" : m[3]}`);
    const sourceName = key.slice(0, key.length - `.${m[4]}.weight`.length);
    return { format: "diffusers", target, path, sourceName, part: m[4] as Part };
  }
  m = DIFFUSERS.exec(key);
  if (m) {
    const { target, path } = splitTarget(m[1], m[2]!);
    const sourceName = key.slice(0, key.length - `.${m[3]}.weight`.length);
    return { format: "diffusers", target, path, sourceName, part: m[3] as Part };
  }
  m = PEFT.exec(key);
  if (m) {
    const { target, path } = splitTarget(m[1], m[2]!);
    const sourceName = m[1] ? `${m[1]}.${m[2]}` : m[2]!;
    return { format: "peft", target, path, sourceName, part: m[3] === "A" ? "down" : "up" };
  }
  m = ALPHA.exec(key);
  if (m && !key.startsWith("lora_")) {
    const { target, path } = splitTarget(m[1], m[2]!);
    return { format: "peft", target, path, sourceName: key.slice(0, -".alpha".length), part: "alpha" };
  }
  return null;
}

/** A short list of items for an error message. */
function listSome(items: readonly string[], n = 5): string {
  const shown = items.slice(0, n).join(", ");
  return items.length > n ? `${shown}, ... (${items.length} in all)` : shown;
}

interface Group {
  info: KeyInfo;
  /** Where its alpha is found in the alphas map. */
  where: string;
  down?: Tensor;
  up?: Tensor;
}

/**
 * Parses a LoRA state dict (PEFT, diffusers or kohya layout; see the file header) into entries. Throws
 * LoraFormatError for unknown keys, a down without an up (or the reverse), a non-scalar alpha or an unsupported
 * adapter variant (LoHa, LoKr, DoRA, ...). Shapes are checked against a model later (pipelines' applyLora).
 */
export function parseLora(
  tensors: ReadonlyMap<string, Tensor>,
  metadata: Readonly<Record<string, string>> | null = null,
): ParsedLora {
  const groups = new Map<string, Group>();
  const alphas = new Map<string, { key: string; value: number }>();
  const unknown: string[] = [];
  const variants = new Map<string, string[]>();
  for (const [key, t] of tensors) {
    const variant = UNSUPPORTED.find(([re]) => re.test(key));
    if (variant) {
      variants.set(variant[1], [...(variants.get(variant[1]) ?? []), key]);
      continue;
    }
    const info = classify(key);
    if (!info) {
      unknown.push(key);
      continue;
    }
    // kohya modules are keyed by their full name (lora_te_ and lora_te1_ stay apart); others by target and path,
    // where an `.alpha` key may belong to either the PEFT or the diffusers spelling (attached after the loop)
    const where = info.format === "kohya" ? info.sourceName : `${info.target}:${info.path}`;
    if (info.part === "alpha") {
      if (t.size !== 1)
        throw new LoraFormatError(
          `LoRA key ${key}: alpha must hold one number, found shape [${t.shape.join(", ")}]`,
        );
      alphas.set(where, { key, value: t.toFloat32Array()[0]! });
      continue;
    }
    if (t.ndim !== 2 && t.ndim !== 4)
      throw new LoraFormatError(
        `LoRA key ${key}: expected a 2-D or 4-D weight, found [${t.shape.join(", ")}]`,
      );
    const id = `${info.format}:${where}`;
    const g = groups.get(id) ?? { info, where };
    groups.set(id, g);
    g[info.part] = t;
  }
  if (variants.size > 0) {
    const what = [...variants].map(([name, keys]) => `${name} (e.g. ${keys[0]})`).join("; ");
    throw new LoraFormatError(
      `unsupported adapter type: ${what}. Only plain LoRA (down/up factors) is supported`,
    );
  }
  if (unknown.length > 0) {
    throw new LoraFormatError(
      `not a LoRA file, or keys of an unknown layout: ${listSome(unknown)}. Expected PEFT (…lora_A.weight / ` +
        "lora_B.weight), diffusers (…lora.down.weight / lora.up.weight) or kohya (lora_unet_… .lora_down.weight) keys",
    );
  }
  const unpaired = [...groups.values()].filter((g) => !g.down || !g.up).map((g) => g.info.sourceName);
  if (unpaired.length > 0)
    throw new LoraFormatError(`LoRA modules without both down and up weights: ${listSome(unpaired)}`);
  if (groups.size === 0) throw new LoraFormatError("the file holds no LoRA weights");
  const owned = new Set([...groups.values()].map((g) => g.where));
  const stray = [...alphas].filter(([where]) => !owned.has(where)).map(([, a]) => a.key);
  if (stray.length > 0) throw new LoraFormatError(`LoRA alphas without weights: ${listSome(stray)}`);
  const peftAlpha = peftMetadataAlpha(metadata);
  const counts = new Map<LoraFormat, number>();
  const entries = [...groups.values()].map(({ info, where, down, up }): LoraEntry => {
    const alpha = alphas.get(where)?.value;
    counts.set(info.format, (counts.get(info.format) ?? 0) + 1);
    const rank = down!.shape[0]!;
    return {
      target: info.target,
      modulePath: info.path,
      pathStyle: info.format === "kohya" ? "kohya" : "dotted",
      sourceName: info.sourceName,
      down: down!,
      up: up!,
      alpha: alpha ?? (info.format === "kohya" ? null : peftAlpha(info.target, info.path, rank)),
      rank,
    };
  });
  const format = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
  return { format, entries, familyHint: loraFamilyHint(entries, metadata), metadata };
}

/**
 * α from diffusers' `lora_adapter_metadata` (PEFT LoraConfig fields, prefixed with the model name: `unet.lora_alpha`,
 * `unet.alpha_pattern`, `unet.use_rslora`); rsLoRA's α/√r scaling is folded into α. Null when absent.
 */
function peftMetadataAlpha(
  metadata: Readonly<Record<string, string>> | null,
): (target: LoraTargetName, path: string, rank: number) => number | null {
  const raw = metadata?.lora_adapter_metadata;
  if (!raw) return () => null;
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw new LoraFormatError("the file's lora_adapter_metadata is not valid JSON");
  }
  return (target, path, rank) => {
    const field = (name: string): unknown => cfg[`${target}.${name}`] ?? cfg[name];
    if (field("use_dora") === true) throw new LoraFormatError("unsupported adapter type: DoRA (use_dora)");
    const pattern = field("alpha_pattern") as Record<string, number> | undefined;
    const hit = pattern && Object.keys(pattern).find((k) => path === k || path.endsWith(`.${k}`));
    const alpha = hit ? pattern[hit] : field("lora_alpha");
    if (typeof alpha !== "number") return null;
    return field("use_rslora") === true ? alpha * Math.sqrt(rank) : alpha;
  };
}

/** In-features of the first entry whose path ends with one of the given module names. */
function inWidth(entries: readonly LoraEntry[], target: LoraTargetName, names: RegExp): number | null {
  const e = entries.find((x) => x.target === target && names.test(x.modulePath));
  return e ? e.down.shape[1]! : null;
}

/**
 * The model family a LoRA was made for, when its keys or shapes tell: SDXL (two text encoders `lora_te1_` /
 * `lora_te2_`, 2048-wide cross-attention inputs, a 1280-wide second text encoder, transformer depth > 1), SD 2.x
 * (1024-wide text / cross-attention), SD 1.x (768), or kohya's `ss_base_model_version` / `modelspec.architecture`.
 */
export function loraFamilyHint(
  entries: readonly LoraEntry[],
  metadata: Readonly<Record<string, string>> | null = null,
): LoraFamilyHint | null {
  const votes = new Map<LoraFamily, string[]>();
  const vote = (f: LoraFamily, why: string): void => {
    votes.set(f, [...(votes.get(f) ?? []), why]);
  };
  if (entries.some((e) => e.target === "text_encoder_2"))
    vote("sdxl", "weights for a second text encoder (lora_te2_ / text_encoder_2)");
  if (entries.some((e) => e.sourceName.startsWith("lora_te1_")))
    vote("sdxl", "kohya's SDXL text encoder prefix lora_te1_");
  const cross = inWidth(entries, "unet", /attn2[._]to_[kv]$/);
  const crossFamily: Record<number, LoraFamily> = { 768: "sd1", 1024: "sd2", 2048: "sdxl" };
  if (cross !== null && crossFamily[cross])
    vote(crossFamily[cross]!, `cross-attention to_k/to_v take ${cross} inputs`);
  const te = inWidth(entries, "text_encoder", /(self_attn[._][qkv]_proj|mlp[._]fc1)$/);
  if (te === 1024) vote("sd2", "a 1024-wide text encoder (OpenCLIP ViT-H)");
  else if (te === 768 && !votes.has("sdxl")) vote("sd1", "a 768-wide text encoder (CLIP ViT-L)");
  if (inWidth(entries, "text_encoder_2", /(self_attn[._][qkv]_proj|mlp[._]fc1)$/) === 1280)
    vote("sdxl", "a 1280-wide second text encoder (OpenCLIP ViT-bigG)");
  if (entries.some((e) => e.target === "unet" && /transformer_blocks[._]([1-9]|\d\d)[._]/.test(e.modulePath)))
    vote("sdxl", "transformer blocks deeper than 1 (transformer_blocks.1 and beyond)");
  if (entries.some((e) => e.target === "unet" && /^input_blocks_[12]_1_/.test(e.modulePath)))
    vote(cross === 1024 ? "sd2" : "sd1", "attention at the full-resolution level (input_blocks_1_1)");
  const base =
    `${metadata?.ss_base_model_version ?? ""} ${metadata?.["modelspec.architecture"] ?? ""}`.toLowerCase();
  if (/sdxl|stable-diffusion-xl/.test(base)) vote("sdxl", `its metadata names ${base.trim()}`);
  else if (/sd_v2|v2-|stable-diffusion-v2/.test(base) || metadata?.ss_v2 === "True")
    vote("sd2", "its metadata names SD 2");
  else if (/sd_v1|stable-diffusion-v1/.test(base)) vote("sd1", `its metadata names ${base.trim()}`);
  const best = [...votes].sort((a, b) => b[1].length - a[1].length)[0];
  return best ? { family: best[0], reasons: best[1] } : null;
}

/** Underscore name -> dotted path of a model's modules (null where two dotted paths share one underscore name). */
export function kohyaNameIndex(dottedNames: Iterable<string>): Map<string, string | null> {
  const index = new Map<string, string | null>();
  for (const name of dottedNames) {
    if (name === "") continue;
    const key = name.replaceAll(".", "_");
    index.set(key, index.has(key) && index.get(key) !== name ? null : name);
  }
  return index;
}

/** LDM resnet sub-layer names -> diffusers'. */
const LDM_RESNET: Readonly<Record<string, string>> = {
  in_layers_0: "norm1",
  in_layers_2: "conv1",
  emb_layers_1: "time_emb_proj",
  out_layers_0: "norm2",
  out_layers_3: "conv2",
  skip_connection: "conv_shortcut",
};

const LDM_TOP: Readonly<Record<string, string>> = {
  time_embed_0: "time_embedding_linear_1",
  time_embed_2: "time_embedding_linear_2",
  label_emb_0_0: "add_embedding_linear_1",
  label_emb_0_2: "add_embedding_linear_2",
  input_blocks_0_0: "conv_in",
  out_0: "conv_norm_out",
  out_2: "conv_out",
};

function resnetPart(prefix: string, rest: string | undefined): string | null {
  const r = rest && LDM_RESNET[rest];
  return r ? `${prefix}_${r}` : null;
}

/**
 * Maps an LDM-style UNet module name in kohya's underscore form (`input_blocks_4_1_transformer_blocks_0_attn1_to_q`,
 * `middle_block_0_in_layers_2`, `output_blocks_2_1_conv`) to diffusers' underscore form (`down_blocks_1_attentions_0
 * _transformer_blocks_0_attn1_to_q`, `mid_block_resnets_0_conv1`, `up_blocks_0_upsamplers_0_conv`); null when the
 * name is not LDM-style. `layersPerBlock`: the UNet's layers_per_block (per down block if a list); LDM numbers
 * input_blocks 1.. as L resnets (+ attention) then a downsampler per level, output_blocks as L + 1 per level.
 */
export function ldmToDiffusersUnetName(
  name: string,
  layersPerBlock: number | readonly number[] = 2,
): string | null {
  const top = LDM_TOP[name];
  if (top) return top;
  const m = /^(input_blocks|middle_block|output_blocks)_(\d+)(?:_(\d+))?(?:_(.+))?$/.exec(name);
  if (!m) return null;
  const [, kind, a, b, rest] = m;
  if (kind === "middle_block") {
    // middle_block.<sub>: [resnet, attention, resnet]
    if (b !== undefined || !rest) return null;
    if (a === "1") return `mid_block_attentions_0_${rest}`;
    return a === "0" || a === "2" ? resnetPart(`mid_block_resnets_${a === "0" ? 0 : 1}`, rest) : null;
  }
  if (b === undefined) return null;
  const n = Number(a);
  const sub = Number(b);
  const perBlock = (i: number): number =>
    typeof layersPerBlock === "number" ? layersPerBlock : (layersPerBlock[i] ?? Number.NaN);
  if (kind === "input_blocks") {
    let start = 1;
    for (let i = 0; start <= n && Number.isFinite(perBlock(i)); i++) {
      const l = perBlock(i);
      if (n < start + l) {
        if (sub === 0) return resnetPart(`down_blocks_${i}_resnets_${n - start}`, rest);
        return sub === 1 && rest ? `down_blocks_${i}_attentions_${n - start}_${rest}` : null;
      }
      if (n === start + l) return sub === 0 && rest === "op" ? `down_blocks_${i}_downsamplers_0_conv` : null;
      start += l + 1;
    }
    return null;
  }
  // output_blocks: up block i has (layers of down block n-1-i) + 1 layers; with one number, all have L + 1
  const ups = typeof layersPerBlock === "number" ? null : [...layersPerBlock].reverse();
  let start = 0;
  for (let i = 0; ; i++) {
    const l = (ups ? (ups[i] ?? Number.NaN) : perBlock(i)) + 1;
    if (!Number.isFinite(l)) return null;
    if (n < start + l) {
      const j = n - start;
      if (sub === 0) return resnetPart(`up_blocks_${i}_resnets_${j}`, rest);
      if ((sub === 1 || sub === 2) && rest === "conv") return `up_blocks_${i}_upsamplers_0_conv`;
      return sub === 1 && rest ? `up_blocks_${i}_attentions_${j}_${rest}` : null;
    }
    start += l;
  }
}

/**
 * The dotted module path of a kohya entry's underscore name, looked up in a model's {@link kohyaNameIndex}
 * (UNet names may be LDM-style); a string saying why when it cannot be resolved.
 */
export function resolveKohyaName(
  name: string,
  target: LoraTargetName,
  index: ReadonlyMap<string, string | null>,
  layersPerBlock: number | readonly number[] = 2,
): { path: string } | { problem: string } {
  let key = name;
  if (!index.has(key) && target === "unet") key = ldmToDiffusersUnetName(name, layersPerBlock) ?? name;
  const path = index.get(key);
  if (path) return { path };
  if (path === null) return { problem: `${key} matches more than one module of the model` };
  const as = key === name ? "" : ` (LDM name, read as ${key})`;
  return { problem: `no module named like ${name}${as} in the model` };
}
