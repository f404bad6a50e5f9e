// The native CPU backend: C++ kernels (native/) behind the Backend interface. Kernels it does not implement
// are the reference backend's, so it is always complete.
import {
  type Backend,
  type BinaryOp,
  type Conv2dParams,
  contiguousHeads,
  type GemmParams,
  type HeadLayout,
  type ReduceOp,
  type UnaryOp,
} from "../backend.js";
import { referenceBackend } from "../reference/index.js";
import { loadAddon, type NativeAddon } from "./addon.js";

export type { NativeAddon } from "./addon.js";

// Op codes: the order of the enums in native/src/elementwise.h and reduce.h.
const UNARY_OPS: readonly UnaryOp[] = [
  "neg",
  "exp",
  "log",
  "sqrt",
  "rsqrt",
  "abs",
  "sign",
  "tanh",
  "sigmoid",
  "silu",
  "gelu",
  "gelu_tanh",
  "relu",
  "sin",
  "cos",
  "square",
  "reciprocal",
  "floor",
  "ceil",
  "round",
  "pow_scalar",
  "clamp",
  "affine",
  "gelu_grad",
  "gelu_tanh_grad",
  "silu_grad",
  "erf",
];
const BINARY_OPS: readonly BinaryOp[] = [
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "maximum",
  "minimum",
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
];
const REDUCE_OPS: readonly ReduceOp[] = ["sum", "max", "min", "argmax", "argmin"];

/** DIFFUSE_POOL_POISON=1: every output comes from the pool filled with NaN (finds kernels that skip elements). */
const POISON_POOL = typeof process !== "undefined" && process.env.DIFFUSE_POOL_POISON === "1";

const codes = <T extends string>(names: readonly T[]) => new Map(names.map((name, i) => [name, i]));
const UNARY = codes(UNARY_OPS);
const BINARY = codes(BINARY_OPS);
const REDUCE = codes(REDUCE_OPS);

function convParams(p: Conv2dParams): number[] {
  return [
    p.batch,
    p.inChannels,
    p.inH,
    p.inW,
    p.outChannels,
    p.outH,
    p.outW,
    p.kernelH,
    p.kernelW,
    p.strideH,
    p.strideW,
    p.padH,
    p.padW,
    p.dilationH,
    p.dilationW,
    p.groups,
  ];
}

/** Wraps a loaded addon as a Backend named "native". */
export function createNativeBackend(addon: NativeAddon): Backend {
  const ref = referenceBackend;
  // B may be float16 bits: the addon widens them while packing
  const gemm = (p: Omit<GemmParams, "b"> & { readonly b: Float32Array | Uint16Array }) =>
    addon.gemm(
      p.a,
      p.aOffset,
      p.aBatchStride,
      p.aRowStride,
      p.aColStride,
      p.b,
      p.bOffset,
      p.bBatchStride,
      p.bRowStride,
      p.bColStride,
      p.out,
      p.outOffset,
      p.batch,
      p.m,
      p.n,
      p.k,
      p.alpha,
      p.accumulate,
      p.bias ?? null,
      p.biasRows ?? null,
      p.residual ?? null,
      p.residualOffset ?? 0,
    );
  return {
    ...ref,
    name: "native",
    pooledBytes: typeof addon.poolStats === "function" ? () => addon.poolStats().idleBytes : undefined,
    // small arrays: V8's own allocation is cheaper than a call into the addon (the test mode pools them all)
    allocate:
      typeof addon.allocF32 !== "function"
        ? undefined
        : POISON_POOL
          ? (size) => addon.allocF32(size)
          : (size) => (size < 65536 ? new Float32Array(size) : addon.allocF32(size)),

    halfWeights: {
      gemmHalfB: gemm,
      conv2dHalfW(x, w, bias, out, p, residual) {
        addon.conv2d(x, w, bias, out, convParams(p), residual ?? null);
      },
    },

    copy(src, dst, shape) {
      // different storage types (a conversion) are not a copy the addon does
      if (src.data.constructor !== dst.data.constructor) return ref.copy(src, dst, shape);
      addon.copy(src.data, src.offset, src.strides, dst.data, dst.offset, dst.strides, shape);
    },

    unary(op, x, out, shape, p0 = 0, p1 = 0) {
      const code = UNARY.get(op);
      if (code === undefined) return ref.unary(op, x, out, shape, p0, p1);
      addon.unary(code, x.data, x.offset, x.strides, out, shape, p0, p1);
    },

    binary(op, a, b, out, shape) {
      const code = BINARY.get(op);
      if (code === undefined) return ref.binary(op, a, b, out, shape);
      addon.binary(code, a.data, a.offset, a.strides, b.data, b.offset, b.strides, out, shape);
    },

    where(cond, a, b, out, shape) {
      addon.where(
        cond.data,
        cond.offset,
        cond.strides,
        a.data,
        a.offset,
        a.strides,
        b.data,
        b.offset,
        b.strides,
        out,
        shape,
      );
    },

    reduce(op, x, outer, n, inner, out) {
      const code = REDUCE.get(op);
      if (code === undefined) return ref.reduce(op, x, outer, n, inner, out);
      addon.reduce(code, x, outer, n, inner, out);
    },

    softmax(x, out, rows, cols, log) {
      addon.softmax(x, out, rows, cols, log);
    },

    gemm,

    conv2d(x, w, bias, out, p, residual) {
      addon.conv2d(x, w, bias, out, convParams(p), residual ?? null);
    },

    conv2dBackwardInput(gradOut, w, gradIn, p) {
      addon.conv2dBackwardInput(gradOut, w, gradIn, convParams(p));
    },

    conv2dBackwardWeight(x, gradOut, gradW, p) {
      addon.conv2dBackwardWeight(x, gradOut, gradW, convParams(p));
    },

    groupNorm(x, weight, bias, out, mean, rstd, n, c, spatial, groups, eps, silu) {
      addon.groupNorm(x, weight, bias, out, mean, rstd, n, c, spatial, groups, eps, silu);
    },

    groupNormBackward(gradOut, x, weight, mean, rstd, gradX, gradWeight, gradBias, n, c, spatial, groups) {
      addon.groupNormBackward(
        gradOut,
        x,
        weight,
        mean,
        rstd,
        gradX,
        gradWeight,
        gradBias,
        n,
        c,
        spatial,
        groups,
      );
    },

    layerNorm(x, weight, bias, out, mean, rstd, rows, cols, eps) {
      addon.layerNorm(x, weight, bias, out, mean, rstd, rows, cols, eps);
    },

    layerNormBackward(gradOut, x, weight, mean, rstd, gradX, gradWeight, gradBias, rows, cols) {
      addon.layerNormBackward(gradOut, x, weight, mean, rstd, gradX, gradWeight, gradBias, rows, cols);
    },

    geglu(x, out, rows, half) {
      addon.geglu(x, out, rows, half);
    },

    upsampleNearest(x, out, planes, h, w, oh, ow) {
      addon.upsampleNearest(x, out, planes, h, w, oh, ow);
    },

    linearGeglu(p) {
      addon.linearGeglu(p.x, p.rows, p.inFeatures, p.weight, p.weightOffset, p.bias, p.half, p.out);
    },

    attention(p) {
      const heads = p.heads ?? 1;
      const layout = (l: HeadLayout | undefined, rows: number, cols: number) => {
        const h = l ?? contiguousHeads(heads, rows, cols);
        return [h.offset, h.outerStride, h.headStride, h.rowStride];
      };
      addon.attention(
        p.q,
        p.k,
        p.v,
        p.out,
        p.mask ?? null,
        p.batch,
        p.lq,
        p.lk,
        p.d,
        p.dv,
        p.scale,
        p.maskBatchStride ?? 0,
        p.maskRowStride ?? 0,
        heads,
        [
          layout(p.qLayout, p.lq, p.d),
          layout(p.kLayout, p.lk, p.d),
          layout(p.vLayout, p.lk, p.dv),
          layout(p.outLayout, p.lq, p.dv),
        ].flat(),
      );
    },
  };
}

const loaded = loadAddon();

/** The loaded addon, or null when it is not built (see `nativeLoadError`). */
export const nativeAddon: NativeAddon | null = "addon" in loaded ? loaded.addon : null;

// DIFFUSE_NATIVE_KERNEL=avx2|avx512|portable forces a SIMD level below the CPU's best (to compare them, or to rule a
// kernel out); a level this CPU cannot run, or an unknown name, is an error rather than a silent fallback
if (nativeAddon && typeof process !== "undefined" && process.env?.DIFFUSE_NATIVE_KERNEL) {
  const wanted = process.env.DIFFUSE_NATIVE_KERNEL;
  const best = nativeAddon.info().kernel;
  if (!nativeAddon.setKernel(wanted))
    throw new Error(
      `DIFFUSE_NATIVE_KERNEL=${wanted}: expected avx512, avx2 or portable, one this CPU can run (its best is ${best})`,
    );
}

/** Why the addon could not be loaded, or null when it is loaded. */
export const nativeLoadError: string | null = "error" in loaded ? loaded.error : null;

/** The native backend, or null when the addon is not built. */
export const nativeBackend: Backend | null = nativeAddon ? createNativeBackend(nativeAddon) : null;

if (!nativeBackend && typeof process !== "undefined" && process.versions?.node) {
  const wanted = process.env.DIFFUSE_BACKEND;
  if (wanted !== "reference" && !process.env.DIFFUSE_QUIET_NATIVE) {
    console.warn(
      `diffuse: native CPU backend unavailable (${nativeLoadError}); using the slower reference backend. ` +
        "Build it with `npm run build:native`.",
    );
  }
}
