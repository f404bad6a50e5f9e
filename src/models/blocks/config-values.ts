// Type checks for the values of diffusers `config.json` files; each failure is a ModelConfigError naming the key.
import { ModelConfigError } from "./errors.js";

/** A config as read from `config.json`. */
export type RawConfig = Readonly<Record<string, unknown>>;

function show(v: unknown): string {
  return v === undefined ? "nothing" : JSON.stringify(v);
}

/** Reads config keys of one model and reports bad values as `<who> config: <key> must be ..., got ...`. */
export class ConfigChecker {
  readonly #cfg: RawConfig;
  readonly #who: string;

  constructor(cfg: RawConfig, who: string) {
    this.#cfg = cfg;
    this.#who = who;
  }

  /** Throws a ModelConfigError about `key`. */
  fail(key: string, expected: string, got: unknown = this.#cfg[key]): never {
    throw new ModelConfigError(`${this.#who} config: ${key} must be ${expected}, got ${show(got)}`);
  }

  /** Throws a ModelConfigError with a free-form message. */
  error(message: string): never {
    throw new ModelConfigError(`${this.#who} config: ${message}`);
  }

  int(key: string, min = 0): number {
    const v = this.#cfg[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) this.fail(key, `an integer >= ${min}`);
    return v;
  }

  intOrNull(key: string, min = 1): number | null {
    return this.#cfg[key] == null ? null : this.int(key, min);
  }

  number(key: string): number {
    const v = this.#cfg[key];
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(key, "a finite number");
    return v;
  }

  numberOrNull(key: string): number | null {
    return this.#cfg[key] == null ? null : this.number(key);
  }

  bool(key: string): boolean {
    const v = this.#cfg[key];
    if (typeof v !== "boolean") this.fail(key, "true or false");
    return v;
  }

  boolOrNull(key: string): boolean | null {
    return this.#cfg[key] == null ? null : this.bool(key);
  }

  /** A string, one of `allowed` when given. */
  string(key: string, allowed?: readonly string[]): string {
    const v = this.#cfg[key];
    if (typeof v !== "string")
      this.fail(key, allowed ? `one of ${allowed.map(show).join(", ")}` : "a string");
    if (allowed && !allowed.includes(v)) this.fail(key, `one of ${allowed.map(show).join(", ")}`);
    return v;
  }

  stringOrNull(key: string, allowed?: readonly string[]): string | null {
    return this.#cfg[key] == null ? null : this.string(key, allowed);
  }

  /** A non-empty list of strings. */
  strings(key: string): string[] {
    const v = this.#cfg[key];
    if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === "string"))
      this.fail(key, "a non-empty list of strings");
    return [...(v as string[])];
  }

  /** A non-empty list of integers >= min. */
  ints(key: string, min = 1): number[] {
    const v = this.#cfg[key];
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => Number.isInteger(x) && (x as number) >= min))
      this.fail(key, `a non-empty list of integers >= ${min}`);
    return [...(v as number[])];
  }

  /** An integer >= min, or a list of them (of `length` when given). */
  intOrInts(key: string, length: number, min = 1): number | number[] {
    const v = this.#cfg[key];
    const ok = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x >= min;
    if (ok(v)) return v;
    if (!Array.isArray(v) || v.length !== length || !v.every(ok))
      this.fail(key, `an integer >= ${min} or a list of ${length} of them (one per down block)`);
    return [...v];
  }

  /** A boolean, or a list of `length` of them. */
  boolOrBools(key: string, length: number): boolean | boolean[] {
    const v = this.#cfg[key];
    if (typeof v === "boolean") return v;
    if (!Array.isArray(v) || v.length !== length || !v.every((b) => typeof b === "boolean"))
      this.fail(key, `true, false or a list of ${length} of them (one per down block)`);
    return [...(v as boolean[])];
  }

  /** A value the library does not implement: accepted only at the given (default) values. */
  only(key: string, accepted: readonly unknown[], why = "is not supported"): void {
    const v = this.#cfg[key] ?? null;
    if (!accepted.includes(v)) {
      throw new ModelConfigError(
        `${this.#who} config: ${key} = ${show(v)} ${why} (supported: ${accepted.map(show).join(", ")})`,
      );
    }
  }
}
