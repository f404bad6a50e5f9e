/**
 * Safetensors for Node.js: the reader (safetensors-read.ts, which also runs in browsers) and the writer
 * (safetensors-write.ts, files on disk). Header validation lives in safetensors-header.ts.
 */
export { SafetensorsError } from "./errors.js";
export type { SafetensorsDType, SafetensorsEntry, SafetensorsHeader } from "./safetensors-header.js";
export { MAX_HEADER_BYTES, parseHeader as parseSafetensorsHeader } from "./safetensors-header.js";
export {
  decodeSafetensor,
  loadSafetensors,
  openSafetensors,
  openSafetensorsSync,
  parseSafetensors,
  type SafetensorsData,
  SafetensorsFile,
} from "./safetensors-read.js";
export { saveSafetensors, serializeSafetensors, type TensorMap } from "./safetensors-write.js";
