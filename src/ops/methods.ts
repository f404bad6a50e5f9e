// Installs the ops as Tensor methods (x.add(y), x.matmul(w), ...). The Tensor class lives in the lower tensor
// layer and cannot import ops, so its methods are attached here, with declaration merging for the types.
import { runBackward } from "../tensor/autograd.js";
import { full } from "../tensor/create.js";
import type { Device } from "../tensor/device.js";
import type { DType } from "../tensor/dtype.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Shape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import type { TensorLike } from "./elementwise.js";
import * as ew from "./elementwise.js";
import * as indexing from "./indexing.js";
import { linear, matmul } from "./matmul.js";
import type { ReduceOptions } from "./reduce.js";
import * as red from "./reduce.js";
import * as shapeOps from "./shape.js";
import { log_softmax, softmax } from "./softmax.js";
import * as view from "./view.js";

declare module "../tensor/tensor.js" {
  interface Tensor {
    add(other: TensorLike): Tensor;
    sub(other: TensorLike): Tensor;
    mul(other: TensorLike): Tensor;
    div(other: TensorLike): Tensor;
    pow(exponent: TensorLike): Tensor;
    maximum(other: TensorLike): Tensor;
    minimum(other: TensorLike): Tensor;
    eq(other: TensorLike): Tensor;
    ne(other: TensorLike): Tensor;
    lt(other: TensorLike): Tensor;
    le(other: TensorLike): Tensor;
    gt(other: TensorLike): Tensor;
    ge(other: TensorLike): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    abs(): Tensor;
    sign(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    silu(): Tensor;
    relu(): Tensor;
    gelu(approximate?: "none" | "tanh"): Tensor;
    sin(): Tensor;
    cos(): Tensor;
    square(): Tensor;
    reciprocal(): Tensor;
    floor(): Tensor;
    round(): Tensor;
    clamp(min?: number | null, max?: number | null): Tensor;
    matmul(other: Tensor): Tensor;
    sum(dims?: number | readonly number[], opts?: ReduceOptions): Tensor;
    mean(dims?: number | readonly number[], opts?: ReduceOptions): Tensor;
    var(dims?: number | readonly number[], opts?: ReduceOptions & { correction?: number }): Tensor;
    max(dims?: number | readonly number[], opts?: ReduceOptions): Tensor;
    min(dims?: number | readonly number[], opts?: ReduceOptions): Tensor;
    argmax(dim?: number, opts?: ReduceOptions): Tensor;
    argmin(dim?: number, opts?: ReduceOptions): Tensor;
    reshape(...shape: number[] | [Shape]): Tensor;
    /** Same as reshape (PyTorch's view). */
    view(...shape: number[] | [Shape]): Tensor;
    permute(...dims: number[] | [readonly number[]]): Tensor;
    transpose(dim0: number, dim1: number): Tensor;
    /** Transpose of a 2-D tensor. */
    t(): Tensor;
    slice(dim: number, start?: number, end?: number, step?: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    select(dim: number, index: number): Tensor;
    squeeze(dims?: number | readonly number[]): Tensor;
    unsqueeze(dim: number): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    expand(...shape: number[] | [Shape]): Tensor;
    expandAs(other: Tensor): Tensor;
    contiguous(): Tensor;
    clone(): Tensor;
    detach(): Tensor;
    /** Another dtype (a converted copy) or another device (a moved copy; see `toAsync` for devices read back asynchronously). */
    to(dtypeOrDevice: DType | Device): Tensor;
    /** A copy on `device`, read back asynchronously where the source device needs that. */
    toAsync(device: Device): Promise<Tensor>;
    float(): Tensor;
    half(): Tensor;
    /** Backpropagates from this tensor; `grad` defaults to 1 for a one-element tensor. */
    backward(grad?: Tensor): void;
  }
}

/** Accepts both f(1, 2, 3) and f([1, 2, 3]). */
function dimsArg(args: readonly (number | Shape)[]): number[] {
  return args.length === 1 && Array.isArray(args[0]) ? [...(args[0] as Shape)] : (args as number[]);
}

const proto = Tensor.prototype;
const binaryMethods = {
  add: ew.add,
  sub: ew.sub,
  mul: ew.mul,
  div: ew.div,
  pow: ew.pow,
  maximum: ew.maximum,
  minimum: ew.minimum,
  eq: ew.eq,
  ne: ew.ne,
  lt: ew.lt,
  le: ew.le,
  gt: ew.gt,
  ge: ew.ge,
} as const;
for (const [name, fn] of Object.entries(binaryMethods)) {
  Object.defineProperty(proto, name, {
    value(this: Tensor, other: TensorLike) {
      return fn(this, other);
    },
    writable: true,
    configurable: true,
  });
}
const unaryMethods = {
  neg: ew.neg,
  exp: ew.exp,
  log: ew.log,
  sqrt: ew.sqrt,
  rsqrt: ew.rsqrt,
  abs: ew.abs,
  sign: ew.sign,
  tanh: ew.tanh,
  sigmoid: ew.sigmoid,
  silu: ew.silu,
  relu: ew.relu,
  sin: ew.sin,
  cos: ew.cos,
  square: ew.square,
  reciprocal: ew.reciprocal,
  floor: ew.floor,
  round: ew.round,
  contiguous: view.contiguous,
  clone: view.clone,
  detach: view.detach,
} as const;
for (const [name, fn] of Object.entries(unaryMethods)) {
  Object.defineProperty(proto, name, {
    value(this: Tensor) {
      return fn(this);
    },
    writable: true,
    configurable: true,
  });
}

Object.assign(proto, {
  gelu(this: Tensor, approximate?: "none" | "tanh") {
    return ew.gelu(this, approximate);
  },
  clamp(this: Tensor, min?: number | null, max?: number | null) {
    return ew.clamp(this, min, max);
  },
  matmul(this: Tensor, other: Tensor) {
    return matmul(this, other);
  },
  sum(this: Tensor, dims?: number | readonly number[], opts?: ReduceOptions) {
    return red.sum(this, dims, opts);
  },
  mean(this: Tensor, dims?: number | readonly number[], opts?: ReduceOptions) {
    return red.mean(this, dims, opts);
  },
  var(this: Tensor, dims?: number | readonly number[], opts?: ReduceOptions & { correction?: number }) {
    return red.variance(this, dims, opts);
  },
  max(this: Tensor, dims?: number | readonly number[], opts?: ReduceOptions) {
    return red.max(this, dims, opts);
  },
  min(this: Tensor, dims?: number | readonly number[], opts?: ReduceOptions) {
    return red.min(this, dims, opts);
  },
  argmax(this: Tensor, dim?: number, opts?: ReduceOptions) {
    return red.argmax(this, dim, opts);
  },
  argmin(this: Tensor, dim?: number, opts?: ReduceOptions) {
    return red.argmin(this, dim, opts);
  },
  reshape(this: Tensor, ...shape: (number | Shape)[]) {
    return view.reshape(this, dimsArg(shape));
  },
  view(this: Tensor, ...shape: (number | Shape)[]) {
    return view.reshape(this, dimsArg(shape));
  },
  permute(this: Tensor, ...dims: (number | Shape)[]) {
    return view.permute(this, dimsArg(dims));
  },
  transpose(this: Tensor, dim0: number, dim1: number) {
    return view.transpose(this, dim0, dim1);
  },
  t(this: Tensor) {
    if (this.ndim !== 2) throw new ArgumentError(`t() expects a 2-D tensor, got ${this.ndim}-D`);
    return view.transpose(this, 0, 1);
  },
  slice(this: Tensor, dim: number, start?: number, end?: number, step?: number) {
    return view.slice(this, dim, start, end, step);
  },
  narrow(this: Tensor, dim: number, start: number, length: number) {
    return view.narrow(this, dim, start, length);
  },
  select(this: Tensor, dim: number, index: number) {
    return view.select(this, dim, index);
  },
  squeeze(this: Tensor, dims?: number | readonly number[]) {
    return view.squeeze(this, dims);
  },
  unsqueeze(this: Tensor, dim: number) {
    return view.unsqueeze(this, dim);
  },
  flatten(this: Tensor, startDim?: number, endDim?: number) {
    return view.flatten(this, startDim, endDim);
  },
  expand(this: Tensor, ...shape: (number | Shape)[]) {
    return red.expand(this, dimsArg(shape));
  },
  expandAs(this: Tensor, other: Tensor) {
    return red.expand(this, other.shape);
  },
  to(this: Tensor, dtypeOrDevice: DType | Device) {
    return view.to(this, dtypeOrDevice);
  },
  toAsync(this: Tensor, device: Device) {
    return view.toDeviceAsync(this, device);
  },
  float(this: Tensor) {
    return view.to(this, "float32");
  },
  half(this: Tensor) {
    return view.to(this, "float16");
  },
  backward(this: Tensor, grad?: Tensor) {
    if (!this.requiresGrad) {
      throw new ArgumentError(
        "backward(): this tensor does not require grad (no input had requiresGrad set)",
      );
    }
    if (!grad && this.size !== 1) {
      throw new ArgumentError(
        `backward(): grad must be given for a non-scalar output of shape [${this.shape.join(", ")}]`,
      );
    }
    const seed = grad ?? full(this.shape, 1, { device: this.device });
    runBackward(this, seed, (a, b) => ew.binaryRaw("add", a, b));
  },
});

export { linear };

// --- softmax, split/chunk, gather/indexSelect (src/ops/softmax.ts, shape.ts, indexing.ts) ---------------------
declare module "../tensor/tensor.js" {
  interface Tensor {
    softmax(dim?: number): Tensor;
    log_softmax(dim?: number): Tensor;
    split(splitSizeOrSections: number | readonly number[], dim?: number): Tensor[];
    chunk(chunks: number, dim?: number): Tensor[];
    gather(dim: number, index: Tensor): Tensor;
    indexSelect(dim: number, index: Tensor): Tensor;
  }
}

Object.assign(proto, {
  softmax(this: Tensor, dim?: number) {
    return softmax(this, dim);
  },
  log_softmax(this: Tensor, dim?: number) {
    return log_softmax(this, dim);
  },
  split(this: Tensor, splitSizeOrSections: number | readonly number[], dim?: number) {
    return shapeOps.split(this, splitSizeOrSections, dim);
  },
  chunk(this: Tensor, chunks: number, dim?: number) {
    return shapeOps.chunk(this, chunks, dim);
  },
  gather(this: Tensor, dim: number, index: Tensor) {
    return indexing.gather(this, dim, index);
  },
  indexSelect(this: Tensor, dim: number, index: Tensor) {
    return indexing.indexSelect(this, dim, index);
  },
});
