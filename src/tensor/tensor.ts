import type { GradNode } from "./autograd.js";
import { type Device, DeviceError, memoryOf } from "./device.js";
import { bfloat16ArrayToFloat32, type DType, halfArrayToFloat32, type StorageArray } from "./dtype.js";
import { ArgumentError } from "./errors.js";
import { TENSOR_BRAND, trackTensor } from "./scope.js";
import { contiguousStrides, formatShape, type Shape, sizeOf } from "./shape.js";
import { Storage } from "./storage.js";

export type { Device } from "./device.js";
export { Storage } from "./storage.js";

let nextId = 1;

/**
 * An n-dimensional array: a view (shape, strides, offset) into a storage buffer on a device, plus autograd state.
 * Operations (`add`, `matmul`, `reshape`, ...) are installed as methods by the ops layer (`src/ops/methods.ts`);
 * this class holds the data structure only.
 */
export class Tensor {
  readonly [TENSOR_BRAND] = true as const;
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  readonly storage: Storage;
  /** Whether gradients flow to this tensor (set on leaves with `requiresGrad_()`). */
  requiresGrad = false;
  /** Accumulated gradient after `backward()` (leaves, and non-leaves that called `retainGrad()`). */
  grad: Tensor | null = null;
  /** The recorded operation that produced this tensor, or null for leaves. */
  gradFn: GradNode | null = null;
  /** Set by `retainGrad()`: keep `.grad` on a non-leaf. */
  retainsGrad = false;
  #disposed = false;

  constructor(storage: Storage, shape: Shape, dtype: DType, strides?: Shape, offset = 0) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.dtype = dtype;
    storage.retain();
    trackTensor(this);
  }

  /** Wraps a typed array (not copied) as a contiguous CPU tensor. */
  static fromStorage(data: StorageArray, shape: Shape, dtype: DType): Tensor {
    if (data.length !== sizeOf(shape)) {
      throw new ArgumentError(
        `data has ${data.length} elements but shape ${formatShape(shape)} needs ${sizeOf(shape)}`,
      );
    }
    return Tensor.fromBuffer("cpu", memoryOf("cpu").upload(data, dtype), data.length, shape, dtype);
  }

  /** Wraps a buffer of `device` holding `length` elements as a contiguous tensor of `shape` (not copied). */
  static fromBuffer(
    device: Device,
    buffer: import("./device.js").DeviceBuffer,
    length: number,
    shape: Shape,
    dtype: DType,
  ): Tensor {
    return new Tensor(new Storage(device, dtype, buffer, length), shape, dtype);
  }

  get device(): Device {
    return this.storage.device;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }

  /** Number of elements (PyTorch's name). */
  numel(): number {
    return this.size;
  }

  /** True when the elements are laid out row-major without gaps (the offset may be non-zero). */
  isContiguous(): boolean {
    let expected = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      const d = this.shape[i]!;
      if (d !== 1 && this.strides[i] !== expected) return false;
      expected *= d;
    }
    return true;
  }

  /** True for tensors created by the user (not the output of a recorded operation). */
  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  /** Marks this leaf as needing gradients. Returns this. */
  requiresGrad_(requires = true): this {
    if (!this.isLeaf && !requires)
      throw new ArgumentError("requiresGrad_(false) is only allowed on leaf tensors");
    this.requiresGrad = requires;
    return this;
  }

  /** Keeps `.grad` for this non-leaf tensor after backward(). */
  retainGrad(): this {
    this.retainsGrad = true;
    return this;
  }

  /**
   * Frees this tensor's memory now (once no other view uses it) instead of when it is garbage-collected. Using
   * the tensor afterwards is an error. Disposing twice does nothing.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.storage.releaseRef();
  }

  /** @internal whether memory scopes free this tensor (its device's memory is not garbage-collected). */
  get scoped(): boolean {
    return memoryOf(this.device).garbageCollected !== true;
  }

  /** Whether {@link dispose} was called (or a scope disposed it). */
  get isDisposed(): boolean {
    return this.#disposed || this.storage.disposed;
  }

  /** The span of storage elements this view touches: [first, first + length). */
  #span(): { first: number; length: number } {
    if (this.size === 0) return { first: this.offset, length: 0 };
    let first = this.offset;
    let last = this.offset;
    for (let i = 0; i < this.shape.length; i++) {
      const reach = (this.shape[i]! - 1) * this.strides[i]!;
      if (reach < 0) first += reach;
      else last += reach;
    }
    return { first, length: last - first + 1 };
  }

  /** Lays the elements of a read span out row-major (a view when already contiguous). */
  #fromSpan(span: StorageArray, first: number): StorageArray {
    if (this.isContiguous()) return span;
    return gatherStrided(span, this.offset - first, this.shape, this.strides);
  }

  /**
   * The elements in row-major order as a typed array of the storage type (float16/bfloat16 as raw bits), read
   * synchronously: CPU tensors only (a contiguous one gives a view of its storage: writes go through). Other
   * devices throw a DeviceError that says to `await t.data()`.
   */
  dataSync(): StorageArray {
    const memory = memoryOf(this.device);
    if (!memory.readSync) {
      throw new DeviceError(
        `a tensor on device "${this.device}" cannot be read synchronously; use \`await t.data()\` ` +
          "(or itemAsync() / tolistAsync() / toFloat32ArrayAsync())",
      );
    }
    const { first, length } = this.#span();
    return this.#fromSpan(memory.readSync(this.storage.buffer, this.dtype, first, length), first);
  }

  /** The elements in row-major order, read from any device (a copy, except contiguous CPU tensors). */
  async data(): Promise<StorageArray> {
    const memory = memoryOf(this.device);
    const { first, length } = this.#span();
    return this.#fromSpan(await memory.read(this.storage.buffer, this.dtype, first, length), first);
  }

  /** The elements as float32 numbers in row-major order (widening half types; always a fresh copy or view). */
  toFloat32Array(): Float32Array {
    return widen(this.dataSync(), this.dtype);
  }

  /** Async form of {@link toFloat32Array}; works for every device. */
  async toFloat32ArrayAsync(): Promise<Float32Array> {
    return widen(await this.data(), this.dtype);
  }

  /** The single value of a one-element tensor (CPU tensors; see {@link itemAsync}). */
  item(): number {
    this.#checkOneElement();
    return this.toFloat32Array()[0]!;
  }

  /** The single value of a one-element tensor on any device. */
  async itemAsync(): Promise<number> {
    this.#checkOneElement();
    return (await this.toFloat32ArrayAsync())[0]!;
  }

  #checkOneElement(): void {
    if (this.size !== 1)
      throw new ArgumentError(`item() needs a tensor with one element, got shape ${formatShape(this.shape)}`);
  }

  /** Nested arrays of numbers (PyTorch's `tolist()`; CPU tensors, see {@link tolistAsync}). */
  tolist(): unknown {
    return nest(this.toFloat32Array(), this.shape);
  }

  /** Nested arrays of numbers, from any device. */
  async tolistAsync(): Promise<unknown> {
    return nest(await this.toFloat32ArrayAsync(), this.shape);
  }

  toString(): string {
    const grad = this.requiresGrad ? ", requiresGrad" : "";
    const device = this.device === "cpu" ? "" : `, device ${this.device}`;
    const readable = !this.isDisposed && memoryOf(this.device).readSync !== undefined;
    const preview = readable && this.size <= 8 ? ` ${JSON.stringify(Array.from(this.toFloat32Array()))}` : "";
    return `Tensor(${formatShape(this.shape)}, ${this.dtype}${device}${grad})${preview}`;
  }
}

function widen(raw: StorageArray, dtype: DType): Float32Array {
  if (dtype === "float32") return raw as Float32Array;
  if (dtype === "float16") return halfArrayToFloat32(raw as Uint16Array);
  if (dtype === "bfloat16") return bfloat16ArrayToFloat32(raw as Uint16Array);
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = Number(raw[i]);
  return out;
}

function nest(flat: Float32Array, shape: readonly number[]): unknown {
  const build = (dim: number, start: number): unknown => {
    if (dim === shape.length) return flat[start];
    const step = sizeOf(shape.slice(dim + 1));
    return Array.from({ length: shape[dim]! }, (_, i) => build(dim + 1, start + i * step));
  };
  return build(0, 0);
}

/** True when `strides` walk `shape` in row-major order with no gaps (dims of size 1 ignored). */
export function isRowMajor(shape: Shape, strides: Shape): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] === 1) continue;
    if (strides[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/** Copies a strided view into a new contiguous array of the same storage type (any dtype). */
export function gatherStrided(
  data: StorageArray,
  offset: number,
  shape: Shape,
  strides: Shape,
): StorageArray {
  const n = sizeOf(shape);
  // row-major already (dims of size 1 may have any stride): one block copy
  if (n > 0 && isRowMajor(shape, strides)) return data.slice(offset, offset + n) as StorageArray;
  const out = new (data.constructor as new (n: number) => StorageArray)(n);
  const nd = shape.length;
  if (n === 0) return out;
  if (nd === 0) {
    out[0] = data[offset]!;
    return out;
  }
  const idx = new Array<number>(nd).fill(0);
  const last = nd - 1;
  const lastDim = shape[last]!;
  const lastStride = strides[last]!;
  let base = offset;
  let o = 0;
  while (o < n) {
    for (let j = 0, p = base; j < lastDim; j++, p += lastStride) out[o++] = data[p]!;
    // advance the outer index (odometer)
    let d = last - 1;
    while (d >= 0) {
      idx[d]!++;
      base += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      base -= strides[d]! * shape[d]!;
      idx[d] = 0;
      d--;
    }
    if (d < 0) break;
  }
  return out;
}
