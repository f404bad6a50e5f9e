// Single-file Stable Diffusion checkpoints (original LDM / SGM / OpenCLIP naming): family detection and key
// conversion plans to the diffusers / transformers layouts. Pure name-and-shape logic; no model classes.
export {
  inferTextEncoderLayout,
  ldmCLIPPlan,
  type OpenCLIPPlanOptions,
  openCLIPPlan,
  type TextEncoderShapeInfo,
} from "./clip.js";
export {
  type CheckpointDetection,
  type CheckpointFamily,
  detectCheckpointFamily,
  type PredictionType,
  summarizePrefixes,
  TEXT_ENCODER_PREFIXES,
} from "./detect.js";
export {
  applyTransform,
  type ConversionPlan,
  type KeyMapping,
  keysUnder,
  type ShapeMap,
  type TensorTransform,
  transformedShape,
} from "./plan.js";
export {
  inferUNetLayout,
  LDM_UNET_PREFIX,
  ldmUNetPlan,
  type UNetKeyLayout,
  type UNetShapeInfo,
} from "./unet.js";
export { inferVAELayout, LDM_VAE_PREFIX, ldmVAEPlan, type VAEShapeInfo } from "./vae.js";
