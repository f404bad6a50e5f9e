// What a single-file checkpoint written by this package carries besides its tensors, in the safetensors metadata
// (string -> string): the diffusers / transformers configs of its models, its scheduler config and, for a
// tokenizer that is not CLIP's, the tokenizer files. Shapes alone cannot say attention heads, GroupNorm groups,
// the VAE's scaling factor or the noise schedule; with these the file loads back as exactly the model it came
// from. `modelspec.prediction_type` is written too, which other tools read.
import { parseConfigJson, stringifyConfigJson } from "../io/config-json.js";
import { CheckpointError } from "../io/errors.js";
import type { RawConfig } from "../models/blocks/config-values.js";
import type { TokenizerFiles } from "../models/clip/tokenizer.js";
import type { PipelineConfigs } from "./family-configs.js";

/** The metadata keys (the values are JSON, except the tokenizer files which are their own text). */
export const SINGLE_FILE_KEYS = {
  unet: "diffuse.unet_config",
  vae: "diffuse.vae_config",
  textEncoder: "diffuse.text_encoder_config",
  scheduler: "diffuse.scheduler_config",
  vocab: "diffuse.tokenizer.vocab_json",
  merges: "diffuse.tokenizer.merges_txt",
  tokenizerConfig: "diffuse.tokenizer.tokenizer_config_json",
  specialTokens: "diffuse.tokenizer.special_tokens_map_json",
} as const;

/** What {@link singleFileMetadata} stores. */
export interface SingleFileContents {
  unet: RawConfig;
  vae: RawConfig;
  textEncoder: RawConfig;
  scheduler: RawConfig;
  /** Tokenizer files (vocab.json, merges.txt, ...), or null to leave the tokenizer out (CLIP's own). */
  tokenizer: TokenizerFiles | null;
}

/** The safetensors metadata of a single file holding `c`. */
export function singleFileMetadata(c: SingleFileContents): Record<string, string> {
  const K = SINGLE_FILE_KEYS;
  const meta: Record<string, string> = {
    format: "pt",
    [K.unet]: stringifyConfigJson(c.unet),
    [K.vae]: stringifyConfigJson(c.vae),
    [K.textEncoder]: stringifyConfigJson(c.textEncoder),
    [K.scheduler]: stringifyConfigJson(c.scheduler),
  };
  const prediction = c.scheduler.prediction_type;
  if (prediction === "v_prediction" || prediction === "epsilon")
    meta["modelspec.prediction_type"] = prediction === "v_prediction" ? "v" : "epsilon";
  const t = c.tokenizer;
  const text = (v: string | object | undefined) => (typeof v === "string" ? v : JSON.stringify(v));
  if (t?.["vocab.json"] !== undefined && t["merges.txt"] !== undefined) {
    meta[K.vocab] = text(t["vocab.json"]);
    meta[K.merges] = t["merges.txt"];
    if (t["tokenizer_config.json"] !== undefined) meta[K.tokenizerConfig] = text(t["tokenizer_config.json"]);
    if (t["special_tokens_map.json"] !== undefined)
      meta[K.specialTokens] = text(t["special_tokens_map.json"]);
  }
  return meta;
}

function parsed(
  metadata: Readonly<Record<string, string>>,
  key: string,
  where: string,
): RawConfig | undefined {
  const text = metadata[key];
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = parseConfigJson(text);
  } catch (err) {
    throw new CheckpointError(`${where}: metadata ${key} is not JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new CheckpointError(
      `${where}: metadata ${key} must be a JSON object, found ${JSON.stringify(value)}`,
    );
  return value as RawConfig;
}

/** The configs a file's metadata carries ({} for files from other tools). */
export function embeddedConfigs(
  metadata: Readonly<Record<string, string>> | null,
  where: string,
): PipelineConfigs {
  if (!metadata) return {};
  const K = SINGLE_FILE_KEYS;
  const out: PipelineConfigs = {};
  const unet = parsed(metadata, K.unet, where);
  const vae = parsed(metadata, K.vae, where);
  const textEncoder = parsed(metadata, K.textEncoder, where);
  const scheduler = parsed(metadata, K.scheduler, where);
  if (unet) out.unet = unet;
  if (vae) out.vae = vae;
  if (textEncoder) out.textEncoder = textEncoder;
  if (scheduler) out.scheduler = scheduler;
  return out;
}

/** The tokenizer files a file's metadata carries, or null. */
export function embeddedTokenizer(metadata: Readonly<Record<string, string>> | null): TokenizerFiles | null {
  const K = SINGLE_FILE_KEYS;
  if (!metadata || metadata[K.vocab] === undefined || metadata[K.merges] === undefined) return null;
  const files: TokenizerFiles = { "vocab.json": metadata[K.vocab], "merges.txt": metadata[K.merges] };
  if (metadata[K.tokenizerConfig] !== undefined) files["tokenizer_config.json"] = metadata[K.tokenizerConfig];
  if (metadata[K.specialTokens] !== undefined) files["special_tokens_map.json"] = metadata[K.specialTokens];
  return files;
}
