// WebGPU memory: device buffers behind opaque handles, a pool of freed buffers for reuse, uploads, in-order
// writes and asynchronous readback (mapAsync). Every dtype keeps its own width (float16 weights take 2 bytes per
// element); kernels address elements through the handle's byte offset, so a view at any element offset aliases.
import { type DeviceBuffer, DeviceError, type DeviceMemory } from "../../tensor/device.js";
import { allocStorage, type DType, itemSize, type StorageArray } from "../../tensor/dtype.js";
import { BufferUsage, type GpuRuntime, MAP_MODE_READ } from "./runtime.js";
import { widthOf } from "./wgsl.js";

const USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/** A WebGPU buffer handle: elements from `byteOffset` of `gpu` (shared by views of one storage). */
export class GpuBuffer {
  constructor(
    readonly gpu: GPUBuffer,
    readonly byteOffset: number,
    readonly byteLength: number,
    /** Whether this handle owns `gpu` (views do not). */
    readonly owner: boolean,
    /** Bytes per element of the dtype it was made for (copies move elements of this width). */
    readonly width: 1 | 2 | 4 | 8,
    /** The handle a view was made from (views see their owner's release). */
    readonly parent: GpuBuffer | null = null,
  ) {}
  /** Set once the buffer went back to the pool (a second free is a bug of the caller). */
  released = false;
  /** Whether this buffer, or the one it views, was freed. */
  get freed(): boolean {
    return this.released || (this.parent?.freed ?? false);
  }
  /** The element index of this handle's first element, for elements of `bytes` bytes. */
  first(bytes: number): number {
    return this.byteOffset / bytes;
  }
}

/** The GpuBuffer behind an opaque handle; a DeviceError for a handle of another device. */
export function gpuBuffer(buffer: unknown): GpuBuffer {
  if (!(buffer instanceof GpuBuffer)) {
    throw new DeviceError(
      `webgpu: a kernel got ${ArrayBuffer.isView(buffer) ? "a typed array" : "a buffer of another device"}, not a webgpu buffer`,
    );
  }
  if (buffer.freed) {
    // its memory may already hold another tensor: reading it would give silent garbage
    throw new DeviceError(
      "webgpu: a kernel got a buffer that was freed (a tensor disposed, or freed at the end of a tidy() scope, before its last use)",
    );
  }
  return buffer;
}

/** Pool buckets: sizes rounded up so that buffers of similar sizes are reused (at most 1/8 wasted). */
export function bucketBytes(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 4) * 4);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

/**
 * Elementwise writers for sub-word or unaligned CPU writes: `scatter(temp, dtype, dst, dstElement, count)` copies
 * `count` elements from the start of temp into dst (a kernel in the command stream, in order with the others).
 */
export type Scatter = (
  src: GpuBuffer,
  dtype: DType,
  dst: GpuBuffer,
  dstElement: number,
  count: number,
) => void;

export class WebGpuMemory implements DeviceMemory {
  readonly device = "webgpu";
  readonly #rt: GpuRuntime;
  readonly #pool = new Map<number, GPUBuffer[]>();
  #pooledBytes = 0;
  /** Pooled bytes kept at most (the rest is destroyed). */
  readonly poolLimit: number;
  scatter: Scatter | null = null;
  // handles nobody freed (temporaries of the ops layer) go back to the pool once collected
  readonly #finalizer = new FinalizationRegistry<GPUBuffer>((gpu) => this.#recycle(gpu));

  constructor(runtime: GpuRuntime, poolLimit = 1 << 30) {
    this.#rt = runtime;
    this.poolLimit = poolLimit;
  }

  get pooledBytes(): number {
    return this.#pooledBytes;
  }

  #maxBytesCached = 0;
  /** The largest buffer kernels can bind (read once: the limits object is a native call away). */
  #maxBytes(): number {
    if (this.#maxBytesCached === 0) {
      const l = this.#rt.device.limits;
      this.#maxBytesCached = Math.min(l.maxBufferSize, l.maxStorageBufferBindingSize);
    }
    return this.#maxBytesCached;
  }

  /** A buffer of at least `bytes` bytes (pooled contents unspecified; `zero` clears them in order). */
  #take(dtype: DType, bytes: number, zero: boolean): GpuBuffer {
    const size = bucketBytes(bytes);
    if (size > this.#maxBytes()) {
      throw new DeviceError(
        `webgpu: a buffer of ${bytes} bytes is larger than this adapter binds (${this.#maxBytes()} bytes, ${this.#rt.adapterName})`,
      );
    }
    const free = this.#pool.get(size);
    let gpu = free?.pop();
    if (gpu) {
      this.#pooledBytes -= size;
      if (zero) this.#rt.encoder().clearBuffer(gpu);
    } else {
      gpu = this.#rt.device.createBuffer({ size, usage: USAGE });
    }
    const handle = new GpuBuffer(gpu, 0, bytes, true, widthOf(dtype));
    this.#finalizer.register(handle, gpu, handle);
    return handle;
  }

  #recycle(gpu: GPUBuffer): void {
    const size = gpu.size;
    if (this.#pooledBytes + size > this.poolLimit) {
      this.#rt.destroyLater(gpu);
      return;
    }
    let list = this.#pool.get(size);
    if (!list) {
      list = [];
      this.#pool.set(size, list);
    }
    list.push(gpu);
    this.#pooledBytes += size;
  }

  alloc(dtype: DType, size: number): DeviceBuffer {
    return this.#take(dtype, size * itemSize(dtype), true) as unknown as DeviceBuffer;
  }

  /** A buffer whose contents the next kernel overwrites in full. */
  allocUninit(dtype: DType, size: number): DeviceBuffer {
    return this.#take(dtype, size * itemSize(dtype), false) as unknown as DeviceBuffer;
  }

  upload(data: StorageArray, dtype: DType): DeviceBuffer {
    const bytes = data.byteLength;
    const size = bucketBytes(bytes);
    if (size > this.#maxBytes()) {
      throw new DeviceError(
        `webgpu: a buffer of ${bytes} bytes is larger than this adapter binds (${this.#maxBytes()} bytes, ${this.#rt.adapterName})`,
      );
    }
    // a fresh buffer mapped at creation: no ordering with recorded work to respect
    const gpu = this.#rt.device.createBuffer({ size, usage: USAGE, mappedAtCreation: true });
    new Uint8Array(gpu.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, bytes));
    gpu.unmap();
    const handle = new GpuBuffer(gpu, 0, bytes, true, widthOf(dtype));
    this.#finalizer.register(handle, gpu, handle);
    return handle as unknown as DeviceBuffer;
  }

  write(buffer: DeviceBuffer, dtype: DType, offset: number, data: StorageArray): void {
    const b = gpuBuffer(buffer);
    const start = b.byteOffset + offset * itemSize(dtype);
    const bytes = data.byteLength;
    if (offset < 0 || offset * itemSize(dtype) + bytes > b.byteLength) {
      throw new DeviceError(
        `webgpu: a write of ${data.length} elements at ${offset} passes the end of its buffer`,
      );
    }
    if (bytes === 0) return;
    if (start % 4 === 0 && bytes % 4 === 0) {
      // queue writes run before the recorded work: submit that first, so the write lands after it
      this.#rt.flush();
      this.#rt.device.queue.writeBuffer(b.gpu, start, data.buffer, data.byteOffset, bytes);
      return;
    }
    if (!this.scatter) throw new DeviceError("webgpu: unaligned writes need the copy kernel");
    const temp = gpuBuffer(this.upload(data, dtype));
    this.scatter(temp, dtype, b, b.first(itemSize(dtype)) + offset, data.length);
    this.free(temp as unknown as DeviceBuffer, dtype);
  }

  async read(buffer: DeviceBuffer, dtype: DType, offset: number, length: number): Promise<StorageArray> {
    const b = gpuBuffer(buffer);
    const width = itemSize(dtype);
    const start = b.byteOffset + offset * width;
    const bytes = length * width;
    const out = allocStorage(dtype, length);
    if (bytes === 0) return out;
    const alignedStart = start - (start % 4);
    const alignedEnd = Math.ceil((start + bytes) / 4) * 4;
    const staging = this.#rt.device.createBuffer({
      size: alignedEnd - alignedStart,
      usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST,
    });
    this.#rt.encoder().copyBufferToBuffer(b.gpu, alignedStart, staging, 0, alignedEnd - alignedStart);
    this.#rt.flush();
    await staging.mapAsync(MAP_MODE_READ);
    this.#rt.check();
    const mapped = new Uint8Array(staging.getMappedRange());
    new Uint8Array(out.buffer, out.byteOffset, bytes).set(
      mapped.subarray(start - alignedStart, start - alignedStart + bytes),
    );
    staging.unmap();
    staging.destroy();
    return out;
  }

  subview(buffer: DeviceBuffer, dtype: DType, offset: number, length: number): DeviceBuffer {
    const b = gpuBuffer(buffer);
    const width = itemSize(dtype);
    return new GpuBuffer(
      b.gpu,
      b.byteOffset + offset * width,
      length * width,
      false,
      widthOf(dtype),
      b.parent ?? b,
    ) as unknown as DeviceBuffer;
  }

  free(buffer: DeviceBuffer, _dtype: DType): void {
    const b = buffer as unknown as GpuBuffer;
    if (!(b instanceof GpuBuffer)) throw new DeviceError("webgpu: free() got a buffer of another device");
    if (!b.owner) return;
    if (b.released) throw new DeviceError("webgpu: a buffer was freed twice");
    b.released = true;
    this.#finalizer.unregister(b);
    this.#recycle(b.gpu);
  }
}
