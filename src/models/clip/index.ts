// CLIP text encoders (transformers-compatible) and prompt-embedding helpers. The tokenizer lives in tokenizer.ts.
export {
  CLIP_ACTIVATIONS,
  CLIP_TEXT_DEFAULTS,
  type CLIPActivation,
  type CLIPTextConfig,
  type CLIPTextConfigInput,
  clipTextConfig,
  SD1_TEXT_ENCODER,
  SD2_TEXT_ENCODER,
  SDXL_TEXT_ENCODER,
  SDXL_TEXT_ENCODER_2,
} from "./config.js";
export { CLIPLoadError } from "./errors.js";
export {
  activate,
  CLIPAttention,
  CLIPEncoder,
  CLIPEncoderLayer,
  CLIPMLP,
  CLIPTextEmbeddings,
} from "./layers.js";
export { type CLIPFromPretrainedOptions, readCLIPTextConfig } from "./load.js";
export { type TextEmbeddings, type TextEmbeddingsOptions, textEmbeddings } from "./prompt.js";
export {
  type CLIPTextForwardOptions,
  CLIPTextModel,
  type CLIPTextModelOutput,
  CLIPTextModelWithProjection,
  type CLIPTextModelWithProjectionOutput,
  CLIPTextTransformer,
  eosPositions,
  readTokenIds,
} from "./text-model.js";
