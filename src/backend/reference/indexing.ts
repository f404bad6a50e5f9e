import { ArgumentError } from "../../tensor/errors.js";
import type { Backend } from "../backend.js";

export const indexingKernels: Pick<
  Backend,
  "indexSelect" | "indexAdd" | "upsampleNearest" | "upsampleNearestBackward"
> = {
  indexSelect(table, cols, ids, out): void {
    for (let i = 0; i < ids.length; i++) {
      const src = ids[i]! * cols;
      if (!(src >= 0 && src + cols <= table.length)) throw rowOutOfRange(ids[i]!, table.length / cols);
      out.set(table.subarray(src, src + cols), i * cols);
    }
  },

  indexAdd(gradOut, cols, ids, gradTable): void {
    for (let i = 0; i < ids.length; i++) {
      const dst = ids[i]! * cols;
      if (!(dst >= 0 && dst + cols <= gradTable.length))
        throw rowOutOfRange(ids[i]!, gradTable.length / cols);
      const src = i * cols;
      for (let j = 0; j < cols; j++) gradTable[dst + j]! += gradOut[src + j]!;
    }
  },

  // PyTorch "nearest": src = min(floor(dst * in / out), in - 1), computed in float32 as PyTorch does.
  upsampleNearest(x, out, planes, h, w, oh, ow): void {
    const rows = nearestIndex(h, oh);
    const cols = nearestIndex(w, ow);
    for (let p = 0; p < planes; p++) {
      const xb = p * h * w;
      const ob = p * oh * ow;
      for (let i = 0; i < oh; i++) {
        const xr = xb + rows[i]! * w;
        const orow = ob + i * ow;
        for (let j = 0; j < ow; j++) out[orow + j] = x[xr + cols[j]!]!;
      }
    }
  },

  upsampleNearestBackward(gradOut, gradIn, planes, h, w, oh, ow): void {
    gradIn.fill(0);
    const rows = nearestIndex(h, oh);
    const cols = nearestIndex(w, ow);
    for (let p = 0; p < planes; p++) {
      const xb = p * h * w;
      const ob = p * oh * ow;
      for (let i = 0; i < oh; i++) {
        const xr = xb + rows[i]! * w;
        const orow = ob + i * ow;
        for (let j = 0; j < ow; j++) gradIn[xr + cols[j]!]! += gradOut[orow + j]!;
      }
    }
  },
};

/** Source index of each output position for PyTorch's legacy "nearest" mode. */
export function nearestIndex(inSize: number, outSize: number): Int32Array {
  const scale = Math.fround(inSize / outSize);
  const idx = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) idx[i] = Math.min(Math.floor(Math.fround(i * scale)), inSize - 1);
  return idx;
}

function rowOutOfRange(id: number, rows: number): ArgumentError {
  return new ArgumentError(`index ${id} is out of range for a table of ${rows} rows (valid: 0..${rows - 1})`);
}
