import "./methods.js";

export { copy_, writeValues } from "./assign.js";
export { type AttentionOptions, scaled_dot_product_attention } from "./attention.js";
export {
  type Conv2dOptions,
  type ConvTranspose2dOptions,
  conv_transpose2d,
  conv2d,
  type Size2,
} from "./conv.js";
export { dropout, type UniformSource } from "./dropout.js";
export * from "./elementwise.js";
export { geglu, linearGeglu } from "./geglu.js";
export { embedding, gather, indexSelect } from "./indexing.js";
export { type CrossEntropyOptions, cross_entropy, mse_loss, type Reduction } from "./loss.js";
export { linear, linearToChannels, matmul } from "./matmul.js";
export { group_norm, group_norm_silu, layer_norm } from "./norm.js";
export { avg_pool2d, type InterpolateOptions, interpolate } from "./pool.js";
export {
  argmax,
  argmin,
  expand,
  max,
  mean,
  min,
  type ReduceOptions,
  sum,
  sumToShape,
  variance,
} from "./reduce.js";
export { cat, chunk, pad, split, stack } from "./shape.js";
export { log_softmax, softmax } from "./softmax.js";
export { type AdamWStep, adamwUpdate, lerpTo_, type SgdStep, sgdUpdate } from "./update.js";
export {
  clone,
  contiguous,
  detach,
  expectShape,
  flatten,
  narrow,
  permute,
  reshape,
  select,
  slice,
  squeeze,
  to,
  toDevice,
  toDeviceAsync,
  transpose,
  unsqueeze,
} from "./view.js";
