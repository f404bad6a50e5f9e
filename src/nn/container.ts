import { ArgumentError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "./module.js";

type Props = Record<string, unknown>;

/**
 * A list of submodules named "0", "1", ... (PyTorch's `nn.ModuleList`), so `down_blocks.0.resnets.1` comes out
 * as PyTorch's names. Index it like an array (`blocks[0]`) or with {@link at}; iterate with `for...of`.
 */
export class ModuleList<
  M extends Module = Module,
  In extends unknown[] = unknown[],
  Out = unknown,
> extends Module<In, Out> {
  readonly [index: number]: M;

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  /** Number of modules. */
  get length(): number {
    let n = 0;
    while ((this as unknown as Props)[n] instanceof Module) n++;
    return n;
  }

  /** Appends a module (named by its index). Returns this. */
  push(...modules: M[]): this {
    let n = this.length;
    for (const m of modules) {
      if (!(m instanceof Module))
        throw new ArgumentError(`ModuleList.push: expected a Module, got ${String(m)}`);
      (this as unknown as Props)[n++] = m;
    }
    return this;
  }

  /** The module at `index` (negative counts from the end). */
  at(index: number): M {
    const n = this.length;
    const i = index < 0 ? index + n : index;
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new ArgumentError(`ModuleList index ${index} is out of range for length ${n}`);
    }
    return this[i]!;
  }

  *[Symbol.iterator](): Iterator<M> {
    const n = this.length;
    for (let i = 0; i < n; i++) yield this[i]!;
  }

  map<T>(fn: (m: M, i: number) => T): T[] {
    return [...this].map(fn);
  }
}

/** A chain of modules, each fed the previous one's output (PyTorch's `nn.Sequential`); children "0", "1", ... */
export class Sequential extends ModuleList<Module<[Tensor], Tensor>, [Tensor], Tensor> {
  constructor(...modules: Module<[Tensor], Tensor>[]) {
    super(modules);
  }

  override forward(x: Tensor): Tensor {
    for (const m of this) x = m.call(x);
    return x;
  }
}
