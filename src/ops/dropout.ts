import { tensor } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import { defaultGenerator } from "../tensor/generator.js";
import type { Tensor } from "../tensor/tensor.js";
import { requireFloat } from "./core.js";
import { mul } from "./elementwise.js";

/** What dropout needs from a random source: `n` uniform draws in [0, 1) (a `Generator` fits). */
export interface UniformSource {
  uniform(n: number): Float32Array;
}

/**
 * Inverted dropout (PyTorch's `F.dropout`): in training, each element is zeroed with probability `p` and the
 * survivors are scaled by 1 / (1 - p), so the expected value is unchanged. Element i is kept when the i-th draw of
 * `generator.uniform(x.numel())` is below 1 - p (the default generator when none is given). The gradient uses the
 * same mask. `p = 0` or `training = false` returns `x` itself; `p = 1` gives zeros.
 */
export function dropout(x: Tensor, p = 0.5, training = true, generator?: UniformSource): Tensor {
  if (!(p >= 0 && p <= 1)) {
    throw new ArgumentError(`dropout: probability p must be in [0, 1], got ${p}`);
  }
  requireFloat(x, "dropout");
  if (!training || p === 0) return x;
  if (p === 1) return mul(x, 0);
  const draws = (generator ?? defaultGenerator).uniform(x.size);
  if (draws.length !== x.size) {
    throw new ArgumentError(`dropout: the generator gave ${draws.length} draws for ${x.size} elements`);
  }
  const keep = 1 - p;
  const scale = 1 / keep;
  const mask = new Float32Array(x.size);
  for (let i = 0; i < mask.length; i++) mask[i] = draws[i]! < keep ? scale : 0;
  return mul(x, tensor(mask, [...x.shape], { device: x.device }));
}
