// The strict test device: the reference kernels behind buffers the CPU cannot read synchronously. Everything a
// GPU backend would refuse fails here too (dataSync, typed-array access from the layers above), and every
// readback is counted, so tests can hold the layers above to "read back only at the edges".
import { type DeviceBuffer, DeviceError, type DeviceMemory } from "../../tensor/device.js";
import { allocStorage, type StorageArray } from "../../tensor/dtype.js";
import type { Backend, BufferTypes } from "../backend.js";
import { referenceBackend } from "../reference/index.js";

/** A buffer of the strict device: a typed array only its kernels unwrap. */
class StrictBuffer {
  #array: StorageArray | null;
  /** The buffer a view was made from: freeing it invalidates the view too. */
  readonly #parent: StrictBuffer | null;
  constructor(array: StorageArray, parent: StrictBuffer | null = null) {
    this.#array = array;
    this.#parent = parent;
  }
  get array(): StorageArray {
    if (!this.#array || this.#parent?.freed) {
      throw new DeviceError("strict device: a kernel read a buffer that was freed");
    }
    return this.#array;
  }
  get freed(): boolean {
    return this.#array === null || (this.#parent?.freed ?? false);
  }
  free(): void {
    if (this.#array === null) throw new DeviceError("strict device: a buffer was freed twice");
    this.#array = null;
  }
}

/** What the strict device has done since the last {@link resetStrictCounters}. */
export interface StrictCounters {
  /** Asynchronous reads back to the CPU (`await t.data()` and friends). */
  readbacks: number;
  /** Copies from the CPU into new buffers (tensors created on or moved to the device). */
  uploads: number;
  /** Writes from the CPU into existing buffers (loading weights, initialisers). */
  writes: number;
  /** Kernel calls. */
  kernels: number;
}

const counters: StrictCounters = { readbacks: 0, uploads: 0, writes: 0, kernels: 0 };

/** A copy of the strict device's counters. */
export function strictCounters(): StrictCounters {
  return { ...counters };
}

/** Zeroes the strict device's counters. */
export function resetStrictCounters(): void {
  counters.readbacks = 0;
  counters.uploads = 0;
  counters.writes = 0;
  counters.kernels = 0;
}

const wrap = (array: StorageArray): DeviceBuffer => new StrictBuffer(array) as unknown as DeviceBuffer;

function unwrapBuffer(buffer: DeviceBuffer): StorageArray {
  if (!(buffer instanceof StrictBuffer)) {
    throw new DeviceError(
      "strict device: a kernel got a buffer of another device (a typed array or a foreign handle)",
    );
  }
  return buffer.array;
}

const strictMemory: DeviceMemory = {
  device: "strict",
  alloc: (dtype, size) => wrap(allocStorage(dtype, size)),
  upload(data) {
    counters.uploads++;
    return wrap(data.slice());
  },
  write(buffer, _dtype, offset, data) {
    counters.writes++;
    unwrapBuffer(buffer).set(data as never, offset);
  },
  async read(buffer, _dtype, offset, length) {
    counters.readbacks++;
    return unwrapBuffer(buffer).slice(offset, offset + length) as StorageArray;
  },
  subview: (buffer, _dtype, offset, length) =>
    new StrictBuffer(
      unwrapBuffer(buffer).subarray(offset, offset + length) as StorageArray,
      buffer as unknown as StrictBuffer,
    ) as unknown as DeviceBuffer,
  free(buffer) {
    (buffer as unknown as StrictBuffer).free();
  },
};

/** Kernel arguments with the strict buffers replaced by their arrays (one level into parameter objects). */
function unwrapArg(arg: unknown): unknown {
  if (arg instanceof StrictBuffer) return arg.array;
  if (arg === null || typeof arg !== "object" || Array.isArray(arg) || ArrayBuffer.isView(arg)) {
    if (ArrayBuffer.isView(arg)) {
      throw new DeviceError(
        "strict device: a kernel got a typed array, not a device buffer (CPU data leaked in)",
      );
    }
    return arg;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(arg)) {
    if (ArrayBuffer.isView(v)) {
      throw new DeviceError(`strict device: kernel parameter "${k}" is a typed array, not a device buffer`);
    }
    out[k] = v instanceof StrictBuffer ? v.array : v;
  }
  return out;
}

function strictKernels(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(referenceBackend)) {
    if (typeof value !== "function") continue;
    const kernel = value as (...args: unknown[]) => unknown;
    out[name] = (...args: unknown[]) => {
      counters.kernels++;
      return kernel(...args.map(unwrapArg));
    };
  }
  return out;
}

/**
 * The strict device's backend ("strict"): reference kernels, opaque buffers, no synchronous reads, counted
 * readbacks. For tests of the layers above the backends, and a worked example of a backend for a new device.
 */
export const strictBackend: Backend<BufferTypes> = {
  ...(strictKernels() as unknown as Backend<BufferTypes>),
  name: "strict",
  device: "strict",
  memory: strictMemory,
  fusesResidual: true,
};
