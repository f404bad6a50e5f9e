// Configs for a single-file checkpoint whose sizes are not those of a released model (a model trained at other
// sizes, like the package's own emoji model), read from the tensor shapes as ComfyUI does. Shapes tell channels,
// levels, layers, attention levels and depths, widths and vocabulary; they do not tell attention heads, GroupNorm
// groups, the VAE's scaling factor or the latent size, so those follow the family's convention and are listed in
// `assumed` (a file written by `diffuse convert` carries its exact configs in its metadata instead).
import type { TextEncoderShapeInfo } from "../io/ldm/clip.js";
import type { CheckpointDetection, CheckpointFamily } from "../io/ldm/detect.js";
import type { VAEShapeInfo } from "../io/ldm/vae.js";
import { CheckpointError } from "../models/blocks/errors.js";
import { type CLIPTextConfig, clipTextConfig } from "../models/clip/config.js";
import { UNet2DConditionConfig } from "../models/unet/config.js";
import { AutoencoderKLConfig } from "../models/vae/config.js";

/** A config read from shapes, with what had to be assumed. */
export interface InferredConfig<C> {
  config: C;
  assumed: string[];
}

/** Heads per level: SD 1.x has 8 heads of any width, SD 2.x and SDXL heads of 64 channels. */
function headsPerLevel(
  family: CheckpointFamily,
  channels: readonly number[],
): { heads: number[]; text: string } {
  if (family === "sd1")
    return { heads: channels.map(() => 8), text: "8 attention heads per layer (the SD 1.x convention)" };
  const heads = channels.map((c) => {
    if (c % 64 !== 0)
      throw new CheckpointError(
        `cannot infer the attention heads of a ${family} UNet with ${c} channels (the ${family} convention is heads of 64 channels); pass its config explicitly`,
      );
    return c / 64;
  });
  return {
    heads,
    text: `attention heads of 64 channels (${heads.join(", ")} per level, the ${family} convention)`,
  };
}

function groupsFor(channels: readonly number[], what: string): number {
  if (channels.some((c) => c % 32 !== 0))
    throw new CheckpointError(
      `cannot infer the GroupNorm groups of a ${what} with channels [${channels.join(", ")}] (32 groups need multiples of 32); pass its config explicitly`,
    );
  return 32;
}

/** A UNet config from the shapes of a detected checkpoint, on top of the family's released config. */
export function inferUNetConfig(
  det: CheckpointDetection,
  released: UNet2DConditionConfig,
): InferredConfig<UNet2DConditionConfig> {
  const u = det.unet;
  const { heads, text } = headsPerLevel(det.family, u.blockOutChannels);
  const down = u.attention.map((a) => (a ? "CrossAttnDownBlock2D" : "DownBlock2D"));
  const up = [...u.attention].reverse().map((a) => (a ? "CrossAttnUpBlock2D" : "UpBlock2D"));
  const mid = u.midTransformerDepth > 0 ? "UNetMidBlock2DCrossAttn" : null;
  const depths = u.transformerDepth.map((d) => Math.max(d, 1));
  const config = UNet2DConditionConfig.from({
    ...released,
    block_out_channels: [...u.blockOutChannels],
    layers_per_block: u.layersPerBlock,
    down_block_types: down,
    up_block_types: up,
    mid_block_type: mid,
    in_channels: u.inChannels,
    out_channels: u.outChannels,
    cross_attention_dim: u.contextDim ?? released.cross_attention_dim,
    use_linear_projection: u.linearProjection,
    transformer_layers_per_block: depths.every((d) => d === depths[0]) ? depths[0] : depths,
    attention_head_dim: det.family === "sd1" ? 8 : heads,
    num_attention_heads: null,
    norm_num_groups: groupsFor(u.blockOutChannels, "UNet"),
    time_embedding_dim: u.timeEmbedDim === 4 * u.blockOutChannels[0]! ? null : u.timeEmbedDim,
    projection_class_embeddings_input_dim: u.admInChannels ?? released.projection_class_embeddings_input_dim,
  });
  return {
    config,
    assumed: [
      `UNet: ${text}`,
      "UNet: 32 GroupNorm groups",
      `UNet: sample_size ${config.sample_size ?? "unset"} (the released ${det.family} default image size)`,
    ],
  };
}

/** A VAE config from the shapes of an LDM VAE, on top of the family's released config. */
export function inferVAEConfig(
  info: VAEShapeInfo,
  released: AutoencoderKLConfig,
  family: CheckpointFamily,
): InferredConfig<AutoencoderKLConfig> {
  const config = AutoencoderKLConfig.from({
    ...released,
    block_out_channels: [...info.blockOutChannels],
    layers_per_block: info.layersPerBlock,
    down_block_types: info.blockOutChannels.map(() => "DownEncoderBlock2D"),
    up_block_types: info.blockOutChannels.map(() => "UpDecoderBlock2D"),
    in_channels: info.inChannels,
    out_channels: info.outChannels,
    latent_channels: info.latentChannels,
    norm_num_groups: groupsFor(info.blockOutChannels, "VAE"),
  });
  return {
    config,
    assumed: [
      "VAE: 32 GroupNorm groups",
      `VAE: scaling_factor ${config.scaling_factor} (the released ${family} value; a VAE trained elsewhere has its own)`,
    ],
  };
}

/**
 * A text-encoder config from the shapes of a CLIP / OpenCLIP tower, on top of the family's released config. A
 * vocabulary of another size is taken to end with CLIP's start and end tokens (the end token is where the pooled
 * output is read).
 */
export function inferTextEncoderConfig(
  info: TextEncoderShapeInfo,
  released: CLIPTextConfig,
  layers: number,
): InferredConfig<CLIPTextConfig> {
  if (info.hiddenSize % 64 !== 0)
    throw new CheckpointError(
      `cannot infer the attention heads of a text encoder of width ${info.hiddenSize} (CLIP's heads are 64 wide); pass its config explicitly`,
    );
  const ownVocab = info.vocabSize !== released.vocab_size;
  const config = clipTextConfig({
    ...released,
    vocab_size: info.vocabSize,
    hidden_size: info.hiddenSize,
    intermediate_size: info.intermediateSize,
    num_hidden_layers: layers,
    num_attention_heads: info.hiddenSize / 64,
    max_position_embeddings: info.maxPositions,
    projection_dim: info.projectionDim ?? released.projection_dim,
    ...(ownVocab
      ? {
          bos_token_id: info.vocabSize - 2,
          eos_token_id: info.vocabSize - 1,
          pad_token_id: info.vocabSize - 1,
        }
      : {}),
  });
  const assumed = [
    `text encoder: ${config.num_attention_heads} heads of 64 channels, ${config.hidden_act} activation`,
  ];
  if (ownVocab) assumed.push("text encoder: start and end tokens are the last two of the vocabulary");
  return { config, assumed };
}
