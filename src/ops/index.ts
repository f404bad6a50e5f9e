import "./methods.js";

export * from "./elementwise.js";
export { linear, matmul } from "./matmul.js";
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
  transpose,
  unsqueeze,
} from "./view.js";
