import type { Backend } from "../backend.js";

// PLACEHOLDER (being implemented): groupNorm, groupNormBackward, layerNorm, layerNormBackward.
const missing = (name: string) => () => {
  throw new Error(`reference ${name} not implemented yet`);
};
export const normKernels: Pick<
  Backend,
  "groupNorm" | "groupNormBackward" | "layerNorm" | "layerNormBackward"
> = {
  groupNorm: missing("groupNorm"),
  groupNormBackward: missing("groupNormBackward"),
  layerNorm: missing("layerNorm"),
  layerNormBackward: missing("layerNormBackward"),
};
