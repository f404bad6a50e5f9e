import { cpuMemory } from "../../tensor/device.js";
import type { Backend } from "../backend.js";
import { attentionKernels } from "./attention.js";
import { convKernels } from "./conv.js";
import { convertKernels } from "./convert.js";
import { elementwiseKernels } from "./elementwise.js";
import { gemmKernels } from "./gemm.js";
import { indexingKernels } from "./indexing.js";
import { normKernels } from "./norm.js";
import { optimKernels } from "./optim.js";
import { reduceKernels } from "./reduce.js";

/** Plain TypeScript kernels: slow, obviously correct, always available. The oracle for every other backend. */
export const referenceBackend: Backend = {
  name: "reference",
  device: "cpu",
  memory: cpuMemory,
  fusesResidual: true,
  ...convertKernels,
  ...optimKernels,
  ...elementwiseKernels,
  ...reduceKernels,
  ...gemmKernels,
  ...convKernels,
  ...normKernels,
  ...attentionKernels,
  ...indexingKernels,
};
