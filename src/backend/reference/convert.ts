import { convertStorage, type DType, type StorageArray } from "../../tensor/dtype.js";
import { gatherStrided, isRowMajor } from "../../tensor/tensor.js";
import type { Backend, StridedAny } from "../backend.js";

/** dtype conversion and fills on typed arrays. */
export const convertKernels: Pick<Backend, "cast" | "fill"> = {
  cast(src: StridedAny, from: DType, out: StorageArray, to: DType, shape: readonly number[]): void {
    // the same dtype, row-major: one block copy (loading weights is mostly this)
    if (from === to && isRowMajor(shape, src.strides)) {
      const n = shape.reduce((a, b) => a * b, 1);
      out.set((src.data as StorageArray).subarray(src.offset, src.offset + n) as never);
      return;
    }
    const dense = gatherStrided(src.data, src.offset, shape, src.strides);
    const converted = from === to ? dense : convertStorage(dense, from, to);
    out.set(converted as never);
  },

  fill(out: StorageArray, dtype: DType, value: number, offset: number, size: number): void {
    if (out instanceof BigInt64Array) {
      out.fill(BigInt(Math.trunc(value)), offset, offset + size);
      return;
    }
    // one element converted by the dtype's own rule (float16 rounding, int truncation, bool)
    const one = convertStorage(Float32Array.of(value), "float32", dtype) as Exclude<
      StorageArray,
      BigInt64Array
    >;
    (out as Exclude<StorageArray, BigInt64Array>).fill(one[0]!, offset, offset + size);
  },
};
