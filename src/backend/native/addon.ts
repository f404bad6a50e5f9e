// Loading the N-API addon built from native/ (build/Release/diffuse_native.node) and its call signatures.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { StorageArray } from "../../tensor/dtype.js";

type F32 = Float32Array;
/** float32 data, or float16 bit patterns (a half weight the kernel widens while packing) */
type F32OrHalf = Float32Array | Uint16Array;
type Ints = readonly number[];

/** The functions exported by diffuse_native.node (see native/src/addon.cc for the argument order). */
export interface NativeAddon {
  /** A Float32Array with unspecified contents; large ones come from a size-bucketed pool (native/src/pool.cc). */
  allocF32(size: number): Float32Array;
  /** Bytes held by pooled arrays that are alive / idle on free lists, and the pool's hit and miss counts. */
  poolStats(): { idleBytes: number; liveBytes: number; hits: number; misses: number };
  /** Frees every idle pooled block. */
  poolTrim(): void;
  /**
   * The whole file as an ArrayBuffer over a private, writable memory map (writes never reach the file), unmapped
   * when collected; null where maps are unavailable or the file is empty. Absent in addons built before it.
   */
  mapFile?(path: string): ArrayBuffer | null;
  gemm(
    a: F32OrHalf,
    aOffset: number,
    aBatchStride: number,
    aRowStride: number,
    aColStride: number,
    b: F32OrHalf,
    bOffset: number,
    bBatchStride: number,
    bRowStride: number,
    bColStride: number,
    out: F32,
    outOffset: number,
    batch: number,
    m: number,
    n: number,
    k: number,
    alpha: number,
    accumulate: boolean,
    bias: F32 | null,
    biasRows?: F32 | null,
    residual?: F32 | null,
    residualOffset?: number,
  ): void;
  conv2d(x: F32, w: F32OrHalf, bias: F32 | null, out: F32, params: Ints, residual?: F32 | null): void;
  conv2dBackwardInput(gradOut: F32, w: F32, gradIn: F32, params: Ints): void;
  conv2dBackwardWeight(x: F32, gradOut: F32, gradW: F32, params: Ints): void;
  unary(
    op: number,
    x: F32,
    xOffset: number,
    xStrides: Ints,
    out: F32,
    shape: Ints,
    p0: number,
    p1: number,
  ): void;
  binary(
    op: number,
    a: F32,
    aOffset: number,
    aStrides: Ints,
    b: F32,
    bOffset: number,
    bStrides: Ints,
    out: F32,
    shape: Ints,
  ): void;
  where(
    cond: Uint8Array,
    cOffset: number,
    cStrides: Ints,
    a: F32,
    aOffset: number,
    aStrides: Ints,
    b: F32,
    bOffset: number,
    bStrides: Ints,
    out: F32,
    shape: Ints,
  ): void;
  copy(
    src: StorageArray,
    srcOffset: number,
    srcStrides: Ints,
    dst: StorageArray,
    dstOffset: number,
    dstStrides: Ints,
    shape: Ints,
  ): void;
  reduce(op: number, x: F32, outer: number, n: number, inner: number, out: F32): void;
  softmax(x: F32, out: F32, rows: number, cols: number, log: boolean): void;
  groupNorm(
    x: F32,
    weight: F32 | null,
    bias: F32 | null,
    out: F32,
    mean: F32,
    rstd: F32,
    n: number,
    c: number,
    spatial: number,
    groups: number,
    eps: number,
    silu: boolean,
  ): void;
  groupNormBackward(
    gradOut: F32,
    x: F32,
    weight: F32 | null,
    mean: F32,
    rstd: F32,
    gradX: F32,
    gradWeight: F32 | null,
    gradBias: F32 | null,
    n: number,
    c: number,
    spatial: number,
    groups: number,
  ): void;
  layerNorm(
    x: F32,
    weight: F32 | null,
    bias: F32 | null,
    out: F32,
    mean: F32,
    rstd: F32,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  layerNormBackward(
    gradOut: F32,
    x: F32,
    weight: F32 | null,
    mean: F32,
    rstd: F32,
    gradX: F32,
    gradWeight: F32 | null,
    gradBias: F32 | null,
    rows: number,
    cols: number,
  ): void;
  geglu(x: F32, out: F32, rows: number, half: number): void;
  /** Nearest-neighbour resize of [planes, h, w] to [planes, oh, ow] (PyTorch's "nearest"); x and out disjoint. */
  upsampleNearest(x: F32, out: F32, planes: number, h: number, w: number, oh: number, ow: number): void;
  linearGeglu(
    x: F32,
    rows: number,
    inFeatures: number,
    w: F32 | Uint16Array,
    wOffset: number,
    bias: F32 | null,
    half: number,
    out: F32,
  ): void;
  attention(
    q: F32,
    k: F32,
    v: F32,
    out: F32,
    mask: F32 | null,
    batch: number,
    lq: number,
    lk: number,
    d: number,
    dv: number,
    scale: number,
    maskBatchStride: number,
    maskRowStride: number,
    heads: number,
    /** [offset, outerStride, headStride, rowStride] of q, k, v and out */
    layouts: Ints,
  ): void;
  /** The GEMM micro-kernel in use ("avx512", "avx2" or "portable") and the thread count. */
  info(): { kernel: string; threads: number };
  /** Resizes the thread pool; returns the new size. */
  setNumThreads(n: number): number;
  /** Forces the SIMD level of the GEMM micro-kernel and vector math ("avx512", "avx2", "portable"; "" = best for
   * this CPU); false (and the best kept) if the CPU cannot run it. */
  setKernel(name: string): boolean;
}

const ADDON_FILE = join("build", "Release", "diffuse_native.node");

/** Where the addon should be: DIFFUSE_NATIVE_PATH, else build/Release under the nearest folder that has it. */
function findAddon(): string | null {
  const explicit = process.env.DIFFUSE_NATIVE_PATH;
  if (explicit) return explicit;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, ADDON_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return null;
}

/** Loads the addon, or returns the reason it is unavailable. */
export function loadAddon(): { addon: NativeAddon } | { error: string } {
  if (typeof process === "undefined" || !process.versions?.node) return { error: "not running in Node.js" };
  const path = findAddon();
  if (!path) return { error: `${ADDON_FILE} not found` };
  try {
    const require = createRequire(import.meta.url);
    return { addon: require(path) as NativeAddon };
  } catch (e) {
    return { error: `loading ${path} failed: ${(e as Error).message.split("\n")[0]}` };
  }
}
