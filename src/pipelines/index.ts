// Public API of the pipelines layer: Stable Diffusion (1.x / 2.x / XL) text-to-image, image-to-image and
// inpainting, classifier-free guidance, A1111-style generation parameters and model hashes.

export {
  type ClassConditionalPipeline,
  type ClassImageOptions,
  generateClassImages,
  loadClassConditionalPipeline,
} from "./class-conditional.js";
export { type SavePipelineOptions, saveClassConditionalPipeline } from "./class-conditional-save.js";
export {
  encodeSdPrompt,
  encodeSdxlPrompt,
  encodeTexts,
  type PromptConditioning,
  repeatRows,
  type TextEncoderPair,
  truncationWarning,
} from "./conditioning.js";
export {
  type DenoiseRun,
  denoise,
  type InpaintState,
  type NoisePredictor,
  type UNetConditioning,
  unetPredictor,
} from "./denoise.js";
export { PipelineError } from "./errors.js";
export type { GenerateOptions, GenerateResult } from "./generate-options.js";
export {
  applyGuidance,
  checkGuidance,
  checkGuidanceInterval,
  conditionalHalf,
  formatGuidanceInterval,
  GUIDANCE_WARN_ABOVE,
  type GuidanceInterval,
  guidanceBatch,
  guidanceScaleEmbedding,
  guidanceWarning,
  guidedAt,
  parseGuidanceInterval,
  rescaleGuidance,
  timestepSigma,
  usesGuidance,
} from "./guidance.js";
export { type ImageInputs, type PreparedImageRun, prepareImageInputs } from "./image-inputs.js";
export {
  checkStrength,
  encodeImageLatents,
  isImage,
  pixelSize,
  preprocessImage,
  type StrengthSchedule,
  strengthTimesteps,
} from "./img2img.js";
export { blendKnownRegion, checkMaskSize, maskedImage, maskToLatentGrid, preprocessMask } from "./inpaint.js";
export {
  assertFinite,
  checkImageSize,
  checkLatentsShape,
  firstNonFinite,
  initialNoise,
  latentShape,
  nearestMultiples,
} from "./latents.js";
export {
  type LoadPipelineOptions,
  loadPipelineComponents,
  type PipelineComponents,
} from "./load.js";
export { type ApplyLoraOptions, applyLora, type LoraHandle, LoraMismatchError, loadLora } from "./lora.js";
export {
  autoV2Hash,
  fileSha256,
  loraHash,
  modelHash,
  modelHashFile,
  safetensorsDataSha256,
} from "./model-hash.js";
export {
  MODEL_INDEX,
  type ModelIndex,
  type ModelIndexEntry,
  parseModelIndex,
  readModelIndex,
} from "./model-index.js";
export {
  a1111SamplerName,
  formatParameters,
  type GenerationSettings,
  type LoraUse,
  parseParameters,
  parseParametersText,
  samplerFromA1111,
} from "./params.js";
export { resizeImage } from "./resize.js";
export {
  componentsOf,
  type PipelineLoraOptions,
  type StableDiffusionComponents,
  StableDiffusionPipeline,
} from "./stable-diffusion.js";
export {
  loadStableDiffusionPipeline,
  type StableDiffusionXLComponents,
  StableDiffusionXLPipeline,
  sdxlComponentsOf,
  sdxlTimeIds,
} from "./stable-diffusion-xl.js";
