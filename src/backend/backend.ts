import type { DeviceBuffer, DeviceMemory } from "../tensor/device.js";
import type { DType, StorageArray } from "../tensor/dtype.js";

/**
 * The kernel contract. Kernels work on buffers of one device's memory and plain numbers; they know nothing of
 * tensors, autograd or dtype rules (the ops layer handles those). Every implementation (reference, native,
 * WebGPU) must give the reference backend's answers within float32 rounding.
 *
 * Buffers: the interfaces are generic in the buffer types `T`. CPU backends use typed arrays ({@link CpuBuffers},
 * the default, so kernels index them directly); the ops layer sees opaque {@link DeviceBuffers} and passes the
 * buffers of a tensor's storage through unchanged, so a backend for another device (a GPU) gets its own handles.
 *
 * Conventions: float data is float32; outputs are contiguous row-major and fully written by the kernel (callers
 * may pass uninitialised/reused buffers) unless a parameter says "accumulate".
 */

/** The buffer type of each kind of data a kernel reads or writes. */
export interface BufferTypes {
  /** float32 values */
  f32: unknown;
  /** float16 bit patterns (half-precision weights) */
  u16: unknown;
  /** 0/1 bytes (bool) */
  u8: unknown;
  /** int32 ids */
  i32: unknown;
  /** any dtype (copies and casts) */
  any: unknown;
}

/** CPU buffers: typed arrays. */
export interface CpuBuffers extends BufferTypes {
  f32: Float32Array;
  u16: Uint16Array;
  u8: Uint8Array;
  i32: Int32Array;
  any: StorageArray;
}

/** Buffers as the ops layer sees them: opaque handles of the tensors' device. */
export interface DeviceBuffers extends BufferTypes {
  f32: DeviceBuffer;
  u16: DeviceBuffer;
  u8: DeviceBuffer;
  i32: DeviceBuffer;
  any: DeviceBuffer;
}

/** A strided float32 view: element (i0, i1, ...) is at `data[offset + i0*strides[0] + i1*strides[1] + ...]`. */
export interface StridedF32<T extends BufferTypes = CpuBuffers> {
  readonly data: T["f32"];
  readonly offset: number;
  /** One stride per output dim; 0 for broadcast dims. */
  readonly strides: readonly number[];
}

/** A strided view of any storage type (used by copy and cast). */
export interface StridedAny<T extends BufferTypes = CpuBuffers> {
  readonly data: T["any"];
  readonly offset: number;
  readonly strides: readonly number[];
}

export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "abs"
  | "sign"
  | "tanh"
  | "sigmoid"
  | "silu"
  /** exact GELU, x * Phi(x) (erf form) */
  | "gelu"
  /** tanh approximation of GELU */
  | "gelu_tanh"
  | "relu"
  | "sin"
  | "cos"
  | "square"
  | "reciprocal"
  | "floor"
  | "ceil"
  | "round"
  /** x^p0 */
  | "pow_scalar"
  /** min(max(x, p0), p1); p0/p1 may be -Infinity/Infinity */
  | "clamp"
  /** p0 * x + p1 */
  | "affine"
  /** derivative helpers used by gradient rules (x is the op's input): */
  | "gelu_grad"
  | "gelu_tanh_grad"
  | "silu_grad"
  | "erf";

export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  /** comparisons write 1 or 0 */
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge";

export type ReduceOp = "sum" | "max" | "min" | "argmax" | "argmin";

/** Parameters of a 2-D convolution (NCHW input, OIHW weights). */
export interface Conv2dParams {
  readonly batch: number;
  readonly inChannels: number;
  readonly inH: number;
  readonly inW: number;
  readonly outChannels: number;
  readonly outH: number;
  readonly outW: number;
  readonly kernelH: number;
  readonly kernelW: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
  readonly dilationH: number;
  readonly dilationW: number;
  readonly groups: number;
}

/** Parameters of a (batched) matrix product `out[b] = alpha * A[b] @ B[b] (+ out[b] if accumulate)`. */
export interface GemmParams<T extends BufferTypes = CpuBuffers> {
  readonly batch: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  /** A[b][i][p] = a[aOffset + b*aBatchStride + i*aRowStride + p*aColStride] */
  readonly a: T["f32"];
  readonly aOffset: number;
  readonly aBatchStride: number;
  readonly aRowStride: number;
  readonly aColStride: number;
  /** B[b][p][j] = b[bOffset + b*bBatchStride + p*bRowStride + j*bColStride] */
  readonly b: T["f32"];
  readonly bOffset: number;
  readonly bBatchStride: number;
  readonly bRowStride: number;
  readonly bColStride: number;
  /** out is contiguous [batch, m, n] starting at outOffset */
  readonly out: T["f32"];
  readonly outOffset: number;
  readonly alpha: number;
  /** add into out instead of overwriting it */
  readonly accumulate: boolean;
  /** optional bias added to every row (length n), applied once */
  readonly bias?: T["f32"] | null;
  /** optional bias added to every column (length m: one value per output row), applied once */
  readonly biasRows?: T["f32"] | null;
  /**
   * optional residual added last, out = alpha A B (+ out) + biases + residual: contiguous [batch, m, n] starting at
   * residualOffset, another array than out (a residual connection fused into the product)
   */
  readonly residual?: T["f32"] | null;
  readonly residualOffset?: number;
}

/**
 * Where the rows of one attention head live in its array: head `b = o * heads + h` starts at
 * `offset + o * outerStride + h * headStride`, its rows are `rowStride` apart, its elements contiguous. Covers
 * contiguous [B, heads, L, D] and the head-split view of [B, L, heads * D] (headStride D, rowStride heads * D).
 */
export interface HeadLayout {
  readonly offset: number;
  readonly outerStride: number;
  readonly headStride: number;
  readonly rowStride: number;
}

/** The layout of contiguous [batch, rows, cols] as a {@link HeadLayout} with `heads` heads per outer index. */
export function contiguousHeads(heads: number, rows: number, cols: number): HeadLayout {
  return { offset: 0, outerStride: heads * rows * cols, headStride: rows * cols, rowStride: cols };
}

/** Parameters of fused attention `softmax(scale * Q K^T + mask) V` over `batch` independent heads. */
export interface AttentionParams<T extends BufferTypes = CpuBuffers> {
  readonly batch: number;
  readonly lq: number;
  readonly lk: number;
  /** query/key width */
  readonly d: number;
  /** value width */
  readonly dv: number;
  readonly scale: number;
  /**
   * q [batch, lq, d], k [batch, lk, d], v [batch, lk, dv], out [batch, lq, dv]: contiguous unless a layout is
   * given (then `heads` must divide `batch`).
   */
  readonly q: T["f32"];
  readonly k: T["f32"];
  readonly v: T["f32"];
  readonly out: T["f32"];
  /** heads per outer batch index of the layouts (default 1) */
  readonly heads?: number;
  readonly qLayout?: HeadLayout;
  readonly kLayout?: HeadLayout;
  readonly vLayout?: HeadLayout;
  readonly outLayout?: HeadLayout;
  /** optional additive mask, element (b, i, j) at mask[b*maskBatchStride + i*maskRowStride + j] */
  readonly mask?: T["f32"] | null;
  readonly maskBatchStride?: number;
  readonly maskRowStride?: number;
}

/** Parameters of {@link Backend.linearGeglu}. */
export interface LinearGegluParams<T extends BufferTypes = CpuBuffers> {
  /** Contiguous [rows, inFeatures]. */
  readonly x: T["f32"];
  readonly rows: number;
  readonly inFeatures: number;
  /** Contiguous [2 * half, inFeatures] from `weightOffset`: float32, or float16 bit patterns. */
  readonly weight: T["f32"] | T["u16"];
  readonly weightOffset: number;
  /** [2 * half] or null. */
  readonly bias: T["f32"] | null;
  readonly half: number;
  /** [rows, half]. */
  readonly out: T["f32"];
}

/** {@link GemmParams} with B given as float16 bit patterns (a half-precision weight). */
export type GemmHalfBParams<T extends BufferTypes = CpuBuffers> = Omit<GemmParams<T>, "b"> & {
  readonly b: T["u16"];
};

/**
 * Optional kernels that read float16 weights (IEEE half bit patterns) and widen them inside the kernel, so a
 * half-precision model never holds float32 copies of its weights. Ops use them when the backend has them and
 * widen the weight themselves otherwise.
 */
export interface HalfWeightKernels<T extends BufferTypes = CpuBuffers> {
  /** {@link Backend.gemm} with a float16 B operand. */
  gemmHalfB(p: GemmHalfBParams<T>): void;
  /** {@link Backend.conv2d} with float16 weights (contiguous [O, C/groups, kh, kw]). */
  conv2dHalfW(
    x: T["f32"],
    w: T["u16"],
    bias: T["f32"] | null,
    out: T["f32"],
    p: Conv2dParams,
    residual?: T["f32"] | null,
  ): void;
}

/** Parameters of {@link Backend.adamw}: one AdamW step on a contiguous float32 parameter, in place. */
export interface AdamWParams<T extends BufferTypes = CpuBuffers> {
  readonly param: T["f32"];
  readonly grad: T["f32"];
  readonly expAvg: T["f32"];
  readonly expAvgSq: T["f32"];
  /** AMSGrad's running maximum of expAvgSq, or null without AMSGrad */
  readonly maxExpAvgSq: T["f32"] | null;
  readonly size: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** 1 - lr * weightDecay (decoupled weight decay, Loshchilov & Hutter 2019) */
  readonly decay: number;
  /** lr / (1 - beta1^step) */
  readonly stepSize: number;
  /** sqrt(1 - beta2^step) */
  readonly bc2Sqrt: number;
}

/** Parameters of {@link Backend.sgd}: one SGD step (PyTorch's `torch.optim.SGD`) in place. */
export interface SgdParams<T extends BufferTypes = CpuBuffers> {
  readonly param: T["f32"];
  readonly grad: T["f32"];
  /** the momentum buffer, or null without momentum */
  readonly momentumBuffer: T["f32"] | null;
  /** the first step with momentum: the buffer starts as the gradient */
  readonly first: boolean;
  readonly size: number;
  readonly lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
}

export interface Backend<T extends BufferTypes = CpuBuffers> {
  readonly name: string;

  /** The device whose buffers these kernels read and write (`"cpu"` for the reference and native backends). */
  readonly device: string;

  /** That device's memory: allocation, upload, (asynchronous) readback, views, free. */
  readonly memory: DeviceMemory;

  /** Bytes the backend keeps on free lists for reuse, where it pools memory. */
  readonly pooledBytes?: () => number;

  /**
   * Whether gemm, conv2d and the half-weight kernels add the `residual` they are given (a skip connection fused
   * into the kernel). Ops hand a residual only to a backend that says so and add it themselves otherwise, so a
   * backend written before the parameter existed stays correct.
   */
  readonly fusesResidual?: boolean;

  /** Float16-weight kernels, when the backend has them. */
  readonly halfWeights?: HalfWeightKernels<T>;

  /**
   * A T["f32"] of `size` elements with unspecified contents, for a kernel output that the kernel writes in
   * full (the native backend recycles large ones from a pool instead of zero-filling fresh pages). Absent: use
   * `new T["f32"](size)`.
   */
  readonly allocate?: (size: number) => T["f32"];

  /**
   * Converts a strided view of dtype `from` into a contiguous `out` of dtype `to` over `shape` (float -> int
   * truncates toward zero, anything -> bool is `!= 0`; float16/bfloat16 round to nearest even).
   */
  cast(src: StridedAny<T>, from: DType, out: T["any"], to: DType, shape: readonly number[]): void;

  /** Writes `value` (converted to `dtype`) into elements [offset, offset + size) of `out`. */
  fill(out: T["any"], dtype: DType, value: number, offset: number, size: number): void;

  /** One AdamW step, in place on param / expAvg / expAvgSq (/ maxExpAvgSq). */
  adamw(p: AdamWParams<T>): void;

  /** One SGD step, in place on param (and the momentum buffer). */
  sgd(p: SgdParams<T>): void;

  /** Moves an average toward a value: `avg[i] -= weight * (avg[i] - x[i])` (EMA of weights), in place. */
  lerpTo(avg: T["f32"], x: T["f32"], weight: number, size: number): void;

  /** Copies a strided view of any dtype into a strided destination of the same storage type. */
  copy(src: StridedAny<T>, dst: StridedAny<T>, shape: readonly number[]): void;

  /** out[i] = op(x[i], p0, p1) for a strided x over `shape`; out contiguous. */
  unary(
    op: UnaryOp,
    x: StridedF32<T>,
    out: T["f32"],
    shape: readonly number[],
    p0?: number,
    p1?: number,
  ): void;

  /** out = op(a, b) with broadcasting expressed by 0 strides; out contiguous over `shape`. */
  binary(op: BinaryOp, a: StridedF32<T>, b: StridedF32<T>, out: T["f32"], shape: readonly number[]): void;

  /** out = cond ? a : b (cond is 0/1 bytes), all strided over `shape`. */
  where(
    cond: { data: T["u8"]; offset: number; strides: readonly number[] },
    a: StridedF32<T>,
    b: StridedF32<T>,
    out: T["f32"],
    shape: readonly number[],
  ): void;

  /** Reduces the middle axis of a contiguous [outer, n, inner] array into out [outer, inner]. argmax/argmin write indices. */
  reduce(op: ReduceOp, x: T["f32"], outer: number, n: number, inner: number, out: T["f32"]): void;

  /** Softmax (or log-softmax) over the last axis of a contiguous [rows, cols] array. */
  softmax(x: T["f32"], out: T["f32"], rows: number, cols: number, log: boolean): void;

  /** Batched strided matrix product. */
  gemm(p: GemmParams<T>): void;

  /**
   * Direct 2-D convolution: x [N, C, H, W], w [O, C/groups, kh, kw], bias [O] or null -> out [N, O, oh, ow];
   * plus `residual` (out's shape, another array) when given, added last (a skip connection fused into the kernel).
   */
  conv2d(
    x: T["f32"],
    w: T["f32"],
    bias: T["f32"] | null,
    out: T["f32"],
    p: Conv2dParams,
    residual?: T["f32"] | null,
  ): void;

  /**
   * Gradient of conv2d with respect to its input (also conv_transpose2d's forward):
   * gradOut [N, O, oh, ow], w [O, C/groups, kh, kw] -> gradIn [N, C, H, W].
   */
  conv2dBackwardInput(gradOut: T["f32"], w: T["f32"], gradIn: T["f32"], p: Conv2dParams): void;

  /** Gradient of conv2d with respect to its weight: x, gradOut -> gradW [O, C/groups, kh, kw]. */
  conv2dBackwardWeight(x: T["f32"], gradOut: T["f32"], gradW: T["f32"], p: Conv2dParams): void;

  /**
   * Group norm over x [N, C, spatial]: writes out, and the per-(n, group) mean and 1/std (length N*groups) that the
   * backward kernel needs. `silu` fuses a SiLU after the affine transform (forward only).
   */
  groupNorm(
    x: T["f32"],
    weight: T["f32"] | null,
    bias: T["f32"] | null,
    out: T["f32"],
    mean: T["f32"],
    rstd: T["f32"],
    n: number,
    c: number,
    spatial: number,
    groups: number,
    eps: number,
    silu: boolean,
  ): void;

  /** Backward of groupNorm (without fused SiLU). gradWeight/gradBias are written when non-null. */
  groupNormBackward(
    gradOut: T["f32"],
    x: T["f32"],
    weight: T["f32"] | null,
    mean: T["f32"],
    rstd: T["f32"],
    gradX: T["f32"],
    gradWeight: T["f32"] | null,
    gradBias: T["f32"] | null,
    n: number,
    c: number,
    spatial: number,
    groups: number,
  ): void;

  /** Layer norm over the last axis of [rows, cols]; writes per-row mean and 1/std. */
  layerNorm(
    x: T["f32"],
    weight: T["f32"] | null,
    bias: T["f32"] | null,
    out: T["f32"],
    mean: T["f32"],
    rstd: T["f32"],
    rows: number,
    cols: number,
    eps: number,
  ): void;

  layerNormBackward(
    gradOut: T["f32"],
    x: T["f32"],
    weight: T["f32"] | null,
    mean: T["f32"],
    rstd: T["f32"],
    gradX: T["f32"],
    gradWeight: T["f32"] | null,
    gradBias: T["f32"] | null,
    rows: number,
    cols: number,
  ): void;

  /**
   * GEGLU: out[r, j] = x[r, j] * gelu(x[r, half + j]) (exact erf GELU) for contiguous x [rows, 2 * half] and
   * out [rows, half]: diffusers' GEGLU with hidden, gate = chunk(2, -1).
   */
  geglu(x: T["f32"], out: T["f32"], rows: number, half: number): void;

  /** Fused attention forward (no gradients; the ops layer composes matmul/softmax when grad is needed). */
  attention(p: AttentionParams<T>): void;

  /**
   * Optional: a linear layer and GEGLU in one pass, out = geglu(x W^T + bias) (forward only), without the
   * [rows, 2 * half] projection in memory. Absent: the ops layer runs the linear layer, then {@link geglu}.
   */
  readonly linearGeglu?: (p: LinearGegluParams<T>) => void;

  /** Nearest-neighbour resize of [planes, h, w] to [planes, oh, ow] (PyTorch's mode "nearest"). */
  upsampleNearest(
    x: T["f32"],
    out: T["f32"],
    planes: number,
    h: number,
    w: number,
    oh: number,
    ow: number,
  ): void;

  /** Backward of upsampleNearest: sums gradOut [planes, oh, ow] into gradIn [planes, h, w]. */
  upsampleNearestBackward(
    gradOut: T["f32"],
    gradIn: T["f32"],
    planes: number,
    h: number,
    w: number,
    oh: number,
    ow: number,
  ): void;

  /** out[i, :] = table[ids[i], :] for a contiguous table [rows, cols]. */
  indexSelect(table: T["f32"], cols: number, ids: T["i32"], out: T["f32"]): void;

  /** gradTable[ids[i], :] += gradOut[i, :] (gradTable must be zeroed by the caller). */
  indexAdd(gradOut: T["f32"], cols: number, ids: T["i32"], gradTable: T["f32"]): void;
}
