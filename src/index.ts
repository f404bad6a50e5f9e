/**
 * diffuse: diffusion models in TypeScript.
 *
 * @example
 * import { randn, Generator } from "diffuse";
 * const noise = randn([1, 4, 64, 64], { generator: new Generator().manualSeed(42) });
 */
import "./platform-node.js";
import * as F from "./ops/functional.js";

export type {
  Backend,
  BufferTypes,
  CpuBuffers,
  DeviceBackend,
  DeviceBuffers,
  MemoryReport,
  StrictCounters,
} from "./backend/index.js";
export {
  backendFor,
  getBackend,
  listBackends,
  listDevices,
  memoryReport,
  registerBackend,
  registerDevice,
  resetStrictCounters,
  setBackend,
  strictCounters,
  withBackend,
} from "./backend/index.js";
export { initWebGpu, type WebGpuAdapterInfo, type WebGpuBackend } from "./backend/webgpu/index.js";
export {
  addPngText,
  decodeImage,
  encodePng,
  type Image,
  ImageError,
  imageGrid,
  imageToTensor,
  readImage,
  readPngText,
  tensorToImage,
  tensorToImages,
  writePng,
} from "./io/image.js";
export {
  loadSafetensors,
  openSafetensors,
  openSafetensorsSync,
  parseSafetensors,
  type SafetensorsData,
  type SafetensorsDType,
  type SafetensorsEntry,
  SafetensorsError,
  SafetensorsFile,
  saveSafetensors,
  serializeSafetensors,
  type TensorMap,
} from "./io/safetensors.js";
/** Every model architecture, block and config helper. */
export * as models from "./models/index.js";
export {
  AutoencoderKL,
  AutoencoderKLConfig,
  CheckpointError,
  CLIPTextModel,
  CLIPTextModelWithProjection,
  CLIPTokenizer,
  ModelConfigError,
  TokenizerError,
  UNet2DConditionConfig,
  UNet2DConditionModel,
  UNet2DModel,
} from "./models/index.js";
export * as nn from "./nn/index.js";
export * as optim from "./nn/optim/index.js";
/** Stable Diffusion pipelines (text-to-image, image-to-image, inpainting), guidance, A1111 parameters. */
export * as pipelines from "./pipelines/index.js";
export {
  applyLora,
  formatParameters,
  type GenerateOptions,
  type GenerateResult,
  generateClassImages,
  LoraMismatchError,
  loadClassConditionalPipeline,
  loadLora,
  loadPipelineComponents,
  loadStableDiffusionPipeline,
  PipelineError,
  parseParameters,
  StableDiffusionPipeline,
  StableDiffusionXLPipeline,
} from "./pipelines/index.js";
/** The whole schedulers layer, including the functional k-diffusion-style samplers and sigma helpers. */
export * as schedulers from "./schedulers/index.js";
export {
  DDIMScheduler,
  DDPMScheduler,
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  HeunDiscreteScheduler,
  LCMScheduler,
  LMSDiscreteScheduler,
  loadScheduler,
  PNDMScheduler,
  SAMPLERS,
  Scheduler,
  SchedulerError,
  samplerFromName,
  schedulerFromConfig,
  UniPCMultistepScheduler,
} from "./schedulers/index.js";
export { isGradEnabled, noGrad, setGradEnabled } from "./tensor/autograd.js";
export {
  arange,
  type CreateOptions,
  full,
  linspace,
  ones,
  onesLike,
  type RandomOptions,
  rand,
  randn,
  randnLike,
  tensor,
  zeros,
  zerosLike,
} from "./tensor/create.js";
export { type Device, type DeviceBuffer, DeviceError, type DeviceMemory } from "./tensor/device.js";
export type { DType } from "./tensor/dtype.js";
export { ArgumentError, DiffuseError, DTypeError, ShapeError } from "./tensor/errors.js";
export { defaultGenerator, Generator } from "./tensor/generator.js";
export { type ProgressCallback, type ProgressEvent, progressJson } from "./tensor/progress.js";
export { inScope, keep, release, tidy } from "./tensor/scope.js";
export type { Shape } from "./tensor/shape.js";
export { type MemoryUsage, memoryUsage } from "./tensor/storage.js";
export { Tensor } from "./tensor/tensor.js";
export { F };
