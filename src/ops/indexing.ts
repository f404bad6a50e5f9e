import type { DeviceBackend } from "../backend/index.js";
import { tensor } from "../tensor/create.js";
import type { DeviceBuffer } from "../tensor/device.js";
import { isFloating, type StorageArray } from "../tensor/dtype.js";
import { ArgumentError, DTypeError, ShapeError } from "../tensor/errors.js";
import { contiguousStrides, formatShape, normalizeDim, type Shape, sizeOf } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { allocOutput, allocZeros, backendOf, castBuffer, contiguousF32, fromF32, record } from "./core.js";
import { binaryRaw } from "./raw.js";
import { reshape } from "./view.js";

// Every op here reduces to the backend's row kernels: view the (contiguous) source as a table [R, cols] and
// pick rows by id (indexSelect); the gradient adds rows back by the same ids (indexAdd), and vice versa.
//
// Row ids: an index on the CPU (token ids, labels: inputs, not device data) is read and range-checked on the CPU
// and its ids uploaded to the table's device; an index already on the table's device stays there (its ids are
// computed by kernels; the kernels check their range).

/** Flat row ids of a table: on the CPU (checked) or as an int32 tensor on the table's device. */
type RowIds = Int32Array | Tensor;

function idsCount(ids: RowIds): number {
  return ids instanceof Tensor ? ids.size : ids.length;
}

/** The ids as an int32 buffer on the backend's device. */
function idsBuffer(be: DeviceBackend, ids: RowIds): DeviceBuffer {
  if (ids instanceof Tensor) return castBuffer(be, ids, "int32");
  return be.memory.upload(ids, "int32");
}

/** out[i, :] = table[ids[i], :] with `table` read as contiguous [R, cols]. Differentiable in `table`. */
function selectRows(table: Tensor, cols: number, ids: RowIds, outShape: Shape): Tensor {
  let y: Tensor;
  if (table.dtype !== "float32" && table.device === "cpu" && !(ids instanceof Tensor)) {
    // half-precision tables (e.g. fp16 token embeddings): pick the raw rows, widen only those
    y = Tensor.fromStorage(selectRowsExact(table, cols, ids, outShape).toFloat32Array(), outShape, "float32");
  } else {
    const be = backendOf("index_select", table);
    const n = idsCount(ids) * cols;
    const out = allocOutput(be, n);
    if (n > 0) be.indexSelect(contiguousF32(be, table), cols, idsBuffer(be, ids), out);
    y = fromF32(be, out, outShape);
  }
  return record(y, "index_select", [table], (g) => [addRows(g, cols, ids, table.shape)]);
}

/** Zeros of `tableShape` (read as [R, cols]) with rows g[i, :] added at ids[i]. Differentiable in `g`. */
function addRows(g: Tensor, cols: number, ids: RowIds, tableShape: Shape): Tensor {
  const be = backendOf("index_add", g);
  const out = allocZeros(be, sizeOf(tableShape));
  if (g.size > 0) be.indexAdd(contiguousF32(be, g), cols, idsBuffer(be, ids), out);
  const y = fromF32(be, out, tableShape);
  return record(y, "index_add", [g], (gg) => [selectRows(gg, cols, ids, g.shape)]);
}

/** The same row pick on the raw storage of a CPU tensor, for any dtype (exact, no autograd). */
function selectRowsExact(t: Tensor, cols: number, ids: Int32Array, outShape: Shape): Tensor {
  const src = t.dataSync();
  const out = new (src.constructor as new (n: number) => StorageArray)(ids.length * cols);
  for (let i = 0; i < ids.length; i++) {
    const from = ids[i]! * cols;
    for (let j = 0; j < cols; j++) out[i * cols + j] = src[from + j]!;
  }
  return Tensor.fromStorage(out, outShape, t.dtype);
}

function pickRows(t: Tensor, cols: number, ids: RowIds, outShape: Shape): Tensor {
  if (isFloating(t.dtype)) return selectRows(t, cols, ids, outShape);
  if (t.device !== "cpu" || ids instanceof Tensor) {
    throw new DTypeError(`indexing an ${t.dtype} tensor on device ${t.device}: convert it to float32 first`);
  }
  return selectRowsExact(t, cols, ids, outShape);
}

function checkIndexDType(index: Tensor, op: string, what: string): void {
  if (index.dtype !== "int32" && index.dtype !== "int64") {
    throw new DTypeError(
      `${op}: ${what} must be int32 or int64, got ${index.dtype} (convert with .to("int64"))`,
    );
  }
}

/**
 * Flat ids computed on the table's device from an index there: `index * scale + base` (base [index's shape],
 * made from shapes on the CPU). Float32 arithmetic is exact below 2^24, which the table's size must respect.
 */
function deviceIds(
  index: Tensor,
  scale: number,
  base: Float32Array | null,
  tableSize: number,
  op: string,
): Tensor {
  if (tableSize >= 2 ** 24) {
    throw new ArgumentError(
      `${op}: an index on device ${index.device} into more than 2^24 elements is not supported`,
    );
  }
  let ids = binaryRaw("mul", index, scale);
  if (base) ids = binaryRaw("add", ids, tensor(base, [...index.shape], { device: index.device }));
  return ids;
}

/** The values of an int32/int64 index tensor on the CPU, in row-major order. */
function readIndex(index: Tensor, op: string, what: string): Float64Array {
  checkIndexDType(index, op, what);
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
  const size = x.shape[d]!;
  const xs = contiguousStrides(x.shape);
  if (index.device !== "cpu") {
    checkIndexDType(index, "gather", "index");
    const base = new Float32Array(index.size);
    const pos = new Array<number>(x.ndim).fill(0);
    for (let i = 0; i < base.length; i++) {
      for (let k = 0; k < x.ndim; k++) if (k !== d) base[i]! += pos[k]! * xs[k]!;
      for (let k = x.ndim - 1; k >= 0; k--) {
        if (++pos[k]! < index.shape[k]!) break;
        pos[k] = 0;
      }
    }
    return pickRows(x, 1, deviceIds(index, xs[d]!, base, x.size, "gather"), index.shape);
  }
  const values = readIndex(index, "gather", "index");
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
  const outer = sizeOf(x.shape.slice(0, d));
  const n = x.shape[d]!;
  const inner = sizeOf(x.shape.slice(d + 1));
  const shape = [...x.shape];
  shape[d] = index.size;
  if (index.device !== "cpu") {
    checkIndexDType(index, "indexSelect", "index");
    const flat = reshape(index, [1, index.size]);
    const base = new Float32Array(outer * index.size);
    for (let o = 0; o < outer; o++) base.fill(o * n, o * index.size, (o + 1) * index.size);
    const ids = binaryRaw("add", flat, tensor(base, [outer, index.size], { device: index.device }));
    if (x.size >= 2 ** 24)
      throw new ArgumentError("indexSelect: a device index into more than 2^24 elements is not supported");
    return pickRows(x, inner, ids, shape);
  }
  const values = readIndex(index, "indexSelect", "index");
  const m = values.length;
  const ids = new Int32Array(outer * m);
  values.forEach((v, j) => {
    if (!(v >= 0 && v < n)) {
      throw new ArgumentError(`indexSelect: index ${v} is out of range for dim ${dim} of size ${n}`);
    }
    for (let o = 0; o < outer; o++) ids[o * m + j] = o * n + v;
  });
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
  if (ids.device !== "cpu") {
    checkIndexDType(ids, "embedding", "ids");
    return selectRows(weight, cols, deviceIds(ids, 1, null, weight.size, "embedding"), [...ids.shape, cols]);
  }
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
