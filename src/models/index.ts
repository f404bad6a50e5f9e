// Model architectures and their configs (diffusers / transformers compatible).
export { type Activation, activation, groupNormSilu } from "./blocks/activation.js";
export { Attention, type AttentionOptions } from "./blocks/attention.js";
export {
  TimestepEmbedding,
  type TimestepEmbeddingModuleOptions,
  type TimestepEmbeddingOptions,
  Timesteps,
  timestepEmbedding,
} from "./blocks/embeddings.js";
export { CheckpointError, ModelConfigError } from "./blocks/errors.js";
export { FeedForward, type FeedForwardOptions, GEGLU } from "./blocks/feed-forward.js";
export { ResnetBlock2D, type ResnetBlock2DOptions } from "./blocks/resnet.js";
export {
  Downsample2D,
  type Downsample2DOptions,
  Upsample2D,
  type Upsample2DOptions,
} from "./blocks/sampling.js";
export {
  BasicTransformerBlock,
  type BasicTransformerBlockOptions,
  Transformer2DModel,
  type Transformer2DModelOptions,
} from "./blocks/transformer.js";
export {
  type FindWeightFilesOptions,
  type FromPretrainedOptions,
  findWeightFiles,
  type LoadWeightsOptions,
  loadPretrained,
  loadWeights,
  type PretrainedSpec,
  type WeightNaming,
} from "./blocks/weights.js";
export * from "./clip/index.js";
export { CLIPTokenizer, TokenizerError } from "./clip/tokenizer.js";
export { planUNet, UNet2DConditionConfig, type UNetBlockPlan, type UNetPlan } from "./unet/config.js";
export { type ClassLabels, UNet2DModel } from "./unet/unet-2d.js";
export {
  type AddedCondKwargs,
  buildDownBlock,
  type DownBlock,
  type Timestep,
  UNet2DConditionModel,
  type UNetForwardOptions,
} from "./unet/unet-2d-condition.js";
export { resolveUNet2DConfig, type UNet2DConfig } from "./unet/unet-2d-config.js";
export {
  CrossAttnDownBlock2D,
  CrossAttnUpBlock2D,
  DownBlock2D,
  type DownBlockOutput,
  UNetMidBlock2DCrossAttn,
  UpBlock2D,
} from "./unet/unet-blocks.js";
export { AutoencoderKL, type AutoencoderKLEncodeOutput, type VAEStageOptions } from "./vae/autoencoder-kl.js";
export { AutoencoderKLConfig } from "./vae/config.js";
export { DiagonalGaussianDistribution } from "./vae/distribution.js";
export { Decoder, Encoder } from "./vae/encoder-decoder.js";
export { DownEncoderBlock2D, UNetMidBlock2D, UpDecoderBlock2D } from "./vae/vae-blocks.js";
