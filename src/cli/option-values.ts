// Parsing the numeric values of command-line options, with errors that name the flag and the value found.
import { CliError } from "./errors.js";

/** An integer >= `min` written in decimal digits (no "1e3", no "0x10", no blanks). */
export function cliInt(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new CliError(`--${name} must be an integer >= ${min}, got "${v}"`);
  }
  return n;
}

/** A finite number in [lo, hi]. */
export function cliNumber(name: string, v: string, lo: number, hi = Number.POSITIVE_INFINITY): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < lo || n > hi) {
    throw new CliError(`--${name} must be a number in [${lo}, ${hi}], got "${v}"`);
  }
  return n;
}

/** A comma-separated list of integers >= `min` (empty entries skipped). */
export function cliInts(name: string, v: string, min: number): number[] {
  return v
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((p) => cliInt(name, p, min));
}

/** A seed as PyTorch takes it: an integer in [0, 2^64), a number below 2^53 and a bigint above. */
export function cliSeed(v: string): number | bigint {
  if (!/^\d+$/.test(v.trim())) throw new CliError(`--seed must be a non-negative integer, got "${v}"`);
  const big = BigInt(v.trim());
  if (big >= 2n ** 64n) throw new CliError(`--seed must be below 2^64, got ${v}`);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/** `seed + i` exactly (a bigint once past 2^53); an error when it reaches 2^64. */
export function offsetSeed(seed: number | bigint, i: number): number | bigint {
  const big = BigInt(seed) + BigInt(i);
  if (big >= 2n ** 64n) throw new CliError(`--seed ${seed} + ${i} (image ${i + 1}) is not below 2^64`);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}
