// A tensor's storage: one buffer in one device's memory, shared by every view of it, with the bookkeeping that
// frees device memory deterministically (dispose / scopes) or, as a safety net, when the storage is collected.
import { byteSize, type Device, type DeviceBuffer, DeviceError, memoryOf } from "./device.js";
import type { DType } from "./dtype.js";

interface DeviceUsage {
  bytes: number;
  buffers: number;
  peakBytes: number;
}

const usage = new Map<Device, DeviceUsage>();

function usageOf(device: Device): DeviceUsage {
  let u = usage.get(device);
  if (!u) {
    u = { bytes: 0, buffers: 0, peakBytes: 0 };
    usage.set(device, u);
  }
  return u;
}

interface Held {
  readonly device: Device;
  readonly dtype: DType;
  readonly buffer: DeviceBuffer;
  readonly bytes: number;
}

function release(held: Held): void {
  const u = usageOf(held.device);
  u.bytes -= held.bytes;
  u.buffers--;
  memoryOf(held.device).free(held.buffer, held.dtype);
}

// The safety net: a storage nobody disposed frees its buffer once it is garbage-collected.
const finalizer = new FinalizationRegistry<Held>(release);

/** The buffer behind one or more tensors (views share it), owned by `device`'s memory. */
export class Storage {
  readonly device: Device;
  readonly dtype: DType;
  /** Elements in the buffer. */
  readonly length: number;
  #buffer: DeviceBuffer | null;
  /** Live tensors that use this storage (a dispose takes one away; the last one frees the buffer). */
  #refs = 0;
  /** Whether the bytes are counted and the buffer freed by this class (not by the garbage collector). */
  readonly #tracked: boolean;

  constructor(device: Device, dtype: DType, buffer: DeviceBuffer, length: number) {
    this.device = device;
    this.dtype = dtype;
    this.length = length;
    this.#buffer = buffer;
    // memory the garbage collector owns (the CPU's typed arrays) needs no bookkeeping; registering every op's
    // output with the finalizer would cost more than a small op itself
    this.#tracked = memoryOf(device).garbageCollected !== true;
    if (!this.#tracked) return;
    const bytes = byteSize(dtype, length);
    const u = usageOf(device);
    u.bytes += bytes;
    u.buffers++;
    if (u.bytes > u.peakBytes) u.peakBytes = u.bytes;
    finalizer.register(this, { device, dtype, buffer, bytes }, this);
  }

  /** The device buffer; a DeviceError once the storage was freed. */
  get buffer(): DeviceBuffer {
    if (!this.#buffer) {
      throw new DeviceError(
        "this tensor was disposed (by dispose() or at the end of a tidy() scope) and its memory freed",
      );
    }
    return this.#buffer;
  }

  /** Whether the buffer was freed. */
  get disposed(): boolean {
    return this.#buffer === null;
  }

  /** @internal counts a tensor that uses this storage. */
  retain(): void {
    this.#refs++;
  }

  /** @internal a tensor that used this storage was disposed: frees the buffer when it was the last one. */
  releaseRef(): void {
    if (this.#buffer === null) return;
    if (--this.#refs > 0) return;
    const buffer = this.#buffer;
    this.#buffer = null;
    if (!this.#tracked) return;
    finalizer.unregister(this);
    release({ device: this.device, dtype: this.dtype, buffer, bytes: byteSize(this.dtype, this.length) });
  }
}

/**
 * Bytes held by the live storages of each device with its own memory (freed ones subtracted at once, collected
 * ones when the GC runs). Garbage-collected memory (the CPU's) is not counted.
 */
export interface MemoryUsage {
  readonly device: Device;
  /** Bytes of the buffers tensors hold now. */
  readonly bytesInUse: number;
  /** Buffers tensors hold now. */
  readonly buffers: number;
  /** The largest bytesInUse seen since start-up. */
  readonly peakBytes: number;
}

/**
 * Memory held by tensors' storages, per device with its own memory (see the backend layer's `memoryReport` for
 * pooled bytes too).
 */
export function memoryUsage(): MemoryUsage[] {
  return [...usage].map(([device, u]) => ({
    device,
    bytesInUse: u.bytes,
    buffers: u.buffers,
    peakBytes: u.peakBytes,
  }));
}

/** Memory held by tensors on one device. */
export function deviceMemoryUsage(device: Device): MemoryUsage {
  const u = usageOf(device);
  return { device, bytesInUse: u.bytes, buffers: u.buffers, peakBytes: u.peakBytes };
}
