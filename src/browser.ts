/**
 * diffuse for browsers (the package's `browser` export condition): everything that runs without Node.js, on the
 * reference backend (no native addon, no CLI, no `node:` imports). Files come from URLs (fetch), `Blob` / `File`
 * and `ArrayBuffer`; a model folder is a base URL or a map of file names to contents. A bare string is a URL
 * here (relative to the page), a path in Node.js.
 *
 * @example
 * import { generateClassImages, loadClassConditionalPipeline, tensorToImages } from "diffuse";  // resolves here in a bundler
 * const { unet, scheduler } = await loadClassConditionalPipeline(new URL("models/mnist/", location.href));
 * const digits = await generateClassImages(unet, scheduler, { classLabels: [7], steps: 20, seed: 0 });
 * const [image] = await tensorToImages(digits); // 8-bit pixels: image.data
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
export {
  type Image,
  imageGrid,
  imagesFromPixels,
  imageToTensor,
  tensorToImage,
  tensorToImages,
} from "./io/image-tensor.js";
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
export { type GuidanceInterval, parseGuidanceInterval } from "./pipelines/guidance.js";
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
