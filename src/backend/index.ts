import { type Device, DeviceError, registerMemory } from "../tensor/device.js";
import { ArgumentError } from "../tensor/errors.js";
import { deviceMemoryUsage } from "../tensor/storage.js";
import type { Backend, BufferTypes, DeviceBuffers } from "./backend.js";
import { referenceBackend } from "./reference/index.js";
import { strictBackend } from "./strict/index.js";

export type {
  AdamWParams,
  AttentionParams,
  Backend,
  BinaryOp,
  BufferTypes,
  Conv2dParams,
  CpuBuffers,
  DeviceBuffers,
  GemmHalfBParams,
  GemmParams,
  HalfWeightKernels,
  HeadLayout,
  LinearGegluParams,
  ReduceOp,
  SgdParams,
  StridedAny,
  StridedF32,
  UnaryOp,
} from "./backend.js";
export { contiguousHeads } from "./backend.js";
export { referenceBackend } from "./reference/index.js";
export { resetStrictCounters, type StrictCounters, strictBackend, strictCounters } from "./strict/index.js";

// The native CPU backend is registered by the Node entry (src/platform-node.ts) when its addon is built; it then
// becomes the default. The browser entry never imports it.
const registry = new Map<string, Backend>([["reference", referenceBackend]]);
let current: Backend | undefined;
/** True while `current` is the automatic choice (no setBackend yet): registering may change it. */
let currentIsDefault = false;

/** A backend as the ops layer drives it: kernels on opaque buffers of its device. */
export type DeviceBackend = Backend<DeviceBuffers>;

/** Backends of devices other than the CPU, by device name. */
const devices = new Map<Device, DeviceBackend>();

/** Makes a CPU backend selectable by name (`setBackend(name)`, `DIFFUSE_BACKEND=name`). */
export function registerBackend(backend: Backend): void {
  if (backend.device !== "cpu") {
    throw new ArgumentError(
      `registerBackend() takes CPU backends; "${backend.name}" computes on device "${backend.device}": use registerDevice()`,
    );
  }
  registry.set(backend.name, backend);
  if (currentIsDefault) current = undefined;
}

/**
 * Registers the backend of a device other than the CPU: tensors moved there with `t.to(device)` are computed by
 * its kernels on its buffers. A backend for a new device implements {@link Backend} (kernels plus `memory`) over
 * its own buffer types; every layer above runs on it unchanged.
 */
export function registerDevice<T extends BufferTypes>(backend: Backend<T>): void {
  if (backend.device === "cpu") {
    throw new ArgumentError(`registerDevice(): "${backend.name}" is a CPU backend; use registerBackend()`);
  }
  if (backend.memory.device !== backend.device) {
    throw new ArgumentError(
      `registerDevice(): backend "${backend.name}" is for device "${backend.device}" but its memory is "${backend.memory.device}"`,
    );
  }
  devices.set(backend.device, backend as unknown as DeviceBackend);
  registerMemory(backend.memory);
}

/** The registered devices: "cpu" first. */
export function listDevices(): Device[] {
  return ["cpu", ...devices.keys()];
}

/** The backend that computes on `device` (for "cpu", the selected CPU backend: see {@link setBackend}). */
export function backendFor(device: Device): DeviceBackend {
  if (device === "cpu") return getBackend() as unknown as DeviceBackend;
  const found = devices.get(device);
  if (!found) {
    throw new DeviceError(
      `no backend computes on device "${device}"; registered devices: ${listDevices().join(", ")}`,
    );
  }
  return found;
}

/** Memory of one device: what tensors hold and, where the backend pools memory, what it keeps for reuse. */
export interface MemoryReport {
  readonly device: Device;
  /**
   * Bytes of the buffers tensors hold now (disposed ones subtracted at once, collected ones after GC); null where
   * JavaScript's garbage collector owns the memory (the CPU), which is not counted.
   */
  readonly bytesInUse: number | null;
  readonly buffers: number | null;
  readonly peakBytes: number | null;
  /** Bytes the backend keeps on free lists for reuse (0 where it does not pool). */
  readonly bytesPooled: number;
}

/** A memory report per registered device. */
export function memoryReport(): MemoryReport[] {
  return listDevices().map((device) => {
    const backend = backendFor(device);
    const bytesPooled = backend.pooledBytes?.() ?? 0;
    if (backend.memory.garbageCollected) {
      return { device, bytesInUse: null, buffers: null, peakBytes: null, bytesPooled };
    }
    return { ...deviceMemoryUsage(device), bytesPooled };
  });
}

/** Names of the registered backends. */
export function listBackends(): string[] {
  return [...registry.keys()];
}

/** The backend that ops dispatch to. Chosen by `DIFFUSE_BACKEND` when set, else the fastest registered one. */
export function getBackend(): Backend {
  if (!current) {
    current = pickDefault();
    currentIsDefault = true;
  }
  return current;
}

/** Switches the backend for all following ops; returns the previous one. */
export function setBackend(backend: Backend | string): Backend {
  const previous = getBackend();
  if (typeof backend === "string") {
    const found = registry.get(backend);
    if (!found)
      throw new ArgumentError(`unknown backend "${backend}"; available: ${listBackends().join(", ")}`);
    current = found;
  } else {
    current = backend;
  }
  currentIsDefault = false;
  return previous;
}

/** Runs `fn` with `backend` selected, restoring the previous one afterwards. */
export function withBackend<T>(backend: Backend | string, fn: () => T): T {
  getBackend();
  const wasDefault = currentIsDefault;
  const previous = setBackend(backend);
  try {
    return fn();
  } finally {
    current = previous;
    currentIsDefault = wasDefault;
  }
}

function pickDefault(): Backend {
  const wanted = typeof process !== "undefined" ? process.env?.DIFFUSE_BACKEND : undefined;
  if (wanted) {
    const found = registry.get(wanted);
    if (!found)
      throw new ArgumentError(
        `DIFFUSE_BACKEND=${wanted} is not available; available: ${listBackends().join(", ")}`,
      );
    return found;
  }
  return registry.get("native") ?? referenceBackend;
}

// the strict test device is always there: cheap, and what a newcomer's layer is checked against
registerDevice(strictBackend);
