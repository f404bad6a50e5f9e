// Memory scopes in the spirit of tfjs's `tidy`: every tensor made while a scope is open is disposed when it
// closes, except what the scope's function returns and what was `keep`-ed. Tensors in memory the garbage
// collector owns (the CPU's) are left to it; on a GPU scopes are what keep a 100-step loop from holding 100 steps
// of intermediates.
import { ArgumentError } from "./errors.js";

/** Marks tensors (set on the Tensor class) so scopes can find them in a returned value without importing it. */
export const TENSOR_BRAND: unique symbol = Symbol("diffuse.tensor");

/** What a scope tracks: a tensor. */
export interface Scoped {
  readonly [TENSOR_BRAND]: true;
  dispose(): void;
  /** False for memory the garbage collector owns (CPU tensors): scopes leave those alone. */
  readonly scoped: boolean;
}

const scopes: Set<Scoped>[] = [];

/** @internal records a new tensor in the innermost open scope. */
export function trackTensor(t: Scoped): void {
  if (scopes.length > 0 && t.scoped) scopes[scopes.length - 1]!.add(t);
}

/**
 * Keeps `t` alive past the scopes it was made in (optimizer state, caches, a model's weights made in a scope).
 * Returns `t`.
 */
export function keep<T extends Scoped>(t: T): T {
  for (const scope of scopes) scope.delete(t);
  return t;
}

/**
 * Frees `t` now where its device's memory is not garbage-collected (a GPU's): for tensors the caller made and no
 * longer hands out (a gradient replaced, a history entry dropped). CPU tensors are left to the collector, so a
 * reference someone kept stays readable.
 */
export function release(t: Scoped | null | undefined): void {
  if (t?.scoped) t.dispose();
}

/** Whether a scope is open (the code runs inside `tidy`). */
export function inScope(): boolean {
  return scopes.length > 0;
}

function collect(value: unknown, out: Set<Scoped>, depth: number): void {
  if (value === null || typeof value !== "object" || depth > 4) return;
  if ((value as Partial<Scoped>)[TENSOR_BRAND] === true) {
    out.add(value as Scoped);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor it made, except the ones in its result (a tensor, or arrays, maps and plain
 * objects holding tensors), which move to the enclosing scope. `fn` must be synchronous: a scope cannot know what
 * an unfinished promise will still make.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Scoped>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw err;
  }
  scopes.pop();
  if (result instanceof Promise) {
    // its continuation will touch disposed tensors: keep that rejection from crashing the process
    result.catch(() => {});
    for (const t of scope) t.dispose();
    throw new ArgumentError(
      "tidy() needs a synchronous function; call tidy inside the async function instead",
    );
  }
  const kept = new Set<Scoped>();
  collect(result, kept, 0);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}
