// Activations named as in diffusers configs (`act_fn`), and the GroupNorm + SiLU pair that opens every ResNet block.
import type { GroupNorm } from "../../nn/index.js";
import { gelu, group_norm_silu, relu, silu } from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { ModelConfigError } from "./errors.js";

/** An activation as a function of one tensor. */
export type Activation = (x: Tensor) => Tensor;

const ACTIVATIONS: Record<string, Activation> = {
  silu,
  swish: silu,
  gelu: (x) => gelu(x),
  relu,
};

/** The activation diffusers' `get_activation(name)` returns ("silu"/"swish", "gelu", "relu"). */
export function activation(name: string, where: string): Activation {
  const fn = ACTIVATIONS[name];
  if (!fn) {
    throw new ModelConfigError(
      `${where}: activation "${name}" is not supported (expected one of ${Object.keys(ACTIVATIONS).join(", ")})`,
    );
  }
  return fn;
}

/** silu(norm(x)) for a GroupNorm module: one fused kernel in inference, the two differentiable ops otherwise. */
export function groupNormSilu(norm: GroupNorm, x: Tensor): Tensor {
  return group_norm_silu(x, norm.numGroups, norm.weight, norm.bias, norm.eps);
}
