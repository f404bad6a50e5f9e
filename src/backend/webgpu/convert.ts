// Copies and casts between every dtype, and fills: raw bits moved between bindings of one element width (1, 2,
// 4 or 8 bytes; sub-word elements share words, written with atomics), conversions through float32 or int32.
import type { DType } from "../../tensor/dtype.js";
import { convertStorage } from "../../tensor/dtype.js";
import { contiguousStrides } from "../../tensor/shape.js";
import type { Backend, BufferTypes, StridedAny } from "../backend.js";
import { gpuBuffer } from "./memory.js";
import { entry1d, type GpuRuntime, Params } from "./runtime.js";
import {
  bindingType,
  declare,
  HALF,
  loadBits,
  SLOT_EXTRA,
  STRIDED,
  storeBits,
  widthOf,
  writeStrided,
} from "./wgsl.js";

type Bufs = BufferTypes & { f32: unknown; any: unknown };

/** copy, cast and fill on `rt`. */
export function convertKernels(rt: GpuRuntime): Pick<Backend<Bufs>, "copy" | "cast" | "fill"> {
  // copies move raw bits between bindings of one width
  const copyPipe = (width: 1 | 2 | 4 | 8) =>
    rt.pipeline(`copy:${width}`, () =>
      [
        declare(1, "src", bindingType(width, false), false),
        declare(2, "dst", bindingType(width, true), true),
        STRIDED,
        loadBits("src", width),
        storeBits("dst", width),
        entry1d(`  if (gid >= pu(0u)) { return; }
  let s = u32(stridedOffset(0u, gid));
  let d = u32(stridedOffset(1u, gid));
  ${width === 8 ? "store_dst(d, load_src(s), loadHi_src(s));" : "store_dst(d, load_src(s));"}`),
      ].join("\n"),
    );

  const castPipe = (from: DType, to: DType) =>
    rt.pipeline(`cast:${from}:${to}`, () => {
      const wf = widthOf(from);
      const wt = widthOf(to);
      const intPath = !isFloat(from) && !isFloat(to);
      const value = intPath ? readInt(from) : readFloat(from);
      return [
        declare(1, "src", bindingType(wf, false), false),
        declare(2, "dst", bindingType(wt, true), true),
        STRIDED,
        HALF,
        loadBits("src", wf),
        storeBits("dst", wt),
        entry1d(`  if (gid >= pu(0u)) { return; }
  let bits = load_src(u32(stridedOffset(0u, gid)));
  let v = ${value};
  let o = pu(${SLOT_EXTRA}u) + gid;
  ${intPath ? writeFromInt(to) : writeFromFloat(to)}`),
      ].join("\n");
    });

  const fillPipe = (width: 1 | 2 | 4 | 8) =>
    rt.pipeline(`fill:${width}`, () =>
      [
        declare(1, "dst", bindingType(width, true), true),
        storeBits("dst", width),
        entry1d(`  if (gid >= pu(0u)) { return; }
  ${width === 8 ? "store_dst(pu(1u) + gid, pu(2u), pu(3u));" : "store_dst(pu(1u) + gid, pu(2u));"}`),
      ].join("\n"),
    );

  return {
    copy(src: StridedAny<Bufs>, dst: StridedAny<Bufs>, shape: readonly number[]): void {
      copyStrided(rt, copyPipe, src, dst, shape, gpuBuffer(src.data).width);
    },

    cast(src: StridedAny<Bufs>, from: DType, out: unknown, to: DType, shape: readonly number[]): void {
      const s = gpuBuffer(src.data);
      const o = gpuBuffer(out);
      if (from === to) {
        copyStrided(
          rt,
          copyPipe,
          src,
          { data: out, offset: 0, strides: contiguousStrides(shape) },
          shape,
          widthOf(from),
        );
        return;
      }
      const p = new Params();
      const n = writeStrided(p, shape, [
        { offset: s.first(widthOf(from)) + src.offset, strides: src.strides },
      ]);
      if (n === 0) return;
      p.at(SLOT_EXTRA).u(o.first(widthOf(to)));
      rt.dispatch(castPipe(from, to), p, [{ buffer: s.gpu }, { buffer: o.gpu, write: true }], { threads: n });
    },

    fill(out: unknown, dtype: DType, value: number, offset: number, size: number): void {
      if (size === 0) return;
      const o = gpuBuffer(out);
      const w = widthOf(dtype);
      const [lo, hi] = bitsOf(dtype, value);
      const p = new Params()
        .u(size)
        .u(o.first(w) + offset)
        .u(lo)
        .u(hi);
      rt.dispatch(fillPipe(w), p, [{ buffer: o.gpu, write: true }], { threads: size });
    },
  };
}

function copyStrided(
  rt: GpuRuntime,
  pipe: (w: 1 | 2 | 4 | 8) => GPUComputePipeline,
  src: StridedAny<Bufs>,
  dst: StridedAny<Bufs>,
  shape: readonly number[],
  width: 1 | 2 | 4 | 8,
): void {
  const s = gpuBuffer(src.data);
  const d = gpuBuffer(dst.data);
  const p = new Params();
  const n = writeStrided(p, shape, [
    { offset: s.first(width) + src.offset, strides: src.strides },
    { offset: d.first(width) + dst.offset, strides: dst.strides },
  ]);
  if (n === 0) return;
  rt.dispatch(pipe(width), p, [{ buffer: s.gpu }, { buffer: d.gpu, write: true }], { threads: n });
}

const isFloat = (d: DType): boolean => d === "float32" || d === "float16" || d === "bfloat16";

/** WGSL expression: the f32 value of `bits` of dtype `d`. */
function readFloat(d: DType): string {
  switch (d) {
    case "float32":
      return "bitcast<f32>(bits)";
    case "float16":
      return "halfToF32(bits)";
    case "bfloat16":
      return "bf16ToF32(bits)";
    default:
      return `f32(${readInt(d)})`;
  }
}

/** WGSL expression: the i32 value of `bits` of integer dtype `d` (int64: its low word). */
function readInt(d: DType): string {
  switch (d) {
    case "int16":
      return "(bitcast<i32>(bits << 16u) >> 16u)";
    case "int8":
      return "(bitcast<i32>(bits << 24u) >> 24u)";
    case "uint8":
    case "bool":
      return "i32(bits)";
    default:
      return "bitcast<i32>(bits)";
  }
}

/** WGSL statement: store f32 `v` as dtype `d` at element `o` of dst. */
function writeFromFloat(d: DType): string {
  switch (d) {
    case "float32":
      return "store_dst(o, bitcast<u32>(v));";
    case "float16":
      return "store_dst(o, f32ToHalf(v));";
    case "bfloat16":
      return "store_dst(o, f32ToBf16(v));";
    case "bool":
      return "store_dst(o, select(0u, 1u, v != 0.0));";
    case "int64":
      return "let t = i32(trunc(v)); store_dst(o, bitcast<u32>(t), select(0u, 0xffffffffu, t < 0));";
    default:
      return "store_dst(o, bitcast<u32>(i32(trunc(v))));";
  }
}

/** WGSL statement: store i32 `v` as integer dtype `d` at element `o` of dst. */
function writeFromInt(d: DType): string {
  switch (d) {
    case "bool":
      return "store_dst(o, select(0u, 1u, v != 0));";
    case "int64":
      return "store_dst(o, bitcast<u32>(v), select(0u, 0xffffffffu, v < 0));";
    default:
      return "store_dst(o, bitcast<u32>(v));";
  }
}

/** The raw bits of `value` as dtype `d` (the dtype's own conversion rule), as two 32-bit words. */
function bitsOf(d: DType, value: number): [number, number] {
  if (d === "int64") {
    const v = BigInt.asUintN(64, BigInt(Math.trunc(value)));
    return [Number(v & 0xffffffffn), Number(v >> 32n)];
  }
  const one = convertStorage(Float32Array.of(value), "float32", d);
  const bytes = new Uint8Array(one.buffer, one.byteOffset, one.byteLength);
  const word = new Uint8Array(4);
  word.set(bytes);
  return [new Uint32Array(word.buffer)[0]!, 0];
}
