import type { GradNode } from "./autograd.js";
import { bfloat16ArrayToFloat32, type DType, halfArrayToFloat32, type StorageArray } from "./dtype.js";
import { ArgumentError } from "./errors.js";
import { contiguousStrides, formatShape, type Shape, sizeOf } from "./shape.js";

/** Where a tensor's data lives. Only "cpu" exists today; GPU backends add their own. */
export type Device = "cpu";

/** The buffer behind one or more tensors (views share it). */
export interface Storage {
  readonly device: Device;
  readonly data: StorageArray;
}

let nextId = 1;

/**
 * An n-dimensional array: a view (shape, strides, offset) into a storage buffer, plus autograd state.
 * Operations (`add`, `matmul`, `reshape`, ...) are installed as methods by the ops layer (`src/ops/methods.ts`);
 * this class holds the data structure only.
 */
export class Tensor {
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

  constructor(storage: Storage, shape: Shape, dtype: DType, strides?: Shape, offset = 0) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.dtype = dtype;
  }

  /** Wraps a typed array (not copied) as a contiguous tensor. */
  static fromStorage(data: StorageArray, shape: Shape, dtype: DType): Tensor {
    if (data.length !== sizeOf(shape)) {
      throw new ArgumentError(
        `data has ${data.length} elements but shape ${formatShape(shape)} needs ${sizeOf(shape)}`,
      );
    }
    return new Tensor({ device: "cpu", data }, shape, dtype);
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
   * The elements in row-major order as a typed array of the storage type (float16/bfloat16 as raw bits).
   * For a contiguous tensor this is a view of the storage (writes go through); otherwise a fresh copy.
   */
  dataSync(): StorageArray {
    const n = this.size;
    const data = this.storage.data;
    if (this.isContiguous()) {
      if (this.offset === 0 && data.length === n) return data;
      return data.subarray(this.offset, this.offset + n) as StorageArray;
    }
    return gatherStrided(data, this.offset, this.shape, this.strides);
  }

  /** Async form of {@link dataSync}; works for every device. */
  async data(): Promise<StorageArray> {
    return this.dataSync();
  }

  /** The elements as float32 numbers in row-major order (widening half types; always a fresh copy or view). */
  toFloat32Array(): Float32Array {
    const raw = this.dataSync();
    if (this.dtype === "float32") return raw as Float32Array;
    if (this.dtype === "float16") return halfArrayToFloat32(raw as Uint16Array);
    if (this.dtype === "bfloat16") return bfloat16ArrayToFloat32(raw as Uint16Array);
    const out = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = Number(raw[i]);
    return out;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1)
      throw new ArgumentError(`item() needs a tensor with one element, got shape ${formatShape(this.shape)}`);
    return this.toFloat32Array()[0]!;
  }

  /** Nested arrays of numbers (PyTorch's `tolist()`). */
  tolist(): unknown {
    const flat = this.toFloat32Array();
    const build = (dim: number, start: number): unknown => {
      if (dim === this.shape.length) return flat[start];
      const step = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, start + i * step));
    };
    return build(0, 0);
  }

  toString(): string {
    const grad = this.requiresGrad ? ", requiresGrad" : "";
    const preview = this.size <= 8 ? ` ${JSON.stringify(Array.from(this.toFloat32Array()))}` : "";
    return `Tensor(${formatShape(this.shape)}, ${this.dtype}${grad})${preview}`;
  }
}

/** Copies a strided view into a new contiguous array of the same storage type (any dtype). */
export function gatherStrided(
  data: StorageArray,
  offset: number,
  shape: Shape,
  strides: Shape,
): StorageArray {
  const n = sizeOf(shape);
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
