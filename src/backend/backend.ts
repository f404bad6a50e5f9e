import type { StorageArray } from "../tensor/dtype.js";

/**
 * The kernel contract. Kernels work on raw typed arrays and plain numbers; they know nothing of tensors,
 * autograd or dtype rules (the ops layer handles those). Every implementation (reference, native, WebGPU) must
 * give the reference backend's answers within float32 rounding.
 *
 * Conventions: float data is float32; outputs are contiguous row-major and fully written by the kernel (callers
 * may pass uninitialised/reused buffers) unless a parameter says "accumulate".
 */

/** A strided float32 view: element (i0, i1, ...) is at `data[offset + i0*strides[0] + i1*strides[1] + ...]`. */
export interface StridedF32 {
  readonly data: Float32Array;
  readonly offset: number;
  /** One stride per output dim; 0 for broadcast dims. */
  readonly strides: readonly number[];
}

/** A strided view of any storage type (used by copy). */
export interface StridedAny {
  readonly data: StorageArray;
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
export interface GemmParams {
  readonly batch: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  /** A[b][i][p] = a[aOffset + b*aBatchStride + i*aRowStride + p*aColStride] */
  readonly a: Float32Array;
  readonly aOffset: number;
  readonly aBatchStride: number;
  readonly aRowStride: number;
  readonly aColStride: number;
  /** B[b][p][j] = b[bOffset + b*bBatchStride + p*bRowStride + j*bColStride] */
  readonly b: Float32Array;
  readonly bOffset: number;
  readonly bBatchStride: number;
  readonly bRowStride: number;
  readonly bColStride: number;
  /** out is contiguous [batch, m, n] starting at outOffset */
  readonly out: Float32Array;
  readonly outOffset: number;
  readonly alpha: number;
  /** add into out instead of overwriting it */
  readonly accumulate: boolean;
  /** optional bias added to every row (length n), applied once */
  readonly bias?: Float32Array | null;
  /** optional bias added to every column (length m: one value per output row), applied once */
  readonly biasRows?: Float32Array | null;
  /**
   * optional residual added last, out = alpha A B (+ out) + biases + residual: contiguous [batch, m, n] starting at
   * residualOffset, another array than out (a residual connection fused into the product)
   */
  readonly residual?: Float32Array | null;
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
export interface AttentionParams {
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
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly out: Float32Array;
  /** heads per outer batch index of the layouts (default 1) */
  readonly heads?: number;
  readonly qLayout?: HeadLayout;
  readonly kLayout?: HeadLayout;
  readonly vLayout?: HeadLayout;
  readonly outLayout?: HeadLayout;
  /** optional additive mask, element (b, i, j) at mask[b*maskBatchStride + i*maskRowStride + j] */
  readonly mask?: Float32Array | null;
  readonly maskBatchStride?: number;
  readonly maskRowStride?: number;
}

/** Parameters of {@link Backend.linearGeglu}. */
export interface LinearGegluParams {
  /** Contiguous [rows, inFeatures]. */
  readonly x: Float32Array;
  readonly rows: number;
  readonly inFeatures: number;
  /** Contiguous [2 * half, inFeatures] from `weightOffset`: float32, or float16 bit patterns. */
  readonly weight: Float32Array | Uint16Array;
  readonly weightOffset: number;
  /** [2 * half] or null. */
  readonly bias: Float32Array | null;
  readonly half: number;
  /** [rows, half]. */
  readonly out: Float32Array;
}

/** {@link GemmParams} with B given as float16 bit patterns (a half-precision weight). */
export type GemmHalfBParams = Omit<GemmParams, "b"> & { readonly b: Uint16Array };

/**
 * Optional kernels that read float16 weights (IEEE half bit patterns) and widen them inside the kernel, so a
 * half-precision model never holds float32 copies of its weights. Ops use them when the backend has them and
 * widen the weight themselves otherwise.
 */
export interface HalfWeightKernels {
  /** {@link Backend.gemm} with a float16 B operand. */
  gemmHalfB(p: GemmHalfBParams): void;
  /** {@link Backend.conv2d} with float16 weights (contiguous [O, C/groups, kh, kw]). */
  conv2dHalfW(
    x: Float32Array,
    w: Uint16Array,
    bias: Float32Array | null,
    out: Float32Array,
    p: Conv2dParams,
    residual?: Float32Array | null,
  ): void;
}

export interface Backend {
  readonly name: string;

  /**
   * Whether gemm, conv2d and the half-weight kernels add the `residual` they are given (a skip connection fused
   * into the kernel). Ops hand a residual only to a backend that says so and add it themselves otherwise, so a
   * backend written before the parameter existed stays correct.
   */
  readonly fusesResidual?: boolean;

  /** Float16-weight kernels, when the backend has them. */
  readonly halfWeights?: HalfWeightKernels;

  /**
   * A Float32Array of `size` elements with unspecified contents, for a kernel output that the kernel writes in
   * full (the native backend recycles large ones from a pool instead of zero-filling fresh pages). Absent: use
   * `new Float32Array(size)`.
   */
  readonly allocate?: (size: number) => Float32Array;

  /** Copies a strided view of any dtype into a strided destination of the same storage type. */
  copy(src: StridedAny, dst: StridedAny, shape: readonly number[]): void;

  /** out[i] = op(x[i], p0, p1) for a strided x over `shape`; out contiguous. */
  unary(
    op: UnaryOp,
    x: StridedF32,
    out: Float32Array,
    shape: readonly number[],
    p0?: number,
    p1?: number,
  ): void;

  /** out = op(a, b) with broadcasting expressed by 0 strides; out contiguous over `shape`. */
  binary(op: BinaryOp, a: StridedF32, b: StridedF32, out: Float32Array, shape: readonly number[]): void;

  /** out = cond ? a : b (cond is 0/1 bytes), all strided over `shape`. */
  where(
    cond: { data: Uint8Array; offset: number; strides: readonly number[] },
    a: StridedF32,
    b: StridedF32,
    out: Float32Array,
    shape: readonly number[],
  ): void;

  /** Reduces the middle axis of a contiguous [outer, n, inner] array into out [outer, inner]. argmax/argmin write indices. */
  reduce(op: ReduceOp, x: Float32Array, outer: number, n: number, inner: number, out: Float32Array): void;

  /** Softmax (or log-softmax) over the last axis of a contiguous [rows, cols] array. */
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number, log: boolean): void;

  /** Batched strided matrix product. */
  gemm(p: GemmParams): void;

  /**
   * Direct 2-D convolution: x [N, C, H, W], w [O, C/groups, kh, kw], bias [O] or null -> out [N, O, oh, ow];
   * plus `residual` (out's shape, another array) when given, added last (a skip connection fused into the kernel).
   */
  conv2d(
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | null,
    out: Float32Array,
    p: Conv2dParams,
    residual?: Float32Array | null,
  ): void;

  /**
   * Gradient of conv2d with respect to its input (also conv_transpose2d's forward):
   * gradOut [N, O, oh, ow], w [O, C/groups, kh, kw] -> gradIn [N, C, H, W].
   */
  conv2dBackwardInput(gradOut: Float32Array, w: Float32Array, gradIn: Float32Array, p: Conv2dParams): void;

  /** Gradient of conv2d with respect to its weight: x, gradOut -> gradW [O, C/groups, kh, kw]. */
  conv2dBackwardWeight(x: Float32Array, gradOut: Float32Array, gradW: Float32Array, p: Conv2dParams): void;

  /**
   * Group norm over x [N, C, spatial]: writes out, and the per-(n, group) mean and 1/std (length N*groups) that the
   * backward kernel needs. `silu` fuses a SiLU after the affine transform (forward only).
   */
  groupNorm(
    x: Float32Array,
    weight: Float32Array | null,
    bias: Float32Array | null,
    out: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    n: number,
    c: number,
    spatial: number,
    groups: number,
    eps: number,
    silu: boolean,
  ): void;

  /** Backward of groupNorm (without fused SiLU). gradWeight/gradBias are written when non-null. */
  groupNormBackward(
    gradOut: Float32Array,
    x: Float32Array,
    weight: Float32Array | null,
    mean: Float32Array,
    rstd: Float32Array,
    gradX: Float32Array,
    gradWeight: Float32Array | null,
    gradBias: Float32Array | null,
    n: number,
    c: number,
    spatial: number,
    groups: number,
  ): void;

  /** Layer norm over the last axis of [rows, cols]; writes per-row mean and 1/std. */
  layerNorm(
    x: Float32Array,
    weight: Float32Array | null,
    bias: Float32Array | null,
    out: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    rows: number,
    cols: number,
    eps: number,
  ): void;

  layerNormBackward(
    gradOut: Float32Array,
    x: Float32Array,
    weight: Float32Array | null,
    mean: Float32Array,
    rstd: Float32Array,
    gradX: Float32Array,
    gradWeight: Float32Array | null,
    gradBias: Float32Array | null,
    rows: number,
    cols: number,
  ): void;

  /**
   * GEGLU: out[r, j] = x[r, j] * gelu(x[r, half + j]) (exact erf GELU) for contiguous x [rows, 2 * half] and
   * out [rows, half]: diffusers' GEGLU with hidden, gate = chunk(2, -1).
   */
  geglu(x: Float32Array, out: Float32Array, rows: number, half: number): void;

  /** Fused attention forward (no gradients; the ops layer composes matmul/softmax when grad is needed). */
  attention(p: AttentionParams): void;

  /**
   * Optional: a linear layer and GEGLU in one pass, out = geglu(x W^T + bias) (forward only), without the
   * [rows, 2 * half] projection in memory. Absent: the ops layer runs the linear layer, then {@link geglu}.
   */
  readonly linearGeglu?: (p: LinearGegluParams) => void;

  /** Nearest-neighbour resize of [planes, h, w] to [planes, oh, ow] (PyTorch's mode "nearest"). */
  upsampleNearest(
    x: Float32Array,
    out: Float32Array,
    planes: number,
    h: number,
    w: number,
    oh: number,
    ow: number,
  ): void;

  /** Backward of upsampleNearest: sums gradOut [planes, oh, ow] into gradIn [planes, h, w]. */
  upsampleNearestBackward(
    gradOut: Float32Array,
    gradIn: Float32Array,
    planes: number,
    h: number,
    w: number,
    oh: number,
    ow: number,
  ): void;

  /** out[i, :] = table[ids[i], :] for a contiguous table [rows, cols]. */
  indexSelect(table: Float32Array, cols: number, ids: Int32Array, out: Float32Array): void;

  /** gradTable[ids[i], :] += gradOut[i, :] (gradTable must be zeroed by the caller). */
  indexAdd(gradOut: Float32Array, cols: number, ids: Int32Array, gradTable: Float32Array): void;
}
