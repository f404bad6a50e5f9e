import { getBackend } from "../backend/index.js";
import { isFloating, type StorageArray } from "../tensor/dtype.js";
import { ArgumentError, DTypeError, ShapeError } from "../tensor/errors.js";
import { contiguousStrides, formatShape, normalizeDim, type Shape, sizeOf } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { contiguousF32, fromF32, record } from "./core.js";
import { reshape } from "./view.js";

// Every op here reduces to the backend's row kernels: view the (contiguous) source as a table [R, cols] and
// pick rows by id (indexSelect); the gradient adds rows back by the same ids (indexAdd), and vice versa.

/** out[i, :] = table[ids[i], :] with `table` read as contiguous [R, cols]. Differentiable in `table`. */
function selectRows(table: Tensor, cols: number, ids: Int32Array, outShape: Shape): Tensor {
  let y: Tensor;
  if (table.dtype === "float32") {
    const out = new Float32Array(ids.length * cols);
    if (out.length > 0) getBackend().indexSelect(contiguousF32(table), cols, ids, out);
    y = fromF32(out, outShape);
  } else {
    // half-precision tables (e.g. fp16 token embeddings): pick the raw rows, widen only those
    y = fromF32(selectRowsExact(table, cols, ids, outShape).toFloat32Array(), outShape);
  }
  return record(y, "index_select", [table], (g) => [addRows(g, cols, ids, table.shape)]);
}

/** Zeros of `tableShape` (read as [R, cols]) with rows g[i, :] added at ids[i]. Differentiable in `g`. */
function addRows(g: Tensor, cols: number, ids: Int32Array, tableShape: Shape): Tensor {
  const out = new Float32Array(sizeOf(tableShape));
  if (g.size > 0) getBackend().indexAdd(contiguousF32(g), cols, ids, out);
  const y = fromF32(out, tableShape);
  return record(y, "index_add", [g], (gg) => [selectRows(gg, cols, ids, g.shape)]);
}

/** The same row pick on the raw storage, for any dtype (exact, no autograd). */
function selectRowsExact(t: Tensor, cols: number, ids: Int32Array, outShape: Shape): Tensor {
  const src = t.dataSync();
  const out = new (src.constructor as new (n: number) => StorageArray)(ids.length * cols);
  for (let i = 0; i < ids.length; i++) {
    const from = ids[i]! * cols;
    for (let j = 0; j < cols; j++) out[i * cols + j] = src[from + j]!;
  }
  return Tensor.fromStorage(out, outShape, t.dtype);
}

function pickRows(t: Tensor, cols: number, ids: Int32Array, outShape: Shape): Tensor {
  return isFloating(t.dtype) ? selectRows(t, cols, ids, outShape) : selectRowsExact(t, cols, ids, outShape);
}

/** The values of an int32/int64 index tensor in row-major order. */
function readIndex(index: Tensor, op: string, what: string): Float64Array {
  if (index.dtype !== "int32" && index.dtype !== "int64") {
    throw new DTypeError(
      `${op}: ${what} must be int32 or int64, got ${index.dtype} (convert with .to("int64"))`,
    );
  }
  const raw = index.dataSync();
  const out = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = Number(raw[i]!);
  return out;
}

/**
 * Picks values along `dim` by `index` (PyTorch's `torch.gather`): for dim = 1,
 * `out[i][j][k] = x[i][index[i][j][k]][k]`. `index` (int32/int64) has x's number of dims and sizes no larger than
 * x's outside `dim`; the result has index's shape. The gradient scatter-adds into x's shape.
 */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  if (x.ndim === 0 || index.ndim === 0) {
    if (x.ndim > 1 || index.ndim > 1) {
      throw new ShapeError(
        `gather: index has ${index.ndim} dims but input has ${x.ndim}; they must have the same number`,
      );
    }
    const out = gather(
      x.ndim === 0 ? reshape(x, [1]) : x,
      dim,
      index.ndim === 0 ? reshape(index, [1]) : index,
    );
    return index.ndim === 0 ? reshape(out, []) : out;
  }
  if (index.ndim !== x.ndim) {
    throw new ShapeError(
      `gather: index has ${index.ndim} dims (${formatShape(index.shape)}) but input has ${x.ndim} (${formatShape(x.shape)}); they must have the same number`,
    );
  }
  const d = normalizeDim(dim, x.ndim);
  index.shape.forEach((s, k) => {
    if (k !== d && s > x.shape[k]!) {
      throw new ShapeError(
        `gather: index ${formatShape(index.shape)} is larger than input ${formatShape(x.shape)} in dim ${k} (only dim ${dim} may differ)`,
      );
    }
  });
  const values = readIndex(index, "gather", "index");
  const size = x.shape[d]!;
  const xs = contiguousStrides(x.shape);
  const ids = new Int32Array(values.length);
  const nd = x.ndim;
  const pos = new Array<number>(nd).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v >= 0 && v < size)) {
      throw new ArgumentError(`gather: index ${v} is out of range for dim ${dim} of size ${size}`);
    }
    let p = v * xs[d]!;
    for (let k = 0; k < nd; k++) if (k !== d) p += pos[k]! * xs[k]!;
    ids[i] = p;
    // advance the multi-index over index's shape (row-major)
    for (let k = nd - 1; k >= 0; k--) {
      if (++pos[k]! < index.shape[k]!) break;
      pos[k] = 0;
    }
  }
  return pickRows(x, 1, ids, index.shape);
}

/**
 * Selects entries along `dim` by a 1-D (or 0-d) int32/int64 `index` (PyTorch's `torch.index_select`): the result
 * has x's shape with dim `dim` of size index.numel(). The gradient adds back into the selected positions.
 */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  if (index.ndim > 1) {
    throw new ShapeError(`indexSelect: index must be 1-D, got shape ${formatShape(index.shape)}`);
  }
  if (x.ndim === 0) {
    return reshape(indexSelect(reshape(x, [1]), dim, index), index.ndim === 0 ? [] : [index.size]);
  }
  const d = normalizeDim(dim, x.ndim);
  const values = readIndex(index, "indexSelect", "index");
  const outer = sizeOf(x.shape.slice(0, d));
  const n = x.shape[d]!;
  const inner = sizeOf(x.shape.slice(d + 1));
  const m = values.length;
  const ids = new Int32Array(outer * m);
  values.forEach((v, j) => {
    if (!(v >= 0 && v < n)) {
      throw new ArgumentError(`indexSelect: index ${v} is out of range for dim ${dim} of size ${n}`);
    }
    for (let o = 0; o < outer; o++) ids[o * m + j] = o * n + v;
  });
  const shape = [...x.shape];
  shape[d] = m;
  return pickRows(x, inner, ids, shape);
}

/**
 * Looks up rows of `weight` [numEmbeddings, dim] for int32/int64 `ids` of any shape (PyTorch's `F.embedding`):
 * the result is [...ids.shape, dim]. The gradient reaches `weight` only (rows summed per id).
 */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  if (weight.ndim !== 2) {
    throw new ShapeError(
      `embedding: weight must be 2-D [numEmbeddings, dim], got ${formatShape(weight.shape)}`,
    );
  }
  if (!isFloating(weight.dtype)) {
    throw new DTypeError(`embedding: weight must be floating point, got ${weight.dtype}`);
  }
  const [rows, cols] = weight.shape as [number, number];
  const values = readIndex(ids, "embedding", "ids");
  const rowIds = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v >= 0 && v < rows)) {
      throw new ArgumentError(
        `embedding: id ${v} (element ${i} of ids ${formatShape(ids.shape)}) is out of range for a table of ${rows} rows (valid ids: 0..${rows - 1})`,
      );
    }
    rowIds[i] = v;
  }
  return selectRows(weight, cols, rowIds, [...ids.shape, cols]);
}
