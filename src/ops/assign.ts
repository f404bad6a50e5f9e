// In-place writes into an existing tensor's storage: loading weights, initialisers, restoring averaged weights.
import { ArgumentError, ShapeError } from "../tensor/errors.js";
import { contiguousStrides, formatShape, shapesEqual } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { backendOf, castBuffer, ownElements } from "./core.js";
import { toDevice } from "./view.js";

/**
 * Copies `src` into `dst` in place (PyTorch's `dst.copy_(src)`): same shape, any dtypes (converted to dst's), src
 * moved to dst's device first. Autograd does not see the write. Returns `dst`.
 */
export function copy_(dst: Tensor, src: Tensor): Tensor {
  if (!shapesEqual(dst.shape, src.shape)) {
    throw new ShapeError(
      `copy_: source ${formatShape(src.shape)} does not match destination ${formatShape(dst.shape)}`,
    );
  }
  if (dst.size === 0) return dst;
  const be = backendOf("copy_", dst);
  const from = src.device === dst.device ? src : toDevice(src, dst.device);
  const own = ownElements(be, dst);
  if (own) {
    be.cast(
      { data: from.storage.buffer, offset: from.offset, strides: from.strides },
      from.dtype,
      own,
      dst.dtype,
      dst.shape,
    );
    return dst;
  }
  // a strided destination: convert contiguously, then scatter through dst's strides
  const converted = castBuffer(be, from, dst.dtype);
  be.copy(
    { data: converted, offset: 0, strides: contiguousStrides(dst.shape) },
    { data: dst.storage.buffer, offset: dst.offset, strides: dst.strides },
    dst.shape,
  );
  return dst;
}

/** Writes float32 `values` (row-major) into `dst` in place, converted to its dtype. Returns `dst`. */
export function writeValues(dst: Tensor, values: Float32Array): Tensor {
  if (values.length !== dst.size) {
    throw new ArgumentError(`writeValues: ${values.length} values for a tensor of ${dst.size} elements`);
  }
  const be = backendOf("writeValues", dst);
  const own = ownElements(be, dst);
  if (own && dst.dtype === "float32") {
    be.memory.write(own, "float32", 0, values);
    return dst;
  }
  return copy_(dst, Tensor.fromStorage(values, dst.shape, "float32"));
}
