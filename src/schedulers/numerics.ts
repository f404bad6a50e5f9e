// NumPy/PyTorch-compatible scalar helpers. diffusers builds its schedules with numpy (float64) and torch (float32);
// reproducing its numbers exactly needs the same rounding rules, spelled out here once.

/** Rounds to the nearest float32 (numpy `astype(np.float32)`, torch float32 storage). */
export const f32 = Math.fround;

/** float32 fused multiply-add `a * b + c` (the product of two float32 values is exact in float64). */
export function fmaF32(a: number, b: number, c: number): number {
  return Math.fround(a * b + c);
}

/** Round half to even, as `np.round` / `torch.round` do (JavaScript's Math.round rounds halves up). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `np.linspace(start, stop, num)` in float64 (i * step + start, last value set to stop exactly). */
export function linspace64(start: number, stop: number, num: number, endpoint = true): number[] {
  const div = endpoint ? num - 1 : num;
  const step = (stop - start) / div;
  const out = new Array<number>(num);
  for (let i = 0; i < num; i++) out[i] = div > 0 ? i * step + start : start;
  if (endpoint && num > 1) out[num - 1] = stop;
  return out;
}

/**
 * `np.arange(start, stop, step)` in float64: length ceil((stop - start) / step), values start + i * delta with
 * delta = (start + step) - start, which is how numpy fills float ranges.
 */
export function arange64(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const delta = start + step - start;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = i === 0 ? start : start + i * delta;
  return out;
}

/**
 * `torch.linspace(start, end, steps, dtype=torch.float32)` on CPU, bit for bit: float32 arithmetic, the first half
 * counted up from `start` and the second half down from `end`, in blocks of 8 (the AVX2 kernel's
 * `Vectorized::arange(base, step)`, base computed with a fused multiply-add) with a scalar tail.
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 0) return out;
  const s = f32(start);
  const e = f32(end);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = f32(f32(e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  const base = (idx: number): number =>
    idx < half ? fmaF32(step, idx, s) : fmaF32(-step, steps - idx - 1, e);
  const V = 8;
  let i = 0;
  for (; i <= steps - 2 * V; i += V) {
    const b = base(i);
    for (let k = 0; k < V; k++) out[i + k] = f32(b + f32(k * step));
  }
  for (; i < steps; i++) out[i] = base(i);
  return out;
}

/** `np.interp(x, arange(len(fp)), fp)`: linear interpolation of a table indexed 0, 1, 2, ... */
export function interpIndex(x: number, fp: ArrayLike<number>): number {
  const n = fp.length;
  if (x <= 0) return fp[0]!;
  if (x >= n - 1) return fp[n - 1]!;
  const lo = Math.floor(x);
  if (lo === x) return fp[lo]!;
  const slope = fp[lo + 1]! - fp[lo]!;
  let y = slope * (x - lo) + fp[lo]!;
  if (Number.isNaN(y)) {
    y = slope * (x - lo - 1) + fp[lo + 1]!;
    if (Number.isNaN(y) && fp[lo] === fp[lo + 1]) y = fp[lo]!;
  }
  return y;
}
