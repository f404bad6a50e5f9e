// A browser stand-in for the node:assert/strict functions the kernel tests use.

export class AssertionError extends Error {}

function fail(message: string | undefined, fallback: string): never {
  throw new AssertionError(message ?? fallback);
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (ArrayBuffer.isView(a) || Array.isArray(a)) {
    const x = a as unknown as ArrayLike<unknown>;
    const y = b as unknown as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!isDeepEqual(x[i], y[i])) return false;
    return true;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => isDeepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const show = (v: unknown): string => {
  try {
    return (
      JSON.stringify(ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v)?.slice(
        0,
        200,
      ) ?? String(v)
    );
  } catch {
    return String(v);
  }
};

function ok(value: unknown, message?: string): asserts value {
  if (!value) fail(message, `expected a truthy value, got ${show(value)}`);
}

const assert = Object.assign(ok, {
  ok,
  equal(a: unknown, b: unknown, message?: string) {
    if (!Object.is(a, b)) fail(message, `${show(a)} !== ${show(b)}`);
  },
  notEqual(a: unknown, b: unknown, message?: string) {
    if (Object.is(a, b)) fail(message, `${show(a)} === ${show(b)}`);
  },
  deepEqual(a: unknown, b: unknown, message?: string) {
    if (!isDeepEqual(a, b)) fail(message, `not deep-equal: ${show(a)} vs ${show(b)}`);
  },
  notDeepEqual(a: unknown, b: unknown, message?: string) {
    if (isDeepEqual(a, b)) fail(message, `deep-equal: ${show(a)}`);
  },
  match(s: string, re: RegExp, message?: string) {
    if (!re.test(s)) fail(message, `${show(s)} does not match ${re}`);
  },
  doesNotMatch(s: string, re: RegExp, message?: string) {
    if (re.test(s)) fail(message, `${show(s)} matches ${re}`);
  },
  throws(fn: () => unknown, expected?: unknown, message?: string) {
    try {
      fn();
    } catch (e) {
      if (expected instanceof RegExp && !expected.test(String((e as Error)?.message ?? e))) {
        fail(message, `error ${String(e)} does not match ${expected}`);
      }
      if (typeof expected === "function" && !(expected.prototype instanceof Error) && expected !== Error) {
        if ((expected as (e: unknown) => boolean)(e) !== true)
          fail(message, `error ${String(e)} failed validation`);
      }
      return;
    }
    fail(typeof expected === "string" ? expected : message, "expected a throw");
  },
  async rejects(p: Promise<unknown> | (() => Promise<unknown>), expected?: unknown, message?: string) {
    try {
      await (typeof p === "function" ? p() : p);
    } catch (e) {
      if (expected instanceof RegExp && !expected.test(String((e as Error)?.message ?? e))) {
        fail(message, `rejection ${String(e)} does not match ${expected}`);
      }
      return;
    }
    fail(message, "expected a rejection");
  },
  fail(message?: string): never {
    fail(message, "failed");
  },
});

export default assert;
export const { equal, notEqual, deepEqual, notDeepEqual, match, doesNotMatch, throws, rejects } = assert;
export { ok };
