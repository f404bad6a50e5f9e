// Devices: where a tensor's data lives. A device's memory is a set of opaque buffers that only its backend's
// kernels read and write; the CPU reads them only through `read` (asynchronous) or, where the memory is
// host-visible, `readSync`. The CPU device is defined here (typed arrays); the backend layer registers others.
import { allocStorage, type DType, itemSize, type StorageArray } from "./dtype.js";
import { DiffuseError } from "./errors.js";

/** A device name: `"cpu"`, or one a backend registered (`"strict"`, `"webgpu"`, ...). */
export type Device = string;

/** A buffer owned by a device's memory. Opaque above the backend layer: pass it to that device's kernels. */
export interface DeviceBuffer {
  readonly __deviceBuffer: unique symbol;
}

/** Tensors on two devices met in one op, or a device cannot do what was asked. */
export class DeviceError extends DiffuseError {}

/**
 * The memory of one device: how buffers are made, filled, viewed, read back and freed. Element offsets and
 * lengths are in elements of `dtype` (float16/bfloat16 as raw 16-bit patterns).
 */
export interface DeviceMemory {
  readonly device: Device;
  /** A new buffer of `size` elements, zero-filled. */
  alloc(dtype: DType, size: number): DeviceBuffer;
  /** A new buffer holding a copy of `data` (the CPU keeps `data` itself: no copy). */
  upload(data: StorageArray, dtype: DType): DeviceBuffer;
  /** Writes `data` into `buffer` from element `offset`. */
  write(buffer: DeviceBuffer, dtype: DType, offset: number, data: StorageArray): void;
  /** Reads `length` elements from `offset` back to the CPU. */
  read(buffer: DeviceBuffer, dtype: DType, offset: number, length: number): Promise<StorageArray>;
  /**
   * Synchronous read, for host-visible memory only (the CPU: a view, not a copy). Absent: the device's data can
   * only be read with {@link read}.
   */
  readonly readSync?: (buffer: DeviceBuffer, dtype: DType, offset: number, length: number) => StorageArray;
  /**
   * A buffer that aliases elements `[offset, offset + length)` of `buffer` (writes go through), or null where the
   * device cannot alias at that offset (the caller then copies).
   */
  subview(buffer: DeviceBuffer, dtype: DType, offset: number, length: number): DeviceBuffer | null;
  /** Releases a buffer no tensor uses any more (a no-op where a garbage collector owns the memory). */
  free(buffer: DeviceBuffer, dtype: DType): void;
  /**
   * True where JavaScript's garbage collector owns the memory (the CPU's typed arrays): memory scopes leave such
   * tensors alone, since freeing them early gains nothing. Devices with their own memory (GPUs) leave it unset.
   */
  readonly garbageCollected?: boolean;
}

/** Typed arrays as buffers: the CPU's memory. */
export const cpuMemory: DeviceMemory = {
  device: "cpu",
  alloc: (dtype, size) => allocStorage(dtype, size) as unknown as DeviceBuffer,
  upload: (data) => data as unknown as DeviceBuffer,
  write(buffer, _dtype, offset, data) {
    (buffer as unknown as StorageArray).set(data as never, offset);
  },
  read: async (buffer, dtype, offset, length) => cpuMemory.readSync!(buffer, dtype, offset, length),
  readSync(buffer, _dtype, offset, length) {
    const data = buffer as unknown as StorageArray;
    return offset === 0 && length === data.length
      ? data
      : (data.subarray(offset, offset + length) as StorageArray);
  },
  subview: (buffer, dtype, offset, length) =>
    cpuMemory.readSync!(buffer, dtype, offset, length) as unknown as DeviceBuffer,
  free() {},
  garbageCollected: true,
};

const memories = new Map<Device, DeviceMemory>([["cpu", cpuMemory]]);

/** Makes a device's memory known to tensors (the backend layer's `registerDevice` calls this). */
export function registerMemory(memory: DeviceMemory): void {
  memories.set(memory.device, memory);
}

/** The memory of `device`; a DeviceError naming the known devices when it is not registered. */
export function memoryOf(device: Device): DeviceMemory {
  const memory = memories.get(device);
  if (!memory) {
    throw new DeviceError(
      `unknown device "${device}"; registered devices: ${[...memories.keys()].join(", ")}`,
    );
  }
  return memory;
}

/** Whether `name` is a registered device. */
export function isDevice(name: string): boolean {
  return memories.has(name);
}

/** Bytes of `size` elements of `dtype`. */
export function byteSize(dtype: DType, size: number): number {
  return itemSize(dtype) * size;
}
