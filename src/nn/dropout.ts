import { dropout } from "../ops/index.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Generator } from "../tensor/generator.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "./module.js";

/**
 * Zeroes each element with probability `p` and scales the rest by 1/(1-p) while training; the identity in eval
 * mode (PyTorch's `nn.Dropout`). Masks are drawn from `generator` (default: the process-wide one).
 */
export class Dropout extends Module<[Tensor], Tensor> {
  readonly p: number;
  /** Kept out of the module tree: a generator is not state. */
  readonly #generator: Generator | undefined;

  constructor(p = 0.5, opts: { generator?: Generator } = {}) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ArgumentError(`Dropout: p must be in [0, 1], got ${p}`);
    this.p = p;
    this.#generator = opts.generator;
  }

  override forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.#generator);
  }
}
