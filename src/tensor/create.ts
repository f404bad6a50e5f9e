import { type Device, memoryOf } from "./device.js";
import { allocStorage, convertStorage, type DType, isFloating, type StorageArray } from "./dtype.js";
import { ArgumentError } from "./errors.js";
import { defaultGenerator, type Generator } from "./generator.js";
import { checkShape, formatShape, type Shape, sizeOf } from "./shape.js";
import { Tensor } from "./tensor.js";

/** Options shared by the creation functions. */
export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
  /** Where the tensor lives (default "cpu"): the values are made on the CPU and uploaded there. */
  device?: Device;
}

/** Options of the random creation functions. */
export interface RandomOptions extends CreateOptions {
  /** Source of randomness; without it, the process-wide default generator (seeded randomly at start-up). */
  generator?: Generator;
}

type NestedNumbers = number | boolean | bigint | readonly NestedNumbers[];

function finish(t: Tensor, opts?: CreateOptions): Tensor {
  const device = opts?.device ?? "cpu";
  const placed =
    device === "cpu"
      ? t
      : Tensor.fromBuffer(device, memoryOf(device).upload(t.dataSync(), t.dtype), t.size, t.shape, t.dtype);
  if (opts?.requiresGrad) placed.requiresGrad_(true);
  return placed;
}

/**
 * Makes a tensor from numbers: a flat array or typed array with an explicit `shape`, or nested arrays
 * (shape inferred). Typed arrays of the storage type are used as-is, not copied.
 */
export function tensor(
  data: NestedNumbers | ArrayLike<number> | BigInt64Array,
  shape?: Shape,
  opts: CreateOptions = {},
): Tensor {
  const dtype = opts.dtype ?? inferDType(data);
  let flat: ArrayLike<number | bigint | boolean>;
  let inferred: number[];
  if (ArrayBuffer.isView(data)) {
    flat = data as ArrayLike<number | bigint>;
    inferred = [flat.length];
  } else {
    inferred = nestedShape(data as NestedNumbers);
    flat = (Array.isArray(data) ? (data as unknown[]).flat(Number.POSITIVE_INFINITY) : [data]) as (
      | number
      | bigint
      | boolean
    )[];
  }
  if (!ArrayBuffer.isView(data)) checkValues(flat, data);
  const target = shape ? [...shape] : inferred;
  checkShape(target);
  if (sizeOf(target) !== flat.length) {
    throw new ArgumentError(`tensor(): ${flat.length} values do not fill shape ${formatShape(target)}`);
  }
  const storage = toStorage(flat, dtype);
  return finish(Tensor.fromStorage(storage, target, dtype), opts);
}

/** Throws unless every value is a number, bigint or boolean (strings, objects and undefined would become NaN). */
function checkValues(flat: ArrayLike<unknown>, data: unknown): void {
  if (data === undefined || data === null) {
    throw new ArgumentError(`tensor(): expected numbers or nested arrays of numbers, got ${data}`);
  }
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    const t = typeof v;
    if (t !== "number" && t !== "bigint" && t !== "boolean") {
      const shown =
        t === "string" ? JSON.stringify(v) : t === "object" ? (v === null ? "null" : "an object") : t;
      throw new ArgumentError(
        `tensor(): expected numbers, booleans or bigints, found ${shown} at flat index ${i}`,
      );
    }
  }
}

function inferDType(data: unknown): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Uint8Array) return "uint8";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Int16Array) return "int16";
  return "float32";
}

function nestedShape(data: NestedNumbers): number[] {
  const shape: number[] = [];
  let cur: NestedNumbers = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0] as NestedNumbers;
  }
  checkRectangular(data, shape, 0);
  return shape;
}

/** Throws unless every nested array at depth d has shape[d] elements (a ragged list has no shape). */
function checkRectangular(data: unknown, shape: readonly number[], depth: number): void {
  if (depth === shape.length) {
    if (Array.isArray(data))
      throw new ArgumentError(
        `tensor(): ragged nested arrays (an array where a number was expected at depth ${depth})`,
      );
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new ArgumentError(
      `tensor(): ragged nested arrays: expected ${shape[depth]} elements at depth ${depth}, found ${Array.isArray(data) ? data.length : "a number"}`,
    );
  }
  for (const item of data) checkRectangular(item, shape, depth + 1);
}

function toStorage(flat: ArrayLike<number | bigint | boolean>, dtype: DType): StorageArray {
  if (ArrayBuffer.isView(flat)) {
    const fromType = inferDType(flat);
    const sameLayout =
      (dtype === fromType && !(flat instanceof Uint8Array && dtype === "bool")) ||
      (dtype === "bool" && flat instanceof Uint8Array);
    if (sameLayout) return flat as unknown as StorageArray;
    if (flat instanceof Float64Array || flat instanceof Uint16Array || flat instanceof Uint32Array) {
      return convertStorage(Float32Array.from(flat as ArrayLike<number>), "float32", dtype);
    }
    return convertStorage(flat as unknown as StorageArray, fromType, dtype);
  }
  const n = flat.length;
  if (dtype === "int64") {
    const out = new BigInt64Array(n);
    for (let i = 0; i < n; i++) out[i] = BigInt(flat[i] as number | bigint);
    return out;
  }
  const f32 = new Float32Array(n);
  for (let i = 0; i < n; i++) f32[i] = Number(flat[i]);
  return dtype === "float32" ? f32 : convertStorage(f32, "float32", dtype);
}

/** A tensor of `shape` filled with `value`. */
export function full(shape: Shape, value: number, opts: CreateOptions = {}): Tensor {
  checkShape(shape);
  const dtype = opts.dtype ?? "float32";
  const n = sizeOf(shape);
  let storage: StorageArray;
  if (dtype === "float32") storage = new Float32Array(n).fill(value);
  else if (value === 0) storage = allocStorage(dtype, n);
  else storage = convertStorage(new Float32Array(n).fill(value), "float32", dtype);
  return finish(Tensor.fromStorage(storage, shape, dtype), opts);
}

export function zeros(shape: Shape, opts: CreateOptions = {}): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: Shape, opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export function zerosLike(t: Tensor, opts: CreateOptions = {}): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, device: t.device, ...opts });
}

export function onesLike(t: Tensor, opts: CreateOptions = {}): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, device: t.device, ...opts });
}

/** Values `start, start + step, ...` below `end` (PyTorch's `arange`). */
export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  if (step === 0) throw new ArgumentError("arange(): step must be non-zero");
  const n = Math.max(0, Math.ceil((end - start) / step));
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  return tensor(values, [n], { dtype: opts.dtype ?? "float32", ...opts });
}

/** `steps` evenly spaced values from `start` to `end` inclusive (PyTorch's `linspace`). */
export function linspace(start: number, end: number, steps: number, opts: CreateOptions = {}): Tensor {
  if (!Number.isInteger(steps) || steps < 0)
    throw new ArgumentError(`linspace(): steps must be >= 0, got ${steps}`);
  const values = new Float64Array(steps);
  const step = steps > 1 ? (end - start) / (steps - 1) : 0;
  // PyTorch fills the first half from start and the second half from end, so both ends are exact.
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) values[i] = i < half ? start + step * i : end - step * (steps - 1 - i);
  return tensor(values, [steps], opts);
}

/** Standard normal samples, identical to `torch.randn(shape, generator=g)` on CPU for the same seed. */
export function randn(shape: Shape, opts: RandomOptions = {}): Tensor {
  checkShape(shape);
  const data = (opts.generator ?? defaultGenerator).normal(sizeOf(shape));
  return finish(castFloat(Tensor.fromStorage(data, shape, "float32"), opts.dtype), opts);
}

/** Uniform samples in [0, 1), identical to `torch.rand(shape, generator=g)` on CPU for the same seed. */
export function rand(shape: Shape, opts: RandomOptions = {}): Tensor {
  checkShape(shape);
  const data = (opts.generator ?? defaultGenerator).uniform(sizeOf(shape));
  return finish(castFloat(Tensor.fromStorage(data, shape, "float32"), opts.dtype), opts);
}

export function randnLike(t: Tensor, opts: RandomOptions = {}): Tensor {
  return randn(t.shape, { device: t.device, ...opts });
}

function castFloat(t: Tensor, dtype: DType | undefined): Tensor {
  if (!dtype || dtype === "float32") return t;
  if (!isFloating(dtype))
    throw new ArgumentError(`random tensors must be floating point, got dtype ${dtype}`);
  return Tensor.fromStorage(convertStorage(t.dataSync(), "float32", dtype), t.shape, dtype);
}
