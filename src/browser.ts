/**
 * diffuse for browsers (the package's `browser` export condition): everything that runs without Node.js, on the
 * reference backend or WebGPU (no native addon, no CLI, no `node:` imports): Stable Diffusion pipelines (loaded
 * from a diffusers folder or a single `.safetensors` file), LoRAs, A1111 parameters and PNG text chunks. Files come
 * from URLs (fetch), `Blob` / `File` and `ArrayBuffer`; a model folder is a base URL or a map of file names to
 * contents. A bare string is a URL here (relative to the page), a path in Node.js.
 *
 * @example
 * import { loadStableDiffusionPipeline } from "diffuse";  // resolves here in a bundler
 * const pipe = await loadStableDiffusionPipeline(new URL("models/emoji/", location.href));
 * const { images } = await pipe.generate({ prompt: "red heart", steps: 20, seed: 0 });
 * // images[0].data: 8-bit RGB pixels; a File from a file picker (a .safetensors checkpoint) loads the same way
 */
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
export { IoError, SafetensorsError } from "./io/errors.js";
export { type FileMap, type ModelFolder, type ModelSource, modelFolder } from "./io/folder.js";
export { ImageError } from "./io/image-errors.js";
export {
  type Image,
  imageGrid,
  imagesFromPixels,
  imageToTensor,
  tensorToImage,
  tensorToImages,
} from "./io/image-tensor.js";
export { addPngText, readPngText } from "./io/png-text.js";
export {
  decodeSafetensor,
  loadSafetensors,
  openSafetensors,
  parseSafetensors,
  type SafetensorsData,
  type SafetensorsDType,
  type SafetensorsEntry,
  SafetensorsFile,
} from "./io/safetensors-read.js";
export {
  type ByteSource,
  blobSource,
  bytesSource,
  type FileInput,
  fetchSource,
  openSource,
  readAllBytes,
  readText,
} from "./io/source.js";
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
export {
  type ClassConditionalPipeline,
  type ClassImageOptions,
  generateClassImages,
  loadClassConditionalPipeline,
} from "./pipelines/class-conditional.js";
export { PipelineError } from "./pipelines/errors.js";
export type { GenerateOptions, GenerateResult } from "./pipelines/generate-options.js";
export { type GuidanceInterval, parseGuidanceInterval } from "./pipelines/guidance.js";
export {
  type LoadPipelineOptions,
  loadPipelineComponents,
  type PipelineComponents,
  type PipelineSource,
} from "./pipelines/load.js";
export {
  type ApplyLoraOptions,
  applyLora,
  type LoraHandle,
  LoraMismatchError,
  loadLora,
} from "./pipelines/lora.js";
export { autoV2Hash, loraHash } from "./pipelines/model-hash.js";
export {
  formatParameters,
  type GenerationSettings,
  type LoraUse,
  parseParameters,
} from "./pipelines/params.js";
export {
  type PipelineLoraOptions,
  type StableDiffusionComponents,
  StableDiffusionPipeline,
} from "./pipelines/stable-diffusion.js";
export {
  loadStableDiffusionPipeline,
  type StableDiffusionXLComponents,
  StableDiffusionXLPipeline,
} from "./pipelines/stable-diffusion-xl.js";
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
