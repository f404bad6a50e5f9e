// The configs a single-file checkpoint is built with: per Stable Diffusion family, the released diffusers configs
// (UNet, VAE, text encoders, scheduler), checked against what the file's shapes say, or configs given explicitly.

import type { TextEncoderShapeInfo } from "../io/ldm/clip.js";
import type { CheckpointDetection, CheckpointFamily, PredictionType } from "../io/ldm/detect.js";
import type { UNetKeyLayout, UNetShapeInfo } from "../io/ldm/unet.js";
import type { VAEShapeInfo } from "../io/ldm/vae.js";
import type { RawConfig } from "../models/blocks/config-values.js";
import { CheckpointError } from "../models/blocks/errors.js";
import {
  type CLIPTextConfig,
  type CLIPTextConfigInput,
  clipTextConfig,
  SD1_TEXT_ENCODER,
  SD2_TEXT_ENCODER,
  SDXL_TEXT_ENCODER,
  SDXL_TEXT_ENCODER_2,
} from "../models/clip/config.js";
import { planUNet, UNet2DConditionConfig } from "../models/unet/config.js";
import { AutoencoderKLConfig } from "../models/vae/config.js";
import {
  type InferredConfig,
  inferTextEncoderConfig,
  inferUNetConfig,
  inferVAEConfig,
} from "./infer-configs.js";

/** Configs that replace the family's released ones (diffusers / transformers `config.json` contents). */
export interface PipelineConfigs {
  unet?: RawConfig;
  vae?: RawConfig;
  textEncoder?: CLIPTextConfigInput;
  textEncoder2?: CLIPTextConfigInput;
  /** A scheduler config with `_class_name` (scheduler_config.json). */
  scheduler?: RawConfig;
}

/** The configs a checkpoint's models are built with. */
export interface ResolvedConfigs {
  unet: UNet2DConditionConfig;
  vae: AutoencoderKLConfig;
  textEncoder: CLIPTextConfig | null;
  textEncoder2: CLIPTextConfig | null;
  scheduler: Record<string, unknown>;
}

// https://huggingface.co/stabilityai/stable-diffusion-xl-refiner-1.0/blob/main/unet/config.json (the keys that
// differ from the SDXL base config)
const SDXL_REFINER_UNET: RawConfig = {
  attention_head_dim: [6, 12, 24, 24],
  block_out_channels: [384, 768, 1536, 1536],
  cross_attention_dim: 1280,
  down_block_types: ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  projection_class_embeddings_input_dim: 2560,
  transformer_layers_per_block: 4,
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
};

const SD_SCHEDULE = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  trained_betas: null,
  clip_sample: false,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
} as const;

/**
 * The scheduler_config.json of each family's reference pipeline: SD 1.5 (PNDM), SD 2.1 (DDIM; its prediction type
 * is set per checkpoint), SDXL base 1.0 and refiner (Euler).
 */
export const FAMILY_SCHEDULER_CONFIGS: Readonly<Record<CheckpointFamily, RawConfig>> = {
  sd1: { _class_name: "PNDMScheduler", ...SD_SCHEDULE },
  sd2: { _class_name: "DDIMScheduler", ...SD_SCHEDULE, prediction_type: "v_prediction" },
  sdxl: {
    _class_name: "EulerDiscreteScheduler",
    ...SD_SCHEDULE,
    interpolation_type: "linear",
    prediction_type: "epsilon",
    sample_max_value: 1.0,
    timestep_spacing: "leading",
    use_karras_sigmas: false,
  },
  "sdxl-refiner": {
    _class_name: "EulerDiscreteScheduler",
    ...SD_SCHEDULE,
    interpolation_type: "linear",
    prediction_type: "epsilon",
    sample_max_value: 1.0,
    timestep_spacing: "leading",
    use_karras_sigmas: false,
  },
};

/** The released UNet config of a family for a checkpoint with `inChannels` inputs. */
export function familyUNetConfig(
  family: CheckpointFamily,
  inChannels: number,
  predictionType: PredictionType,
): UNet2DConditionConfig {
  const o = { in_channels: inChannels };
  switch (family) {
    case "sd1":
      return UNet2DConditionConfig.sd15(o);
    case "sd2":
      // 2.x-v models are 768px (sample_size 96); the epsilon "-base" and inpainting models 512px
      return UNet2DConditionConfig.sd21({ ...o, sample_size: predictionType === "v_prediction" ? 96 : 64 });
    case "sdxl":
      return UNet2DConditionConfig.sdxl(o);
    case "sdxl-refiner":
      return UNet2DConditionConfig.sdxl({ ...SDXL_REFINER_UNET, ...o });
  }
}

/** Where a UNet config puts its blocks (what ldmUNetPlan needs). */
export function unetKeyLayout(cfg: UNet2DConditionConfig): UNetKeyLayout {
  const plan = planUNet(cfg);
  const layers = new Set(plan.down.map((p) => p.numLayers));
  if (layers.size !== 1) {
    throw new CheckpointError(
      `single-file UNets need the same layers_per_block on every level; the config has ${JSON.stringify(cfg.layers_per_block)}`,
    );
  }
  return {
    levels: plan.down.length,
    layersPerBlock: plan.down[0]!.numLayers,
    attention: plan.down.map((p) => p.crossAttention),
  };
}

const fmt = (v: unknown): string => JSON.stringify(v);

/** How a UNet config disagrees with the shapes of a checkpoint's UNet ([] when it fits). */
export function unetMismatches(cfg: UNet2DConditionConfig, info: UNetShapeInfo): string[] {
  const plan = planUNet(cfg);
  const out: string[] = [];
  const check = (what: string, config: unknown, file: unknown): void => {
    if (fmt(config) !== fmt(file)) out.push(`${what}: config ${fmt(config)}, file ${fmt(file)}`);
  };
  check("block_out_channels", cfg.block_out_channels, info.blockOutChannels);
  check("layers_per_block", plan.down[0]?.numLayers, info.layersPerBlock);
  check(
    "transformer layers per level",
    plan.down.map((p) => (p.crossAttention ? p.transformerLayers[0] : 0)),
    info.transformerDepth,
  );
  check("in_channels", cfg.in_channels, info.inChannels);
  check("out_channels", cfg.out_channels, info.outChannels);
  const cross = plan.down.find((p) => p.crossAttention)?.crossAttentionDim ?? null;
  if (info.contextDim !== null) check("cross_attention_dim", cross, info.contextDim);
  check("use_linear_projection", cfg.use_linear_projection, info.linearProjection);
  check(
    "projection_class_embeddings_input_dim",
    cfg.projection_class_embeddings_input_dim,
    info.admInChannels,
  );
  return out;
}

/** How a VAE config disagrees with the shapes of a checkpoint's VAE. */
export function vaeMismatches(cfg: AutoencoderKLConfig, info: VAEShapeInfo): string[] {
  const out: string[] = [];
  const check = (what: string, config: unknown, file: unknown): void => {
    if (fmt(config) !== fmt(file)) out.push(`${what}: config ${fmt(config)}, file ${fmt(file)}`);
  };
  check("block_out_channels", cfg.block_out_channels, info.blockOutChannels);
  check("layers_per_block", cfg.layers_per_block, info.layersPerBlock);
  check("latent_channels", cfg.latent_channels, info.latentChannels);
  check("in_channels", cfg.in_channels, info.inChannels);
  return out;
}

/** How a text-encoder config disagrees with the shapes of a checkpoint's text encoder. */
export function textEncoderMismatches(cfg: CLIPTextConfig, info: TextEncoderShapeInfo): string[] {
  const out: string[] = [];
  const check = (what: string, config: unknown, file: unknown): void => {
    if (fmt(config) !== fmt(file)) out.push(`${what}: config ${fmt(config)}, file ${fmt(file)}`);
  };
  check("hidden_size", cfg.hidden_size, info.hiddenSize);
  check("intermediate_size", cfg.intermediate_size, info.intermediateSize);
  check("vocab_size", cfg.vocab_size, info.vocabSize);
  check("max_position_embeddings", cfg.max_position_embeddings, info.maxPositions);
  // OpenCLIP towers may have more layers than used (SD 2.x drops the last one)
  if (info.kind === "clip" ? info.layers !== cfg.num_hidden_layers : info.layers < cfg.num_hidden_layers)
    out.push(`num_hidden_layers: config ${cfg.num_hidden_layers}, file ${info.layers}`);
  return out;
}

/** Where a resolved config came from. */
export type ConfigSource = "given" | "file metadata" | "released" | "inferred from shapes";

/** The configs a checkpoint's models are built with, with where each came from. */
export interface ResolvedConfigsWithSources extends ResolvedConfigs {
  sources: {
    unet: ConfigSource;
    vae: ConfigSource;
    textEncoder: ConfigSource | null;
    textEncoder2: ConfigSource | null;
    scheduler: ConfigSource;
  };
  /** What configs inferred from shapes had to assume (attention heads, GroupNorm groups, ...); [] otherwise. */
  assumed: string[];
}

function mustFit(
  component: string,
  source: ConfigSource,
  mismatches: string[],
  key: keyof PipelineConfigs,
): void {
  if (mismatches.length === 0) return;
  const where = source === "given" ? `the given configs.${key}` : "the configs in the file's metadata";
  throw new CheckpointError(
    `the ${component} does not have the sizes ${where} says (${mismatches.join("; ")})`,
  );
}

/**
 * One component's config: the given one, else the one in the file's metadata (both must fit the shapes; a
 * mismatch throws CheckpointError naming the differences), else the family's released one when it fits, else one
 * inferred from the shapes.
 */
function pick<C>(
  component: string,
  key: keyof PipelineConfigs,
  given: PipelineConfigs,
  embedded: PipelineConfigs,
  build: (raw: never) => C,
  released: () => C,
  mismatches: (c: C) => string[],
  infer: () => InferredConfig<C>,
  assumed: string[],
): [C, ConfigSource] {
  for (const [configs, source] of [
    [given, "given"],
    [embedded, "file metadata"],
  ] as const) {
    const raw = configs[key];
    if (raw) {
      const c = build(raw as never);
      mustFit(component, source, mismatches(c), key);
      return [c, source];
    }
  }
  const named = released();
  if (mismatches(named).length === 0) return [named, "released"];
  let inferred: InferredConfig<C>;
  try {
    inferred = infer();
  } catch (err) {
    if (!(err instanceof CheckpointError)) throw err;
    throw new CheckpointError(`${err.message} (configs.${String(key)})`, { cause: err });
  }
  const left = mismatches(inferred.config);
  if (left.length > 0)
    throw new CheckpointError(
      `the ${component}: a config inferred from its shapes still differs (${left.join("; ")}); pass its config explicitly (configs.${String(key)})`,
    );
  assumed.push(...inferred.assumed);
  return [inferred.config, "inferred from shapes"];
}

/**
 * The configs to build a detected checkpoint with: per component, `given` where present, else `embedded` (the
 * configs a file written by `diffuse convert` carries in its metadata), else the family's released config when
 * the file's shapes fit it, else one inferred from the shapes (what that had to assume is listed in `assumed`).
 */
export function resolveConfigs(
  det: CheckpointDetection,
  given: PipelineConfigs,
  predictionType: PredictionType,
  embedded: PipelineConfigs = {},
): ResolvedConfigsWithSources {
  const family = det.family;
  const assumed: string[] = [];
  const of = (component: string) => `${component} of this ${family} checkpoint`;
  const [unet, unetSource] = pick(
    of("UNet"),
    "unet",
    given,
    embedded,
    (raw: RawConfig) => UNet2DConditionConfig.from(raw),
    () => familyUNetConfig(family, det.unet.inChannels, predictionType),
    (c) => unetMismatches(c, det.unet),
    () => inferUNetConfig(det, familyUNetConfig(family, det.unet.inChannels, predictionType)),
    assumed,
  );
  const xl = family === "sdxl" || family === "sdxl-refiner";
  const releasedVAE = () => (xl ? AutoencoderKLConfig.sdxl() : AutoencoderKLConfig.sd());
  const vaeInfo = det.vae;
  const [vae, vaeSource] = vaeInfo
    ? pick(
        of("VAE"),
        "vae",
        given,
        embedded,
        (raw: RawConfig) => AutoencoderKLConfig.from(raw),
        releasedVAE,
        (c) => vaeMismatches(c, vaeInfo),
        () => inferVAEConfig(vaeInfo, releasedVAE(), family),
        assumed,
      )
    : ([
        given.vae ? AutoencoderKLConfig.from(given.vae) : releasedVAE(),
        given.vae ? "given" : "released",
      ] as const);
  const text = (
    key: "textEncoder" | "textEncoder2",
    component: string,
    named: Readonly<CLIPTextConfig>,
    info: TextEncoderShapeInfo | null,
  ): [CLIPTextConfig, ConfigSource] => {
    if (!info) return given[key] ? [clipTextConfig(given[key]), "given"] : [{ ...named }, "released"];
    // SD 2.x conditions on the penultimate OpenCLIP layer: its encoder keeps one layer fewer than the file has
    const layers = info.kind === "openclip" && family === "sd2" ? info.layers - 1 : info.layers;
    return pick(
      of(component),
      key,
      given,
      embedded,
      (raw: CLIPTextConfigInput) => clipTextConfig(raw),
      () => ({ ...named }),
      (c) => textEncoderMismatches(c, info),
      () => inferTextEncoderConfig(info, named, layers),
      assumed,
    );
  };
  const named1 =
    family === "sd1" ? SD1_TEXT_ENCODER : family === "sd2" ? SD2_TEXT_ENCODER : SDXL_TEXT_ENCODER;
  const [textEncoder, textEncoderSource] =
    family === "sdxl-refiner" ? [null, null] : text("textEncoder", "text encoder", named1, det.textEncoder);
  const [textEncoder2, textEncoder2Source] = xl
    ? text("textEncoder2", "second text encoder", SDXL_TEXT_ENCODER_2, det.textEncoder2)
    : [null, null];
  const schedulerRaw = given.scheduler ?? embedded.scheduler;
  const scheduler = schedulerRaw
    ? { ...schedulerRaw }
    : { ...FAMILY_SCHEDULER_CONFIGS[family], prediction_type: predictionType };
  return {
    unet,
    vae,
    textEncoder,
    textEncoder2,
    scheduler,
    sources: {
      unet: unetSource,
      vae: vaeSource,
      textEncoder: textEncoderSource,
      textEncoder2: textEncoder2Source,
      scheduler: given.scheduler ? "given" : embedded.scheduler ? "file metadata" : "released",
    },
    assumed,
  };
}
