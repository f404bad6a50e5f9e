import type { Backend } from "../backend.js";

// PLACEHOLDER (being implemented): conv2d, conv2dBackwardInput, conv2dBackwardWeight.
const missing = (name: string) => () => {
  throw new Error(`reference ${name} not implemented yet`);
};
export const convKernels: Pick<Backend, "conv2d" | "conv2dBackwardInput" | "conv2dBackwardWeight"> = {
  conv2d: missing("conv2d"),
  conv2dBackwardInput: missing("conv2dBackwardInput"),
  conv2dBackwardWeight: missing("conv2dBackwardWeight"),
};
