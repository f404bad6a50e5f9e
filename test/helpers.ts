// Shared test utilities: fixture location, tolerances, and a finite-difference gradient checker.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { noGrad, type Tensor, tensor } from "../src/index.js";
import { testRng } from "./rng.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Absolute path of ../shared/fixtures (relative to the repo root), or null when absent. */
export function fixturesDir(): string | null {
  const dir = join(repoRoot, "..", "shared", "fixtures");
  return existsSync(dir) ? dir : null;
}

/** Absolute path of ../shared/bench, or null when absent. */
export function benchCasesDir(): string | null {
  const dir = join(repoRoot, "..", "shared", "bench");
  return existsSync(dir) ? dir : null;
}

/** node:test `skip` option when the fixtures folder is missing. */
export function skipWithoutFixtures(): string | false {
  return fixturesDir() ? false : "../shared/fixtures not found next to the repo; fixture tests skipped";
}

export { testRng } from "./rng.js";

/** A float32 tensor of uniform values in [lo, hi). */
export function randomTensor(shape: number[], seed: number, lo = -1, hi = 1): Tensor {
  const rng = testRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = lo + (hi - lo) * rng();
  return tensor(data, shape);
}

/** max|got - want| / max(1, max|want|): the fixtures' error measure. */
export function maxNormalizedError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length, `length ${got.length} vs ${want.length}`);
  let maxDiff = 0;
  let maxWant = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    maxDiff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(maxDiff, d);
    maxWant = Math.max(maxWant, Math.abs(want[i]!));
  }
  return maxDiff / Math.max(1, maxWant);
}

/** Asserts the max-normalized error is within `tol`. */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number,
  what = "tensor",
): void {
  const err = maxNormalizedError(got, want);
  assert.ok(err <= tol, `${what}: max-normalized error ${err.toExponential(3)} > ${tol}`);
}

/** Asserts |got - want| <= atol + rtol * |want| elementwise. */
export function assertAllClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atol: number,
  rtol: number,
  what = "tensor",
): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) {
      assert.fail(`${what}[${i}]: got ${g}, want ${w} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** check at most this many elements per input (chosen deterministically) */
  maxElements?: number;
  seed?: number;
}

/**
 * Checks the analytic gradient of `fn` against central finite differences. The scalar checked is
 * sum(fn(inputs) * W) for a fixed random W, so every output element matters. Inputs must be float32 leaves
 * (any strides); they get requiresGrad set.
 */
export function gradcheck(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: GradcheckOptions = {},
): void {
  const eps = opts.eps ?? 1e-2;
  const atol = opts.atol ?? 2e-3;
  const rtol = opts.rtol ?? 2e-2;
  const maxElements = opts.maxElements ?? 40;
  const rng = testRng(opts.seed ?? 7);
  for (const x of inputs) x.requiresGrad_(true);
  const out = fn(...inputs);
  const w = randomTensor([...out.shape], opts.seed ?? 11);
  const loss = out.mul(w).sum();
  for (const x of inputs) x.grad = null;
  loss.backward();
  const lossAt = (): number =>
    noGrad(() =>
      Number(
        fn(...inputs)
          .mul(w)
          .sum()
          .item(),
      ),
    );
  inputs.forEach((x, k) => {
    const storage = x.storage.buffer as unknown as Float32Array; // a CPU tensor: its buffer is the typed array
    const analytic = x.grad ? x.grad.toFloat32Array() : new Float32Array(x.size);
    // element i of the view lives at x.offset + sum(idx_d * stride_d)
    const positions: number[] = [];
    for (let i = 0; i < x.size; i++) positions.push(i);
    const picked =
      x.size <= maxElements ? positions : positions.sort(() => rng() - 0.5).slice(0, maxElements);
    for (const i of picked) {
      let rem = i;
      let p = x.offset;
      for (let d = x.ndim - 1; d >= 0; d--) {
        const size = x.shape[d]!;
        p += (rem % size) * x.strides[d]!;
        rem = Math.floor(rem / size);
      }
      const orig = storage[p]!;
      storage[p] = orig + eps;
      const up = lossAt();
      storage[p] = orig - eps;
      const down = lossAt();
      storage[p] = orig;
      const numeric = (up - down) / (2 * eps);
      const a = analytic[i]!;
      if (!(Math.abs(a - numeric) <= atol + rtol * Math.abs(numeric))) {
        assert.fail(`input ${k} element ${i}: analytic grad ${a}, numeric ${numeric}`);
      }
    }
  });
}

/** A PNG file header (signature + IHDR) claiming `width` x `height`, with no pixel data: a decompression bomb. */
export function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(25);
  ihdr.writeUInt32BE(13, 0);
  ihdr.write("IHDR", 4, "latin1");
  ihdr.writeUInt32BE(width, 8);
  ihdr.writeUInt32BE(height, 12);
  ihdr.set([8, 6, 0, 0, 0], 16); // 8-bit RGBA, deflate, no interlace (the CRC is left zero: nothing reads it)
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ihdr]);
}
