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
