import type { Backend } from "../backend.js";

// PLACEHOLDER (being implemented): fused attention forward.
export const attentionKernels: Pick<Backend, "attention"> = {
  attention: () => {
    throw new Error("reference attention not implemented yet");
  },
};
