import { backendFor } from "../backend/index.js";
import { isGradEnabled } from "../tensor/autograd.js";
import { type Device, DeviceError, isDevice, memoryOf } from "../tensor/device.js";
import { DTYPES, type DType, type StorageArray } from "../tensor/dtype.js";
import { ArgumentError, ShapeError } from "../tensor/errors.js";
import { contiguousStrides, formatShape, inferShape, normalizeDim, type Shape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { allocZeros, backendOf, castBuffer, fromBuffer, record } from "./core.js";

function makeView(t: Tensor, shape: Shape, strides: Shape, offset: number): Tensor {
  return new Tensor(t.storage, shape, t.dtype, strides, offset);
}

/** A contiguous copy of `t` (or `t` itself when already contiguous). */
export function contiguous(t: Tensor): Tensor {
  if (t.isContiguous()) return t;
  return clone(t);
}

/** A contiguous copy of `t` that does not share storage. Gradient flows through. */
export function clone(t: Tensor): Tensor {
  const be = backendOf("clone", t);
  const data = be.memory.alloc(t.dtype, t.size);
  be.copy(
    { data: t.storage.buffer, offset: t.offset, strides: t.strides },
    { data, offset: 0, strides: contiguousStrides(t.shape) },
    t.shape,
  );
  const out = fromBuffer(be, data, t.shape, t.dtype);
  return record(out, "clone", [t], (g) => [g]);
}

/**
 * Strides that show `shape`'s elements in row-major order as `newShape`, or null when the view cannot (the merged
 * dims are not evenly strided): each run of dims of `shape` that are contiguous with one another is split anew
 * (PyTorch's view rule).
 */
export function viewStrides(shape: Shape, strides: Shape, newShape: Shape): number[] | null {
  const out = new Array<number>(newShape.length).fill(0);
  if (shape.length === 0 || shape.includes(0)) return contiguousStrides(newShape);
  let viewD = newShape.length - 1;
  let base = strides[shape.length - 1]!;
  let tensorNumel = 1;
  let viewNumel = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    tensorNumel *= shape[d]!;
    // the end of a run: dim d-1 does not continue it
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== tensorNumel * base)) {
      while (viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] === 1)) {
        out[viewD] = viewNumel * base;
        viewNumel *= newShape[viewD]!;
        viewD--;
      }
      if (viewNumel !== tensorNumel) return null;
      if (d > 0) {
        base = strides[d - 1]!;
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  return viewD === -1 ? out : null;
}

/**
 * The same elements in a new shape (one dim may be -1): a view when the strides allow it (always for a contiguous
 * `t`; e.g. merging the spatial dims of a channels-last view of an image), else a contiguous copy.
 */
export function reshape(t: Tensor, shape: Shape): Tensor {
  const target = inferShape(shape, t.size);
  const strides = t.isContiguous() ? contiguousStrides(target) : viewStrides(t.shape, t.strides, target);
  const src = strides ? t : contiguous(t);
  const out = makeView(src, target, strides ?? contiguousStrides(target), src.offset);
  return record(out, "reshape", [src], (g) => [reshape(g, src.shape)]);
}

/** Reorders dims: `out.shape[i] = t.shape[dims[i]]`. Always a view. */
export function permute(t: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== t.ndim) {
    throw new ShapeError(`permute: got ${dims.length} dims for a tensor with ${t.ndim} dimension(s)`);
  }
  const norm = dims.map((d) => normalizeDim(d, t.ndim));
  if (new Set(norm).size !== norm.length)
    throw new ShapeError(`permute: repeated dim in [${dims.join(", ")}]`);
  const out = makeView(
    t,
    norm.map((d) => t.shape[d]!),
    norm.map((d) => t.strides[d]!),
    t.offset,
  );
  const inverse = new Array<number>(norm.length);
  norm.forEach((d, i) => {
    inverse[d] = i;
  });
  return record(out, "permute", [t], (g) => [permute(g, inverse)]);
}

/** Swaps two dims (a view). */
export function transpose(t: Tensor, dim0: number, dim1: number): Tensor {
  const a = normalizeDim(dim0, t.ndim);
  const b = normalizeDim(dim1, t.ndim);
  const dims = Array.from({ length: t.ndim }, (_, i) => i);
  dims[a] = b;
  dims[b] = a;
  return permute(t, dims);
}

/** Elements start, start+step, ... below end along `dim` (negative start/end count from the end). A view. */
export function slice(t: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  const d = normalizeDim(dim, t.ndim);
  const size = t.shape[d]!;
  if (!Number.isInteger(step) || step < 1)
    throw new ArgumentError(`slice: step must be a positive integer, got ${step}`);
  const clampIndex = (i: number) => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  const s = clampIndex(start);
  const e = Math.max(clampIndex(end ?? size), s);
  const len = Math.ceil((e - s) / step);
  const shape = [...t.shape];
  shape[d] = len;
  const strides = [...t.strides];
  strides[d] = t.strides[d]! * step;
  const out = makeView(t, shape, strides, t.offset + s * t.strides[d]!);
  return record(out, "slice", [t], (g) => {
    const be = backendOf("slice backward", g);
    const gf = g.dtype === "float32" ? g : to(g, "float32");
    const data = allocZeros(be, t.size);
    const full = contiguousStrides(t.shape);
    const dstStrides = [...full];
    dstStrides[d] = full[d]! * step;
    be.copy(
      { data: gf.storage.buffer, offset: gf.offset, strides: gf.strides },
      { data, offset: s * full[d]!, strides: dstStrides },
      g.shape,
    );
    return [fromBuffer(be, data, t.shape, "float32")];
  });
}

/** `length` elements from `start` along `dim` (PyTorch's narrow). */
export function narrow(t: Tensor, dim: number, start: number, length: number): Tensor {
  return slice(t, dim, start, start + length);
}

/** The entry `index` along `dim`, removing that dim. A view. */
export function select(t: Tensor, dim: number, index: number): Tensor {
  const d = normalizeDim(dim, t.ndim);
  const size = t.shape[d]!;
  const i = index < 0 ? index + size : index;
  if (i < 0 || i >= size)
    throw new ShapeError(`select: index ${index} out of range for dim ${dim} of size ${size}`);
  return squeeze(slice(t, d, i, i + 1), d);
}

/** Removes size-1 dims (all of them, or the given ones). A view. */
export function squeeze(t: Tensor, dims?: number | readonly number[]): Tensor {
  const list =
    dims === undefined
      ? t.shape.map((s, i) => (s === 1 ? i : -1)).filter((i) => i >= 0)
      : (typeof dims === "number" ? [dims] : dims)
          .map((d) => normalizeDim(d, t.ndim))
          .filter((d) => t.shape[d] === 1);
  const keep = t.shape.map((_, i) => !list.includes(i));
  const out = makeView(
    t,
    t.shape.filter((_, i) => keep[i]),
    t.strides.filter((_, i) => keep[i]),
    t.offset,
  );
  return record(out, "squeeze", [t], (g) => [reshape(g, t.shape)]);
}

/** Inserts a size-1 dim at `dim` (may be -1 for the end). A view. */
export function unsqueeze(t: Tensor, dim: number): Tensor {
  const d = normalizeDim(dim, t.ndim + 1);
  const shape = [...t.shape];
  const strides = [...t.strides];
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < t.ndim ? t.strides[d]! * t.shape[d]! : 1);
  const out = makeView(t, shape, strides, t.offset);
  return record(out, "unsqueeze", [t], (g) => [reshape(g, t.shape)]);
}

/** Merges dims startDim..endDim into one. */
export function flatten(t: Tensor, startDim = 0, endDim = -1): Tensor {
  if (t.ndim === 0) return reshape(t, [1]);
  const s = normalizeDim(startDim, t.ndim);
  const e = normalizeDim(endDim, t.ndim);
  if (e < s) throw new ShapeError(`flatten: endDim ${endDim} is before startDim ${startDim}`);
  const merged = t.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(t, [...t.shape.slice(0, s), merged, ...t.shape.slice(e + 1)]);
}

/** A tensor sharing storage but cut off from the autograd graph. */
export function detach(t: Tensor): Tensor {
  return makeView(t, t.shape, t.strides, t.offset);
}

/**
 * Converts to another dtype (a copy; float-to-float conversions pass gradients through) or moves to another
 * device (see {@link toDevice}).
 */
export function to(t: Tensor, dtypeOrDevice: DType | Device): Tensor {
  if ((DTYPES as readonly string[]).includes(dtypeOrDevice)) return castTo(t, dtypeOrDevice as DType);
  if (isDevice(dtypeOrDevice)) return toDevice(t, dtypeOrDevice);
  throw new ArgumentError(
    `to(): "${dtypeOrDevice}" is neither a dtype (${DTYPES.join(", ")}) nor a registered device`,
  );
}

function castTo(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  const be = backendOf("to", t);
  const out = fromBuffer(be, castBuffer(be, t, dtype), t.shape, dtype);
  if (dtype === "float32" || dtype === "float16" || dtype === "bfloat16") {
    return record(out, "to", [t], (g) => [castTo(g, "float32")]);
  }
  return out;
}

function checkMovable(t: Tensor): void {
  if (isGradEnabled() && t.requiresGrad && !t.isLeaf) {
    throw new DeviceError(
      "to(device): a tensor inside an autograd graph cannot move between devices; detach() it first",
    );
  }
}

function placed(t: Tensor, device: Device, data: StorageArray): Tensor {
  const be = backendFor(device);
  const out = fromBuffer(be, be.memory.upload(data, t.dtype), t.shape, t.dtype);
  if (t.requiresGrad) out.requiresGrad_(true);
  return out;
}

/**
 * A copy of `t` on `device` (or `t` itself when it is already there): a leaf that keeps `requiresGrad`. Reading
 * from a device whose memory the CPU cannot read synchronously needs {@link toDeviceAsync}.
 */
export function toDevice(t: Tensor, device: Device): Tensor {
  if (t.device === device) return t;
  checkMovable(t);
  if (!memoryOf(t.device).readSync) {
    throw new DeviceError(
      `toDevice: tensors on ${t.device} are read back asynchronously; use await toDeviceAsync(t, "${device}")`,
    );
  }
  // CPU data is uploaded as it is: copy it so the two tensors do not share memory
  const data = t.dataSync();
  return placed(t, device, t.device === "cpu" && device !== "cpu" ? data : data.slice());
}

/** A copy of `t` on `device`, reading it back asynchronously where its memory needs that. */
export async function toDeviceAsync(t: Tensor, device: Device): Promise<Tensor> {
  if (t.device === device) return t;
  checkMovable(t);
  const data = await t.data();
  return placed(t, device, data.slice());
}

/** Checks `t` has exactly `shape` (-1 matches anything), naming `what` in the error. */
export function expectShape(t: Tensor, shape: readonly number[], what: string): void {
  const ok = t.ndim === shape.length && shape.every((d, i) => d === -1 || d === t.shape[i]);
  if (!ok) {
    const want = `[${shape.map((d) => (d === -1 ? "*" : d)).join(", ")}]`;
    throw new ShapeError(`${what}: expected shape ${want}, got ${formatShape(t.shape)}`);
  }
}
