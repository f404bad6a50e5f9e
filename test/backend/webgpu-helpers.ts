// Shared pieces of the WebGPU kernel tests: the backend under test (or why it is skipped), uploads and readbacks,
// and the comparison with the reference backend.
import assert from "node:assert/strict";
import { referenceBackend } from "../../src/backend/index.js";
import { initWebGpu, type WebGpuBackend } from "../../src/backend/webgpu/index.js";
import type { DeviceBuffer } from "../../src/tensor/device.js";
import type { DType, StorageArray } from "../../src/tensor/dtype.js";

export { testRng } from "../rng.js";

let backend: WebGpuBackend | null = null;
let reason: string | false = false;
try {
  backend = await initWebGpu();
} catch (e) {
  reason = `no WebGPU adapter: ${(e as Error).message}`;
}

/** The skip message when no adapter is available (false when the tests run). */
export const skip: string | false = reason;
/** The backend under test (only touch it when `skip` is false). */
export const gpu = backend as WebGpuBackend;
export const ref = referenceBackend;
/** The adapter the tests run on and the optional features the kernels use, for test names. */
export const adapter = backend
  ? `${backend.info.description}; ${
      ["subgroups", "shader-f16"].filter((f) => backend?.info.features.includes(f)).join(", ") ||
      "no subgroups or shader-f16"
    }`
  : "none";

/** A device copy of `data`. */
export function up(data: StorageArray, dtype: DType = "float32"): DeviceBuffer {
  return gpu.memory.upload(data, dtype);
}

/** A zeroed device buffer of `n` elements. */
export function zeros(n: number, dtype: DType = "float32"): DeviceBuffer {
  return gpu.memory.alloc(dtype, n);
}

/** Reads `n` float32 elements back. */
export async function down(buffer: DeviceBuffer, n: number): Promise<Float32Array> {
  return (await gpu.memory.read(buffer, "float32", 0, n)) as Float32Array;
}

/** Reads `n` elements of `dtype` back. */
export async function downAs(buffer: DeviceBuffer, dtype: DType, n: number): Promise<StorageArray> {
  return gpu.memory.read(buffer, dtype, 0, n);
}

export function randArray(n: number, rng: () => number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng();
  return a;
}

/**
 * Asserts max|got - want| <= tol * max(1, max|want|), with NaN where want has NaN and equal infinities: the GPU
 * computes in float32 with its own order of additions and its own exp/log, so the reference's float32 results are
 * matched to a few ulps of the output's scale, not bit for bit.
 */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 1;
  for (let i = 0; i < want.length; i++)
    if (Number.isFinite(want[i]!)) scale = Math.max(scale, Math.abs(want[i]!));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (Number.isNaN(w)) {
      assert.ok(Number.isNaN(g), `${what}[${i}]: want NaN, got ${g}`);
      continue;
    }
    if (!Number.isFinite(w)) {
      assert.equal(g, w, `${what}[${i}]`);
      continue;
    }
    const e = Math.abs(g - w);
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  assert.ok(
    worst <= tol * scale,
    `${what}: max error ${worst} at ${at} (got ${got[at]}, want ${want[at]}) > ${tol} x ${scale}`,
  );
}
