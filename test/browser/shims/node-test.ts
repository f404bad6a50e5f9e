// A browser stand-in for the parts of node:test the kernel tests use (describe, it, before, after): tests are
// collected while the bundle loads and run in order by runAll(), so the same test files run in Node and in a page.

type Fn = (t: { skip(message?: string): void }) => unknown;
interface Options {
  skip?: string | boolean;
}

interface Suite {
  name: string;
  skip: string | false;
  before: Fn[];
  after: Fn[];
  items: (Suite | Case)[];
}
interface Case {
  name: string;
  fn: Fn;
  skip: string | false;
}

/** One test's outcome. */
export interface Result {
  name: string;
  status: "pass" | "fail" | "skip";
  message?: string;
  ms: number;
}

const root: Suite = { name: "", skip: false, before: [], after: [], items: [] };
let current = root;

const skipOf = (o: Options | undefined, inherited: string | false): string | false =>
  inherited || (o?.skip ? (typeof o.skip === "string" ? o.skip : "skipped") : false);

function split(a: unknown, b: unknown): [Options | undefined, Fn] {
  return typeof a === "function" ? [undefined, a as Fn] : [a as Options, b as Fn];
}

export function describe(name: string, a: unknown, b?: unknown): void {
  const [options, fn] = split(a, b);
  const suite: Suite = { name, skip: skipOf(options, current.skip), before: [], after: [], items: [] };
  current.items.push(suite);
  const parent = current;
  current = suite;
  try {
    (fn as () => void)();
  } finally {
    current = parent;
  }
}

export function it(name: string, a: unknown, b?: unknown): void {
  const [options, fn] = split(a, b);
  current.items.push({ name, fn, skip: skipOf(options, current.skip) });
}
export const test = it;

export function before(fn: Fn): void {
  current.before.push(fn);
}
export function after(fn: Fn): void {
  current.after.push(fn);
}

class Skip extends Error {}

/** Runs every collected test in order; a failing one does not stop the others. */
export async function runAll(): Promise<Result[]> {
  const results: Result[] = [];
  const context = {
    skip(message?: string): never {
      throw new Skip(message ?? "skipped");
    },
  };
  async function run(suite: Suite, prefix: string): Promise<void> {
    const name = (n: string) => (prefix ? `${prefix} > ${n}` : n);
    if (suite.skip) {
      results.push({ name: prefix || "(root)", status: "skip", message: suite.skip, ms: 0 });
      return;
    }
    for (const fn of suite.before) await fn(context);
    for (const item of suite.items) {
      if ("items" in item) {
        await run(item, name(item.name));
        continue;
      }
      if (item.skip) {
        results.push({ name: name(item.name), status: "skip", message: item.skip, ms: 0 });
        continue;
      }
      const start = performance.now();
      try {
        await item.fn(context);
        results.push({ name: name(item.name), status: "pass", ms: performance.now() - start });
      } catch (e) {
        const ms = performance.now() - start;
        if (e instanceof Skip)
          results.push({ name: name(item.name), status: "skip", message: e.message, ms });
        else
          results.push({
            name: name(item.name),
            status: "fail",
            message: String((e as Error)?.stack ?? e),
            ms,
          });
      }
    }
    for (const fn of suite.after) await fn(context);
  }
  await run(root, "");
  return results;
}
