/**
 * Data types. Compute happens in float32; float16 and bfloat16 are storage formats (raw 16-bit patterns in a
 * Uint16Array) that kernels widen to float32. Integer types hold ids and masks.
 */
export type DType =
  | "float32"
  | "float16"
  | "bfloat16"
  | "int32"
  | "int64"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

/** The typed array that stores each dtype. float16/bfloat16 keep their raw bit patterns. */
export interface StorageArrayOf {
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  int16: Int16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

export type StorageArray = StorageArrayOf[DType];

export const DTYPES: readonly DType[] = [
  "float32",
  "float16",
  "bfloat16",
  "int32",
  "int64",
  "int16",
  "int8",
  "uint8",
  "bool",
];

/** Bytes per element. */
export function itemSize(dtype: DType): number {
  switch (dtype) {
    case "float32":
    case "int32":
      return 4;
    case "float16":
    case "bfloat16":
    case "int16":
      return 2;
    case "int64":
      return 8;
    case "int8":
    case "uint8":
    case "bool":
      return 1;
  }
}

export function isFloating(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float16" || dtype === "bfloat16";
}

/** Allocates a zero-filled storage array for `size` elements of `dtype`. */
export function allocStorage<D extends DType>(dtype: D, size: number): StorageArrayOf[D] {
  return new (storageConstructor(dtype))(size) as StorageArrayOf[D];
}

type StorageCtor = new (n: number) => StorageArray;

export function storageConstructor(dtype: DType): StorageCtor {
  switch (dtype) {
    case "float32":
      return Float32Array;
    case "float16":
    case "bfloat16":
      return Uint16Array;
    case "int32":
      return Int32Array;
    case "int64":
      return BigInt64Array;
    case "int16":
      return Int16Array;
    case "int8":
      return Int8Array;
    case "uint8":
    case "bool":
      return Uint8Array;
  }
}

// --- half-precision conversion -------------------------------------------------------------------------------

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float16 bit pattern -> number (exact). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number -> float16 bit pattern, round to nearest even (as PyTorch's `.half()`). */
export function floatToHalf(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // subnormal half (or zero): shift the implicit bit in and round to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** bfloat16 bit pattern -> number (exact). */
export function bfloat16ToFloat(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0]!;
}

/** number -> bfloat16 bit pattern, round to nearest even (as PyTorch). NaN stays NaN. */
export function floatToBfloat16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Widens a float16 array to float32. */
export function halfArrayToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  // A 64K-entry table makes widening a lookup; built once on first use (256 KiB).
  const table = halfTable ?? buildHalfTable();
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}

let halfTable: Float32Array | undefined;
function buildHalfTable(): Float32Array {
  halfTable = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) halfTable[i] = halfToFloat(i);
  return halfTable;
}

/** Widens a bfloat16 array to float32. */
export function bfloat16ArrayToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

export function float32ArrayToHalf(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = floatToHalf(src[i]!);
  return out;
}

export function float32ArrayToBfloat16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = floatToBfloat16(src[i]!);
  return out;
}

/** Converts a whole storage array from one dtype to another (new array). */
export function convertStorage(src: StorageArray, from: DType, to: DType): StorageArray {
  if (from === to) return src.slice();
  const n = src.length;
  // to float32 first
  let f: Float32Array | undefined;
  if (from === "float32") f = src as Float32Array;
  else if (from === "float16") f = halfArrayToFloat32(src as Uint16Array);
  else if (from === "bfloat16") f = bfloat16ArrayToFloat32(src as Uint16Array);
  if (f) {
    if (to === "float32") return from === "float32" ? f.slice() : f;
    if (to === "float16") return float32ArrayToHalf(f);
    if (to === "bfloat16") return float32ArrayToBfloat16(f);
    const out = allocStorage(to, n);
    if (to === "int64") {
      const o = out as BigInt64Array;
      for (let i = 0; i < n; i++) o[i] = BigInt(Math.trunc(f[i]!));
    } else if (to === "bool") {
      for (let i = 0; i < n; i++) out[i] = f[i] !== 0 ? 1 : 0;
    } else {
      const o = out as Int32Array;
      for (let i = 0; i < n; i++) o[i] = Math.trunc(f[i]!);
    }
    return out;
  }
  // integer source
  const out = allocStorage(to, n);
  const get: (i: number) => number =
    from === "int64" ? (i) => Number((src as BigInt64Array)[i]!) : (i) => (src as Int32Array)[i]!;
  if (to === "int64") {
    const o = out as BigInt64Array;
    for (let i = 0; i < n; i++) o[i] = BigInt(get(i));
  } else if (to === "float16") {
    for (let i = 0; i < n; i++) out[i] = floatToHalf(get(i));
  } else if (to === "bfloat16") {
    for (let i = 0; i < n; i++) out[i] = floatToBfloat16(get(i));
  } else if (to === "bool") {
    for (let i = 0; i < n; i++) out[i] = get(i) !== 0 ? 1 : 0;
  } else {
    const o = out as Float32Array;
    for (let i = 0; i < n; i++) o[i] = get(i);
  }
  return out;
}
