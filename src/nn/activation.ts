import { gelu, relu, silu } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "./module.js";

/** x · sigmoid(x) (PyTorch's `nn.SiLU`). */
export class SiLU extends Module<[Tensor], Tensor> {
  override forward(x: Tensor): Tensor {
    return silu(x);
  }
}

/** max(x, 0) (PyTorch's `nn.ReLU`). */
export class ReLU extends Module<[Tensor], Tensor> {
  override forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** Gaussian error linear unit (PyTorch's `nn.GELU`): exact erf form, or the tanh approximation. */
export class GELU extends Module<[Tensor], Tensor> {
  readonly approximate: "none" | "tanh";

  constructor(opts: { approximate?: "none" | "tanh" } = {}) {
    super();
    this.approximate = opts.approximate ?? "none";
  }

  override forward(x: Tensor): Tensor {
    return gelu(x, this.approximate);
  }
}

/** Returns its input (PyTorch's `nn.Identity`): a placeholder where a layer is optional. */
export class Identity extends Module<[Tensor], Tensor> {
  override forward(x: Tensor): Tensor {
    return x;
  }
}
