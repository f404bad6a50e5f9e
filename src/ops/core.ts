import { getBackend, type StridedF32 } from "../backend/index.js";
import { type GradNode, isGradEnabled } from "../tensor/autograd.js";
import { type DType, isFloating } from "../tensor/dtype.js";
import { DTypeError } from "../tensor/errors.js";
import { contiguousStrides, type Shape, shapesEqual } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";

/** A fresh float32 tensor over `data` (not copied). */
export function fromF32(data: Float32Array, shape: Shape): Tensor {
  return Tensor.fromStorage(data, shape, "float32");
}

/**
 * A float32 strided view of `t` for kernels: float32 tensors are passed as they are (no copy, any strides);
 * float16/bfloat16 are widened (contiguously); integer tensors are converted.
 */
export function stridedF32(t: Tensor): StridedF32 {
  if (t.dtype === "float32")
    return { data: t.storage.data as Float32Array, offset: t.offset, strides: t.strides };
  return { data: t.toFloat32Array(), offset: 0, strides: contiguousStrides(t.shape) };
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
export function broadcastStrided(t: Tensor, shape: Shape): StridedF32 {
  const base = stridedF32(t);
  return { data: base.data, offset: base.offset, strides: broadcastStrides(t.shape, base.strides, shape) };
}

/**
 * An output array for a kernel that writes every element: from the backend's pool where it has one (large
 * arrays are recycled instead of zero-filled fresh pages), else a new Float32Array. Contents are unspecified.
 */
export function allocOutput(size: number): Float32Array {
  const allocate = getBackend().allocate;
  return allocate ? allocate(size) : new Float32Array(size);
}

/** The elements of `t` as a contiguous Float32Array (a view when `t` is contiguous float32, else a copy). */
export function contiguousF32(t: Tensor): Float32Array {
  if (t.dtype === "float32" && t.isContiguous()) {
    const data = t.storage.data as Float32Array;
    return t.offset === 0 && data.length === t.size ? data : data.subarray(t.offset, t.offset + t.size);
  }
  if (t.dtype === "float32") {
    // a strided float32 view (a permute, an expand): the backend's copy kernel gathers it
    const out = allocOutput(t.size);
    getBackend().copy(
      { data: t.storage.data, offset: t.offset, strides: t.strides },
      { data: out, offset: 0, strides: contiguousStrides(t.shape) },
      t.shape,
    );
    return out;
  }
  return t.toFloat32Array();
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

/** A residual as a kernel reads it: its array and the offset of its first element (GemmParams' fields). */
export interface FusedResidual {
  readonly residual: Float32Array;
  readonly residualOffset: number;
}

/**
 * A residual a kernel itself can add to its output of shape `shape` (the GEMM's and the convolution's
 * `residual`): a backend that fuses residuals, no gradients to record for it or the kernel's operands, float32,
 * contiguous and exactly that shape (no broadcasting). Null: add it separately.
 */
export function fusableResidual(
  residual: Tensor | null | undefined,
  shape: Shape,
  operands: readonly (Tensor | null | undefined)[],
): FusedResidual | null {
  if (!residual || getBackend().fusesResidual !== true) return null;
  if (isGradEnabled() && (residual.requiresGrad || operands.some((t) => t?.requiresGrad))) return null;
  if (residual.dtype !== "float32" || !residual.isContiguous() || !shapesEqual(residual.shape, shape))
    return null;
  const view = stridedF32(residual);
  return { residual: view.data, residualOffset: view.offset };
}
