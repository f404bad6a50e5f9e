// Every error the page meets (no WebGPU, out of GPU memory, a checkpoint or LoRA that does not fit, a server that
// says no, a field out of range) as a sentence for the page, with what to do; none is left to the console. Errors
// from the worker and the library are told apart by their class name.

/** How a message looks. */
export type MessageKind = "error" | "notice" | "info";

/** A user-facing sentence for an error from the library, the worker, the server or the browser. */
export function describeError(err: unknown): { kind: MessageKind; text: string } {
  const e = err as { name?: string; message?: string };
  const name = e?.name ?? "Error";
  const message = e?.message ?? String(err);
  if (name === "AbortError") return { kind: "info", text: "Cancelled." };
  if (name === "DeviceError" || /webgpu|GPU/i.test(message)) {
    if (/out of memory|OutOfMemory|not enough memory|allocat|larger than this adapter binds/i.test(message))
      return {
        kind: "error",
        text: `The GPU ran out of memory (${message}). Try a smaller size or batch, or choose the CPU as device.`,
      };
    if (/device lost|no WebGPU|no adapter/i.test(message))
      return { kind: "error", text: `WebGPU is not usable here (${message}). Choose the CPU as device.` };
  }
  if (name === "LoraMismatchError" || name === "LoraFormatError")
    return { kind: "error", text: `This LoRA cannot be used with the loaded model. ${message}` };
  if (
    ["CheckpointError", "StateDictError", "ModelConfigError", "TokenizerError", "SafetensorsError"].includes(
      name,
    )
  )
    return { kind: "error", text: `This model cannot be loaded. ${message}` };
  if (name === "IoError") return { kind: "error", text: `A file could not be read. ${message}` };
  if (name === "ServerError") return { kind: "error", text: `The server refused: ${message}` };
  // what the library or the form refuses as input says what to change
  if (["PipelineError", "ArgumentError", "SchedulerError", "ImageError", "RangeError"].includes(name))
    return { kind: "error", text: message };
  return { kind: "error", text: `Something went wrong (${name}): ${message}` };
}
