// The `nn` namespace: modules, layers and initialisation (PyTorch's torch.nn).
export { GELU, Identity, ReLU, SiLU } from "./activation.js";
export { ModuleList, Sequential } from "./container.js";
export { Conv2d, type Conv2dOptions } from "./conv.js";
export { Dropout } from "./dropout.js";
export { Embedding, type EmbeddingOptions } from "./embedding.js";
export { type ShapeMismatch, StateDictError } from "./errors.js";
export * as init from "./init.js";
export { Linear, type LinearOptions } from "./linear.js";
export {
  type LoadStateDictOptions,
  type LoadStateDictResult,
  Module,
  type StateDict,
} from "./module.js";
export { GroupNorm, type GroupNormOptions, LayerNorm, type LayerNormOptions } from "./norm.js";
export type { LayerOptions } from "./options.js";
export { Parameter } from "./parameter.js";
