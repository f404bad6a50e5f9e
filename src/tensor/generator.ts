/**
 * Seeded random number generator, bit-compatible with PyTorch's CPU generator (`torch.Generator()`).
 *
 * The engine is MT19937 (Matsumoto & Nishimura 1998) seeded like `at::mt19937` (Knuth's initialisation of the low 32
 * bits of the seed). On top of its 32-bit outputs, PyTorch's CPU kernels draw:
 * - `torch.rand` (float32): `(u32 & 0xffffff) * 2^-24`, one output per value.
 * - `torch.randn` (float32) with n >= 16: n such floats, then Box-Muller (1958) on each block of 16 pairing value j
 *   with j + 8; a trailing partial block is handled by drawing 16 fresh floats for the last 16 slots and transforming
 *   them again. On x86 this runs PyTorch's AVX2 kernel, whose log/sincos are Cephes polynomials (avx_mathfun.h)
 *   evaluated in float32 with the multiply-adds fused into FMAs by the compiler; {@link boxMuller16} reproduces that
 *   arithmetic operation by operation, so results match x86 PyTorch builds bit for bit.
 * - `torch.randn` with n < 16: a float64 Box-Muller per pair from 53-bit uniforms (two outputs each, the first is the
 *   high word), returning `r cos` and caching `r sin` in the generator for the next scalar draw.
 */
import { ArgumentError } from "./errors.js";

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df | 0;
/** `c10::detail::default_rng_seed_val`: the seed of a `torch.Generator()` nobody seeded. */
const DEFAULT_SEED = 67280421310721n;
/** Size of PyTorch's `CPUGeneratorImplState` (what `torch.Generator.get_state()` returns). */
const STATE_BYTES = 5056;
const TWO_POW_M24 = 2 ** -24;
const TWO_POW_M53 = 2 ** -53;
const TWO_POW_32 = 2 ** 32;

const fr = Math.fround;

/** fp32 fused multiply-add `a * b + c` with one rounding (the product of two floats is exact in float64). */
function fmaf(a: number, b: number, c: number): number {
  const s = a * b + c;
  const r = fr(s);
  const h = s - r;
  // Rounding the float64 sum s to float can differ from rounding the exact a * b + c only when s sits exactly
  // halfway between two floats (then r + 2h is the other one); the TwoSum error of s then breaks the tie. (When s is
  // a float, h = 0 and both candidates are r.)
  const other = r + 2 * h;
  if (fr(other) !== other) return r;
  const p = a * b;
  const bb = s - p;
  const err = p - (s - bb) + (c - bb);
  return err !== 0 && err > 0 === h > 0 ? other : r;
}

// float32 constants of avx_mathfun.h (Cephes logf / sinf / cosf).
const SQRTHF = fr(Math.SQRT1_2);
const LOG_P0 = fr(7.0376836292e-2);
const LOG_P1 = fr(-1.151461031e-1);
const LOG_P2 = fr(1.167699874e-1);
const LOG_P3 = fr(-1.2420140846e-1);
const LOG_P4 = fr(1.4249322787e-1);
const LOG_P5 = fr(-1.6668057665e-1);
const LOG_P6 = fr(2.0000714765e-1);
const LOG_P7 = fr(-2.4999993993e-1);
const LOG_P8 = fr(3.3333331174e-1);
const LOG_Q1 = fr(-2.1219444e-4);
const LOG_Q2 = fr(0.693359375);
const FOPI = fr(1.27323954473516); // 4 / pi
const MINUS_DP1 = fr(-0.78515625);
const MINUS_DP2 = fr(-2.4187564849853516e-4);
const MINUS_DP3 = fr(-3.774894977445941e-8);
const SIN_P0 = fr(-1.9515295891e-4);
const SIN_P1 = fr(8.3321608736e-3);
const SIN_P2 = fr(-1.6666654611e-1);
const COS_P0 = fr(2.443315711809948e-5);
const COS_P1 = fr(-1.388731625493765e-3);
const COS_P2 = fr(4.166664568298827e-2);
const TWO_PI_F = fr(2 * Math.PI);

/** 2^-i for i in [0, 25]. */
const POW2_NEG = Float64Array.from({ length: 26 }, (_, i) => 2 ** -i);

/**
 * Cephes logf as avx_mathfun's log256_ps computes it, of x = k * 2^-24 for an integer k in [1, 2^24] (every value
 * 1 - u takes for a 24-bit uniform u), so x = m * 2^e with m in [0.5, 1) comes from the bit length of k.
 */
function logCephes(k: number): number {
  const bits = 32 - Math.clz32(k);
  let e = bits - 24;
  const m = k * POW2_NEG[bits]!;
  let t: number;
  if (m < SQRTHF) {
    e -= 1;
    t = m + m - 1; // exact
  } else {
    t = m - 1; // exact
  }
  const z = fr(t * t);
  let y = fmaf(LOG_P0, t, LOG_P1);
  y = fmaf(y, t, LOG_P2);
  y = fmaf(y, t, LOG_P3);
  y = fmaf(y, t, LOG_P4);
  y = fmaf(y, t, LOG_P5);
  y = fmaf(y, t, LOG_P6);
  y = fmaf(y, t, LOG_P7);
  y = fmaf(y, t, LOG_P8);
  y = fr(y * t);
  y = fmaf(y, z, fr(e * LOG_Q1));
  y = fr(y - z * 0.5); // z * 0.5 is exact
  return fr(fr(t + y) + e * LOG_Q2); // e * LOG_Q2 is exact
}

/**
 * Cephes sinf and cosf of x >= 0 as avx_mathfun's sincos256_ps computes them; stores radius * cos(x) in data[j] and
 * radius * sin(x) in data[j + 8].
 */
function polarInto(radius: number, x: number, data: Float32Array, j: number): void {
  const oct = (Math.trunc(fr(x * FOPI)) + 1) & ~1;
  // Extended-precision reduction x - oct * pi/4 (pi/4 = DP1 + DP2 + DP3).
  x = fr(x + oct * MINUS_DP1); // oct * DP1 and oct * DP2 are exact (oct <= 8): fusing changes nothing
  x = fr(x + oct * MINUS_DP2);
  x = fmaf(oct, MINUS_DP3, x);
  const z = fr(x * x);
  let c = fmaf(COS_P0, z, COS_P1);
  c = fmaf(c, z, COS_P2);
  c = fr(c * z);
  c = fmaf(c, z, -(z * 0.5));
  c = fr(c + 1);
  let s = fmaf(SIN_P0, z, SIN_P1);
  s = fmaf(s, z, SIN_P2);
  s = fr(s * z);
  s = fmaf(s, x, x);
  // Octants 1, 2 (mod 4) swap the polynomials; "+ 0" turns -0 into +0 like the kernel's masked adds.
  const swap = (oct & 2) !== 0;
  const sinV = swap ? c + 0 : s + 0;
  const cosV = swap ? s + 0 : c + 0;
  data[j] = fr(radius * ((~(oct - 2) & 4) !== 0 ? -cosV : cosV));
  data[j + 8] = fr(radius * ((oct & 4) !== 0 ? -sinV : sinV));
}

/** Box-Muller on data[o..o+16) holding uniforms: pairs (j, j + 8) become (r cos, r sin), as normal_fill_16_AVX2. */
function boxMuller16(data: Float32Array, o: number): void {
  for (let j = o; j < o + 8; j++) {
    // u1 = 1 - u in (0, 1] for the log; as an integer multiple of 2^-24.
    const radius = fr(Math.sqrt(-2 * logCephes(16777216 - data[j]! * 16777216)));
    polarInto(radius, fr(TWO_PI_F * data[j + 8]!), data, j);
  }
}

function checkCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ArgumentError(`${what}: expected a count >= 0, found ${n}`);
}

/** Seeded random number generator with PyTorch's CPU semantics: same seed, same numbers as `torch.Generator`. */
export class Generator {
  private readonly mt = new Uint32Array(N);
  private left = 1;
  private next = 0;
  private seed = 0n;
  /** The spare normal of the scalar (float64) Box-Muller path. */
  private nextDoubleNormal: number | null = null;
  /** PyTorch's float spare normal: unused by the draws here, kept so states round-trip. */
  private nextFloatNormal: number | null = null;

  /** A generator seeded with `seed`, by default PyTorch's default seed 67280421310721. */
  constructor(seed: number | bigint = DEFAULT_SEED) {
    this.manualSeed(seed);
  }

  /**
   * Seeds the generator and clears the cached normal (PyTorch's `manual_seed`). Negative seeds wrap modulo 2^64.
   * Any seed in [-2^63, 2^64) is accepted; past 2^53 a number is taken as the exact integer it holds (pass a bigint
   * to give every such seed exactly).
   */
  manualSeed(seed: number | bigint): this {
    if (typeof seed === "number" && !Number.isInteger(seed)) {
      throw new ArgumentError(`manualSeed: expected an integer seed, found ${seed}`);
    }
    const s = BigInt(seed);
    if (s < -(2n ** 63n) || s >= 2n ** 64n) {
      throw new ArgumentError(`manualSeed: expected a seed in [-2^63, 2^64), found ${s}`);
    }
    this.seed = BigInt.asUintN(64, s);
    const mt = this.mt;
    mt[0] = Number(this.seed & 0xffffffffn);
    for (let i = 1; i < N; i++) {
      const p = mt[i - 1]!;
      mt[i] = Math.imul(1812433253, p ^ (p >>> 30)) + i;
    }
    this.left = 1;
    this.next = 0;
    this.nextDoubleNormal = null;
    this.nextFloatNormal = null;
    return this;
  }

  /** The seed last given to {@link manualSeed} (exact below 2^53). */
  initialSeed(): number {
    return Number(this.seed);
  }

  /** Regenerates the 624-word state (the MT19937 twist; branch-free: the low bit selects MATRIX_A by masking). */
  private twist(): void {
    const mt = this.mt;
    let cur = mt[0]!;
    let i = 0;
    for (; i < N - M; i++) {
      const nx = mt[i + 1]!;
      const y = (cur & 0x80000000) | (nx & 0x7fffffff);
      mt[i] = mt[i + M]! ^ (y >>> 1) ^ (-(nx & 1) & MATRIX_A);
      cur = nx;
    }
    for (; i < N - 1; i++) {
      const nx = mt[i + 1]!;
      const y = (cur & 0x80000000) | (nx & 0x7fffffff);
      mt[i] = mt[i + M - N]! ^ (y >>> 1) ^ (-(nx & 1) & MATRIX_A);
      cur = nx;
    }
    const nx = mt[0]!;
    const y = (cur & 0x80000000) | (nx & 0x7fffffff);
    mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (-(nx & 1) & MATRIX_A);
    this.left = N;
    this.next = 0;
  }

  /** The next 32-bit output of the engine (PyTorch's `random()`), as a number in [0, 2^32). */
  nextUint32(): number {
    if (--this.left === 0) this.twist();
    let y = this.mt[this.next++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Uniform float64 in [0, 1) from the low 53 bits of two outputs (high word first), as PyTorch's `random64()`. */
  private uniform53(): number {
    const hi = this.nextUint32() & 0x1fffff;
    const lo = this.nextUint32();
    return (hi * TWO_POW_32 + lo) * TWO_POW_M53;
  }

  /** One standard normal in float64, `at::normal_distribution<double>` with its cached spare. */
  private normalScalar(): number {
    const cached = this.nextDoubleNormal;
    if (cached !== null) {
      this.nextDoubleNormal = null;
      return cached;
    }
    const u1 = this.uniform53();
    const u2 = this.uniform53();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.nextDoubleNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** out[from..to) = 24-bit uniforms, one engine output each (nextUint32 unrolled over runs of the state). */
  private fillUniform24(out: Float32Array, from: number, to: number): void {
    const mt = this.mt;
    let i = from;
    while (i < to) {
      if (this.left === 1) {
        this.twist();
        this.left = N + 1; // the twisting call consumes no decrement
      }
      const run = Math.min(this.left - 1, to - i);
      let next = this.next;
      for (const end = i + run; i < end; i++) {
        let y = mt[next++]!;
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        out[i] = (y & 0xffffff) * TWO_POW_M24;
      }
      this.next = next;
      this.left -= run;
    }
  }

  /** `n` standard normal draws, as `torch.randn(n)` with this generator (any shape with n elements). */
  normal(n: number): Float32Array {
    checkCount(n, "normal");
    const out = new Float32Array(n);
    if (n < 16) {
      for (let i = 0; i < n; i++) out[i] = this.normalScalar();
      return out;
    }
    this.fillUniform24(out, 0, n);
    for (let i = 0; i + 16 <= n; i += 16) boxMuller16(out, i);
    if (n % 16 !== 0) {
      this.fillUniform24(out, n - 16, n);
      boxMuller16(out, n - 16);
    }
    return out;
  }

  /** `n` uniform draws in [0, 1), as `torch.rand(n)` with this generator. */
  uniform(n: number): Float32Array {
    checkCount(n, "uniform");
    const out = new Float32Array(n);
    this.fillUniform24(out, 0, n);
    return out;
  }

  /** `n` integers in [low, high), as `torch.randint(low, high, (n,))` with this generator (values; int32 here). */
  randint(low: number, high: number, n: number): Int32Array {
    checkCount(n, "randint");
    if (
      !Number.isInteger(low) ||
      !Number.isInteger(high) ||
      low < -(2 ** 31) ||
      high > 2 ** 31 ||
      low >= high
    ) {
      throw new ArgumentError(
        `randint: expected integers -2^31 <= low < high <= 2^31, found [${low}, ${high})`,
      );
    }
    const range = high - low;
    if (range >= TWO_POW_32) throw new ArgumentError("randint: a range of 2^32 or more is not supported");
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = (this.nextUint32() % range) + low;
    return out;
  }

  /** An independent copy at the same position: both produce the same draws from here on. */
  clone(): Generator {
    const g = new Generator();
    g.setState(this.getState());
    return g;
  }

  /**
   * The full generator state as the 5056 bytes of PyTorch's `CPUGeneratorImplState` (little-endian, the layout of
   * `torch.Generator.get_state()` on x86-64/arm64), so it can be saved in checkpoints and restored with
   * {@link setState}.
   */
  getState(): Uint8Array {
    const bytes = new Uint8Array(STATE_BYTES);
    const v = new DataView(bytes.buffer);
    v.setBigUint64(0, this.seed, true); // the_initial_seed
    v.setInt32(8, this.left, true);
    v.setInt32(12, 1, true); // seeded
    v.setBigUint64(16, BigInt(this.next), true);
    for (let i = 0; i < N; i++) v.setUint32(24 + 8 * i, this.mt[i]!, true); // uint64 words, high half zero
    // 5016 normal_x and 5032 normal_rho stay 0, as in PyTorch.
    if (this.nextDoubleNormal !== null) {
      v.setFloat64(5024, this.nextDoubleNormal, true);
      v.setInt32(5040, 1, true);
    }
    if (this.nextFloatNormal !== null) {
      v.setFloat32(5048, this.nextFloatNormal, true);
      v.setUint8(5052, 1);
    }
    return bytes;
  }

  /** Restores a state from {@link getState} (or PyTorch's `get_state()` bytes). Returns this. */
  setState(state: Uint8Array): this {
    if (state.length !== STATE_BYTES) {
      throw new ArgumentError(`setState: expected ${STATE_BYTES} bytes, found ${state.length}`);
    }
    const v = new DataView(state.buffer, state.byteOffset, state.byteLength);
    const left = v.getInt32(8, true);
    const seeded = v.getInt32(12, true);
    const next = v.getBigUint64(16, true);
    if (seeded === 0 || left <= 0 || left > N || next > BigInt(N)) {
      throw new ArgumentError(
        `setState: invalid mt19937 state (seeded ${seeded}, left ${left}, next ${next})`,
      );
    }
    this.seed = v.getBigUint64(0, true);
    this.left = left;
    this.next = Number(next);
    for (let i = 0; i < N; i++) this.mt[i] = v.getUint32(24 + 8 * i, true);
    this.nextDoubleNormal = v.getInt32(5040, true) !== 0 ? v.getFloat64(5024, true) : null;
    this.nextFloatNormal = v.getUint8(5052) !== 0 ? v.getFloat32(5048, true) : null;
    return this;
  }
}

/** The generator used when none is given: seeded randomly at start-up, so runs differ unless you pass one. */
export const defaultGenerator = new Generator(Math.floor(Math.random() * 2 ** 32));
