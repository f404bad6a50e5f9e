// The nn kernels of the WebGPU backend, assembled from reduce.ts (reductions), norm.ts (softmax, group / layer
// norm and their backward) and gather.ts (GEGLU, nearest upsampling, index select / add): four pipelines.
import type { Backend, BufferTypes } from "../backend.js";
import { gatherKernels } from "./gather.js";
import { normKernels } from "./norm.js";
import { reduceKernels } from "./reduce.js";
import type { GpuRuntime } from "./runtime.js";

export function nnKernels(
  rt: GpuRuntime,
): Pick<
  Backend<BufferTypes>,
  | "reduce"
  | "softmax"
  | "groupNorm"
  | "groupNormBackward"
  | "layerNorm"
  | "layerNormBackward"
  | "geglu"
  | "upsampleNearest"
  | "upsampleNearestBackward"
  | "indexSelect"
  | "indexAdd"
> {
  return { ...reduceKernels(rt), ...normKernels(rt), ...gatherKernels(rt) };
}
