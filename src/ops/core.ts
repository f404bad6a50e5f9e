import { backendFor, type DeviceBackend, type DeviceBuffers, type StridedF32 } from "../backend/index.js";
import { type GradNode, isGradEnabled } from "../tensor/autograd.js";
import { type Device, type DeviceBuffer, DeviceError } from "../tensor/device.js";
import { type DType, isFloating } from "../tensor/dtype.js";
import { DTypeError } from "../tensor/errors.js";
import { contiguousStrides, type Shape, shapesEqual, sizeOf } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";

/** A float32 strided view of a tensor on its device, as kernels read it. */
export type StridedView = StridedF32<DeviceBuffers>;

/** A 0-d CPU tensor: the one kind of tensor that may join an op on another device (it is uploaded). */
function isCpuScalar(t: Tensor): boolean {
  return t.device === "cpu" && t.shape.length === 0;
}

/**
 * The device an op on `tensors` runs on: the one they share. A 0-d CPU tensor goes along with any device (as in
 * PyTorch); any other mix is a DeviceError naming the op and both devices.
 */
export function deviceOf(op: string, tensors: readonly (Tensor | null | undefined)[]): Device {
  let device: Device | null = null;
  let scalarOnly = true;
  for (const t of tensors) {
    if (!t) continue;
    if (isCpuScalar(t)) {
      device ??= "cpu";
      continue;
    }
    if (scalarOnly) {
      device = t.device;
      scalarOnly = false;
    } else if (t.device !== device) {
      throw new DeviceError(
        `${op}: expected all tensors on the same device, found ${device} and ${t.device} (move one with .to(device))`,
      );
    }
  }
  return device ?? "cpu";
}

/** The backend of the device an op on `tensors` runs on (see {@link deviceOf}). */
export function backendOf(op: string, ...tensors: readonly (Tensor | null | undefined)[]): DeviceBackend {
  return backendFor(deviceOf(op, tensors));
}

/** `t` on the backend's device: itself, or a 0-d CPU tensor uploaded there. */
export function onDevice(be: DeviceBackend, t: Tensor): Tensor {
  if (t.device === be.device) return t;
  if (!isCpuScalar(t)) {
    throw new DeviceError(`expected a tensor on device ${be.device}, found one on ${t.device}`);
  }
  const buffer = be.memory.upload(t.dataSync(), t.dtype);
  return Tensor.fromBuffer(be.device, buffer, 1, [], t.dtype);
}

/** A fresh float32 tensor on the backend's device over `data` (not copied). */
export function fromF32(be: DeviceBackend, data: DeviceBuffer, shape: Shape): Tensor {
  return Tensor.fromBuffer(be.device, data, sizeOf(shape), shape, "float32");
}

/** A fresh tensor of any dtype on the backend's device over `data` (not copied). */
export function fromBuffer(be: DeviceBackend, data: DeviceBuffer, shape: Shape, dtype: DType): Tensor {
  return Tensor.fromBuffer(be.device, data, sizeOf(shape), shape, dtype);
}

/**
 * An output buffer for a kernel that writes every element: from the backend's pool where it has one (large
 * arrays are recycled instead of zero-filled fresh pages), else a fresh one. Contents are unspecified.
 */
export function allocOutput(be: DeviceBackend, size: number): DeviceBuffer {
  return be.allocate ? be.allocate(size) : be.memory.alloc("float32", size);
}

/** A zero-filled float32 buffer (for kernels that accumulate or write only some elements). */
export function allocZeros(be: DeviceBackend, size: number, dtype: DType = "float32"): DeviceBuffer {
  return be.memory.alloc(dtype, size);
}

/** `t` converted to a contiguous buffer of `dtype` on the backend's device (the cast kernel). */
export function castBuffer(be: DeviceBackend, t: Tensor, dtype: DType): DeviceBuffer {
  const src = onDevice(be, t);
  const out = dtype === "float32" ? allocOutput(be, t.size) : be.memory.alloc(dtype, t.size);
  be.cast(
    { data: src.storage.buffer, offset: src.offset, strides: src.strides },
    t.dtype,
    out,
    dtype,
    t.shape,
  );
  return out;
}

/**
 * A float32 strided view of `t` for kernels: float32 tensors are passed as they are (no copy, any strides);
 * other dtypes are converted (contiguously) by the cast kernel.
 */
export function stridedF32(be: DeviceBackend, t: Tensor): StridedView {
  const src = onDevice(be, t);
  if (src.dtype === "float32") return { data: src.storage.buffer, offset: src.offset, strides: src.strides };
  return { data: castBuffer(be, src, "float32"), offset: 0, strides: contiguousStrides(t.shape) };
}

/** Strides of a view of `shape` with `strides` as seen from an output of `outShape` it broadcasts to (0 on broadcast dims). */
export function broadcastStrides(shape: Shape, strides: Shape, outShape: Shape): number[] {
  const nd = outShape.length;
  const out = new Array<number>(nd);
  for (let i = 0; i < nd; i++) {
    const j = i - (nd - shape.length);
    out[i] = j < 0 || shape[j] === 1 ? 0 : strides[j]!;
  }
  return out;
}

/** A float32 view of `t` as seen from an output of `shape` it broadcasts to (0 strides on broadcast dims). */
export function broadcastStrided(be: DeviceBackend, t: Tensor, shape: Shape): StridedView {
  const base = stridedF32(be, t);
  return { data: base.data, offset: base.offset, strides: broadcastStrides(t.shape, base.strides, shape) };
}

/**
 * The elements of `t` as a contiguous float32 buffer of exactly `t.size` elements on the backend's device: the
 * storage itself (or a view of it) when `t` is contiguous float32, else a copy.
 */
export function contiguousF32(be: DeviceBackend, t: Tensor): DeviceBuffer {
  const src = onDevice(be, t);
  if (src.dtype !== "float32") return castBuffer(be, src, "float32");
  if (src.isContiguous()) {
    if (src.offset === 0 && src.storage.length === src.size) return src.storage.buffer;
    const view = be.memory.subview(src.storage.buffer, "float32", src.offset, src.size);
    if (view) return view;
  }
  // a strided float32 view (a permute, an expand) or an offset the device cannot alias: the copy kernel gathers it
  const out = allocOutput(be, src.size);
  be.copy(
    { data: src.storage.buffer, offset: src.offset, strides: src.strides },
    { data: out, offset: 0, strides: contiguousStrides(src.shape) },
    src.shape,
  );
  return out;
}

/**
 * The buffer of a contiguous tensor's own elements (writes go through to `t`), for kernels that update in place
 * (optimizers, EMA, in-place adds). Null when `t` is not contiguous or the device cannot alias its offset.
 */
export function ownElements(be: DeviceBackend, t: Tensor): DeviceBuffer | null {
  if (t.device !== be.device || !t.isContiguous()) return null;
  if (t.offset === 0 && t.storage.length === t.size) return t.storage.buffer;
  return be.memory.subview(t.storage.buffer, t.dtype, t.offset, t.size);
}

/** Throws unless `t` has a floating dtype (the ops that compute on values need one). */
export function requireFloat(t: Tensor, op: string): void {
  if (!isFloating(t.dtype)) {
    throw new DTypeError(`${op} needs a floating-point tensor, got ${t.dtype} (convert with .float())`);
  }
}

/** The dtype of a float result: float32, since compute happens in float32. */
export const COMPUTE_DTYPE: DType = "float32";

/**
 * Records `out` as produced by an op with `inputs`, when grad mode is on and any input requires grad.
 * `backward(g)` returns one gradient (or null) per input, in order. Returns `out`.
 */
export function record(
  out: Tensor,
  name: string,
  inputs: readonly (Tensor | null)[],
  backward: GradNode["backward"],
): Tensor {
  if (!isGradEnabled()) return out;
  if (!inputs.some((t) => t?.requiresGrad)) return out;
  out.requiresGrad = true;
  out.gradFn = { name, inputs, backward };
  return out;
}

/** Whether a gradient should be computed for this input. */
export function needsGrad(t: Tensor | null | undefined): boolean {
  return !!t && t.requiresGrad;
}

/** A residual as a kernel reads it: its buffer and the offset of its first element (GemmParams' fields). */
export interface FusedResidual {
  readonly residual: DeviceBuffer;
  readonly residualOffset: number;
}

/**
 * A residual a kernel itself can add to its output of shape `shape` (the GEMM's and the convolution's
 * `residual`): a backend that fuses residuals, no gradients to record for it or the kernel's operands, float32,
 * contiguous, on the backend's device and exactly that shape (no broadcasting). Null: add it separately.
 */
export function fusableResidual(
  be: DeviceBackend,
  residual: Tensor | null | undefined,
  shape: Shape,
  operands: readonly (Tensor | null | undefined)[],
): FusedResidual | null {
  if (!residual || be.fusesResidual !== true || residual.device !== be.device) return null;
  if (isGradEnabled() && (residual.requiresGrad || operands.some((t) => t?.requiresGrad))) return null;
  if (residual.dtype !== "float32" || !residual.isContiguous() || !shapesEqual(residual.shape, shape))
    return null;
  return { residual: residual.storage.buffer, residualOffset: residual.offset };
}
