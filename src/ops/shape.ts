import type { DeviceBackend } from "../backend/index.js";
import type { DeviceBuffer } from "../tensor/device.js";
import { type DType, isFloating } from "../tensor/dtype.js";
import { ArgumentError, DTypeError, ShapeError } from "../tensor/errors.js";
import { contiguousStrides, formatShape, normalizeDim, sizeOf } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { backendOf, fromBuffer, onDevice, record } from "./core.js";
import { slice, to, unsqueeze } from "./view.js";

/** Copies `src` (any strides) into the region of a contiguous `out` buffer of shape `outShape` starting at `start`. */
function copyInto(
  be: DeviceBackend,
  source: Tensor,
  out: DeviceBuffer,
  outShape: readonly number[],
  start: readonly number[],
): void {
  if (source.size === 0) return;
  const src = onDevice(be, source);
  const strides = contiguousStrides(outShape);
  let offset = 0;
  start.forEach((s, i) => {
    offset += s * strides[i]!;
  });
  be.copy(
    { data: src.storage.buffer, offset: src.offset, strides: src.strides },
    { data: out, offset, strides },
    src.shape,
  );
}

/** The common dtype of `tensors` for cat/stack: the shared one, or float32 when floating types are mixed. */
function commonDType(tensors: readonly Tensor[], op: string): DType {
  const dtypes = [...new Set(tensors.map((t) => t.dtype))];
  if (dtypes.length === 1) return dtypes[0]!;
  if (dtypes.every(isFloating)) return "float32";
  throw new DTypeError(
    `${op}: tensors have dtypes ${dtypes.join(", ")}; convert them to one dtype first (e.g. .float())`,
  );
}

/**
 * Concatenates tensors along `dim` (PyTorch's `torch.cat`). All tensors need the same number of dims and the
 * same sizes outside `dim`; 1-D empty tensors are skipped, as in PyTorch. Mixed float dtypes give float32.
 */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new ArgumentError("cat: expected a non-empty list of tensors");
  const parts = tensors.filter((t) => !(t.ndim === 1 && t.size === 0));
  if (parts.length === 0) return tensors[0]!;
  const ref = parts[0]!;
  if (ref.ndim === 0) throw new ShapeError("cat: zero-dimensional tensors cannot be concatenated");
  const d = normalizeDim(dim, ref.ndim);
  tensors.forEach((t, i) => {
    if (t.ndim === 1 && t.size === 0) return;
    if (t.ndim !== ref.ndim || t.shape.some((s, j) => j !== d && s !== ref.shape[j])) {
      throw new ShapeError(
        `cat: tensor ${i} has shape ${formatShape(t.shape)} but tensor ${tensors.indexOf(ref)} has ${formatShape(ref.shape)}; sizes must match except in dim ${dim}`,
      );
    }
  });
  const dtype = commonDType(parts, "cat");
  const shape = [...ref.shape];
  shape[d] = parts.reduce((a, t) => a + t.shape[d]!, 0);
  const be = backendOf("cat", ...parts);
  const data = be.memory.alloc(dtype, sizeOf(shape));
  const start = new Array<number>(shape.length).fill(0);
  const starts: number[] = [];
  for (const t of parts) {
    starts.push(start[d]!);
    copyInto(be, t.dtype === dtype ? t : to(t, dtype), data, shape, start);
    start[d]! += t.shape[d]!;
  }
  const out = fromBuffer(be, data, shape, dtype);
  return record(out, "cat", parts, (g) =>
    parts.map((t, i) => (t.requiresGrad ? slice(g, d, starts[i]!, starts[i]! + t.shape[d]!) : null)),
  );
}

/** Stacks same-shaped tensors along a new dim `dim` (PyTorch's `torch.stack`). */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new ArgumentError("stack: expected a non-empty list of tensors");
  const ref = tensors[0]!;
  tensors.forEach((t, i) => {
    if (t.ndim !== ref.ndim || t.shape.some((s, j) => s !== ref.shape[j])) {
      throw new ShapeError(
        `stack: all tensors need the same shape; tensor 0 is ${formatShape(ref.shape)}, tensor ${i} is ${formatShape(t.shape)}`,
      );
    }
  });
  const d = normalizeDim(dim, ref.ndim + 1);
  return cat(
    tensors.map((t) => unsqueeze(t, d)),
    d,
  );
}

/**
 * Splits `x` along `dim` into views (PyTorch's `torch.split`): a number gives chunks of that size (the last may
 * be smaller); an array gives the size of each piece and must sum to the dim's size.
 */
export function split(x: Tensor, splitSizeOrSections: number | readonly number[], dim = 0): Tensor[] {
  const d = normalizeDim(dim, x.ndim);
  const size = x.shape[d]!;
  let sizes: number[];
  if (typeof splitSizeOrSections === "number") {
    const n = splitSizeOrSections;
    if (!Number.isInteger(n) || n < 0 || (n === 0 && size !== 0)) {
      throw new ArgumentError(`split: split size must be a positive integer, got ${n}`);
    }
    if (size === 0) return [x];
    sizes = [];
    for (let s = 0; s < size; s += n) sizes.push(Math.min(n, size - s));
  } else {
    sizes = [...splitSizeOrSections];
    const total = sizes.reduce((a, b) => a + b, 0);
    if (sizes.some((s) => !Number.isInteger(s) || s < 0) || total !== size) {
      throw new ArgumentError(
        `split: sections [${sizes.join(", ")}] must be non-negative integers summing to ${size} (the size of dim ${dim} of ${formatShape(x.shape)}), got sum ${total}`,
      );
    }
  }
  const out: Tensor[] = [];
  let start = 0;
  for (const s of sizes) {
    out.push(slice(x, d, start, start + s));
    start += s;
  }
  return out;
}

/**
 * Splits `x` into `chunks` views along `dim` of size ceil(size / chunks) (PyTorch's `torch.chunk`); like
 * PyTorch, this may return fewer than `chunks` pieces.
 */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  if (!Number.isInteger(chunks) || chunks < 1) {
    throw new ArgumentError(`chunk: chunks must be a positive integer, got ${chunks}`);
  }
  const d = normalizeDim(dim, x.ndim);
  const size = x.shape[d]!;
  if (size === 0) return Array.from({ length: chunks }, () => slice(x, d, 0, 0));
  return split(x, Math.ceil(size / chunks), d);
}

/**
 * Pads `x` with the constant `value` (PyTorch's `F.pad`, constant mode). `pads` lists (before, after) pairs
 * starting from the LAST dim: `[left, right]` pads the last dim, `[left, right, top, bottom]` the last two, and
 * so on. Negative pads crop. Any dtype; the gradient is the matching crop of the output gradient.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0 || pads.length / 2 > x.ndim) {
    throw new ArgumentError(
      `pad: pads must hold an even number of values, at most 2 per dim (${2 * x.ndim} for ${formatShape(x.shape)}), got [${pads.join(", ")}]`,
    );
  }
  if (pads.some((p) => !Number.isInteger(p))) {
    throw new ArgumentError(`pad: pads must be integers, got [${pads.join(", ")}]`);
  }
  const nd = x.ndim;
  const before = new Array<number>(nd).fill(0);
  const after = new Array<number>(nd).fill(0);
  for (let k = 0; k < pads.length / 2; k++) {
    before[nd - 1 - k] = pads[2 * k]!;
    after[nd - 1 - k] = pads[2 * k + 1]!;
  }
  const shape = x.shape.map((s, i) => s + before[i]! + after[i]!);
  shape.forEach((s, i) => {
    if (s < 0) {
      throw new ShapeError(
        `pad: dim ${i} of size ${x.shape[i]} padded by (${before[i]}, ${after[i]}) would have negative size ${s}`,
      );
    }
  });
  const n = sizeOf(shape);
  const be = backendOf("pad", x);
  const data = be.memory.alloc(x.dtype, n);
  if (value !== 0) be.fill(data, x.dtype, value, 0, n);
  // the part of x that survives cropping, and where it lands in the output
  let src = x;
  for (let i = 0; i < nd; i++) {
    const lo = Math.max(-before[i]!, 0);
    const hi = x.shape[i]! - Math.max(-after[i]!, 0);
    if (lo !== 0 || hi !== x.shape[i]) src = sliceRaw(src, i, lo, Math.max(hi, lo));
  }
  copyInto(
    be,
    src,
    data,
    shape,
    before.map((b) => Math.max(b, 0)),
  );
  const out = fromBuffer(be, data, shape, x.dtype);
  // the gradient crops what was padded and zero-pads what was cropped: pad with the negated pads
  return record(out, "pad", [x], (g) => [
    pad(
      g,
      pads.map((p) => -p),
      0,
    ),
  ]);
}

/** A view of `t` narrowed to [start, end) along `d`, outside autograd. */
function sliceRaw(t: Tensor, d: number, start: number, end: number): Tensor {
  const shape = [...t.shape];
  shape[d] = end - start;
  return new Tensor(t.storage, shape, t.dtype, t.strides, t.offset + start * t.strides[d]!);
}
