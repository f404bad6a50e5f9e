// WGSL building blocks shared by the kernels: strided addressing from the parameter block, exact float16 /
// bfloat16 conversions, and element access for every storage width.
import { DeviceError } from "../../tensor/device.js";
import { type DType, itemSize } from "../../tensor/dtype.js";
import type { Params } from "./runtime.js";

/** Dims a strided kernel addresses at most (after merging dims that are contiguous for every operand). */
export const MAX_RANK = 8;
/** Parameter slots of strided addressing: n, rank, shape[8], then per operand an offset and 8 strides. */
export const SLOT_N = 0;
export const SLOT_RANK = 1;
export const SLOT_SHAPE = 2;
export const operandSlot = (k: number): number => 10 + 9 * k;
/** Slot of the first kernel-specific value after three strided operands. */
export const SLOT_EXTRA = 37;

/** WGSL: the element offset of output element `i` in strided operand `k`. */
export const STRIDED = /* wgsl */ `
fn stridedOffset(k: u32, i: u32) -> i32 {
  var rem = i;
  let base = 10u + 9u * k;
  var off = pi(base);
  for (var d = i32(pu(1u)) - 1; d >= 0; d--) {
    let s = pu(2u + u32(d));
    off += i32(rem % s) * pi(base + 1u + u32(d));
    rem = rem / s;
  }
  return off;
}
`;

/** A strided operand: element offset and one stride per dim. */
export interface StridedView {
  readonly offset: number;
  readonly strides: readonly number[];
}

/**
 * Merges dims that are contiguous in every operand and drops size-1 dims, so that most elementwise work runs
 * over one or two dims. Returns the merged shape and each operand's strides.
 */
export function mergeDims(
  shape: readonly number[],
  views: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = views.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    const size = shape[d]!;
    if (size === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && views.every((s, k) => outStrides[k]![last] === s[d]! * size)) {
      outShape[last]! *= size;
      for (let k = 0; k < views.length; k++) outStrides[k]![last] = views[k]![d]!;
      continue;
    }
    outShape.push(size);
    for (let k = 0; k < views.length; k++) outStrides[k]!.push(views[k]![d]!);
  }
  return { shape: outShape, strides: outStrides };
}

/** Writes n, rank, shape and the operands' offsets/strides into `p` (after merging dims). */
export function writeStrided(p: Params, shape: readonly number[], views: readonly StridedView[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  const merged = mergeDims(
    shape,
    views.map((v) => v.strides),
  );
  if (merged.shape.length > MAX_RANK) {
    throw new DeviceError(
      `webgpu: a strided view of ${merged.shape.length} non-mergeable dims (at most ${MAX_RANK}); make the tensor contiguous first`,
    );
  }
  p.at(SLOT_N).u(n).u(merged.shape.length);
  for (let d = 0; d < MAX_RANK; d++) p.u(merged.shape[d] ?? 1);
  views.forEach((v, k) => {
    p.at(operandSlot(k)).i(v.offset);
    for (let d = 0; d < MAX_RANK; d++) p.i(merged.strides[k]![d] ?? 0);
  });
  return n;
}

/** WGSL: exact IEEE half and bfloat16 conversions (round to nearest even, as the CPU backends). */
export const HALF = /* wgsl */ `
fn halfToF32(h: u32) -> f32 {
  let s = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) {
    let v = f32(m) * 5.9604644775390625e-8;
    return select(v, -v, s != 0u);
  }
  if (e == 31u) { return bitcast<f32>(s | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(s | ((e + 112u) << 23u) | (m << 13u));
}
fn f32ToHalf(f: f32) -> u32 {
  let x = bitcast<u32>(f);
  let sign = (x >> 16u) & 0x8000u;
  let e = i32((x >> 23u) & 0xffu);
  var m = x & 0x7fffffu;
  if (e == 255) { return sign | 0x7c00u | select(0u, 0x200u | (m >> 13u), m != 0u); }
  let he = e - 112;
  if (he >= 31) { return sign | 0x7c00u; }
  if (he <= 0) {
    if (he < -10) { return sign; }
    m = m | 0x800000u;
    let shift = u32(14 - he);
    var hm = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (hm & 1u) == 1u)) { hm += 1u; }
    return sign | hm;
  }
  let hm = m >> 13u;
  let rem = m & 0x1fffu;
  var r = sign | (u32(he) << 10u) | hm;
  if (rem > 0x1000u || (rem == 0x1000u && (hm & 1u) == 1u)) { r += 1u; }
  return r;
}
fn bf16ToF32(b: u32) -> f32 { return bitcast<f32>(b << 16u); }
fn f32ToBf16(f: f32) -> u32 {
  let x = bitcast<u32>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) { return ((x >> 16u) & 0x8000u) | 0x7fc0u; }
  return (x + 0x7fffu + ((x >> 16u) & 1u)) >> 16u;
}
`;

/** Bytes per element as stored on the GPU (every dtype keeps its CPU width). */
export function widthOf(dtype: DType): 1 | 2 | 4 | 8 {
  return itemSize(dtype) as 1 | 2 | 4 | 8;
}

/** WGSL: read element `i` of a binding of `width`-byte elements as raw bits (u32; int64 gives its low word). */
export function loadBits(binding: string, width: 1 | 2 | 4 | 8, atomic = false): string {
  const word = (idx: string) => (atomic ? `atomicLoad(&${binding}[${idx}])` : `${binding}[${idx}]`);
  switch (width) {
    case 4:
      return `fn load_${binding}(i: u32) -> u32 { return ${word("i")}; }`;
    case 8:
      return `fn load_${binding}(i: u32) -> u32 { return ${word("2u * i")}; }
fn loadHi_${binding}(i: u32) -> u32 { return ${word("2u * i + 1u")}; }`;
    case 2:
      return `fn load_${binding}(i: u32) -> u32 { return (${word("i >> 1u")} >> ((i & 1u) * 16u)) & 0xffffu; }`;
    case 1:
      return `fn load_${binding}(i: u32) -> u32 { return (${word("i >> 2u")} >> ((i & 3u) * 8u)) & 0xffu; }`;
  }
}

/**
 * WGSL: write raw bits of element `i` of a binding of `width`-byte elements. Sub-word widths share words between
 * threads, so the binding is `array<atomic<u32>>` and the bits are swapped in with atomic and/or.
 */
export function storeBits(binding: string, width: 1 | 2 | 4 | 8): string {
  switch (width) {
    case 4:
      return `fn store_${binding}(i: u32, v: u32) { ${binding}[i] = v; }`;
    case 8:
      return `fn store_${binding}(i: u32, v: u32, hi: u32) { ${binding}[2u * i] = v; ${binding}[2u * i + 1u] = hi; }`;
    case 2:
    case 1: {
      const per = 4 / width;
      const mask = width === 2 ? "0xffffu" : "0xffu";
      return `fn store_${binding}(i: u32, v: u32) {
  let shift = (i % ${per}u) * ${width * 8}u;
  let w = i / ${per}u;
  atomicAnd(&${binding}[w], ~(${mask} << shift));
  atomicOr(&${binding}[w], (v & ${mask}) << shift);
}`;
    }
  }
}

/** WGSL type of a binding holding elements of `width` bytes (`write`: sub-word bindings are atomic). */
export function bindingType(width: 1 | 2 | 4 | 8, write: boolean): string {
  return width < 4 && write ? "array<atomic<u32>>" : "array<u32>";
}

/** WGSL declaration of binding `index` named `name`. */
export function declare(index: number, name: string, type: string, write: boolean): string {
  return `@group(0) @binding(${index}) var<storage, ${write ? "read_write" : "read"}> ${name}: ${type};`;
}
