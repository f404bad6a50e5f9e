import { sgdUpdate } from "../../ops/index.js";
import { ArgumentError } from "../../tensor/errors.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Optimizer, type ParamGroupInput } from "./optimizer.js";

/** Hyperparameters of {@link SGD} (PyTorch's names and defaults, lr 1e-3). */
export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  /** L2 penalty added to the gradient (coupled, unlike AdamW) */
  weightDecay: number;
  nesterov: boolean;
}

/**
 * Stochastic gradient descent with momentum, as `torch.optim.SGD`:
 *   d ← g + wd·p;  b ← d (first step) or μ·b + (1 − dampening)·d;  d ← d + μ·b (Nesterov) or b;  p ← p − lr·d
 */
export class SGD extends Optimizer<SGDOptions> {
  constructor(
    params: Iterable<Tensor> | Iterable<ParamGroupInput<SGDOptions>>,
    opts: Partial<SGDOptions> = {},
  ) {
    const defaults: SGDOptions = {
      lr: opts.lr ?? 1e-3,
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      weightDecay: opts.weightDecay ?? 0,
      nesterov: opts.nesterov ?? false,
    };
    if (!(defaults.lr >= 0)) throw new ArgumentError(`SGD: lr must be >= 0, got ${defaults.lr}`);
    if (!(defaults.momentum >= 0))
      throw new ArgumentError(`SGD: momentum must be >= 0, got ${defaults.momentum}`);
    if (defaults.nesterov && (defaults.momentum <= 0 || defaults.dampening !== 0)) {
      throw new ArgumentError("SGD: Nesterov momentum needs momentum > 0 and dampening 0");
    }
    super(params, defaults);
  }

  step(): void {
    for (const group of this.paramGroups) {
      const { lr, momentum, dampening, weightDecay, nesterov } = group;
      for (const p of group.params) {
        const g = this.gradOf(p);
        if (!g) continue;
        const step = { lr, momentum, dampening, weightDecay, nesterov, first: false };
        if (momentum === 0) {
          sgdUpdate(p, g, null, step);
          continue;
        }
        const s = this.state.get(p);
        const first = !s;
        const buf = s ? (s.momentumBuffer as Tensor) : this.zerosLike(p);
        if (first) this.state.set(p, { momentumBuffer: buf });
        sgdUpdate(p, g, buf, { ...step, first });
      }
    }
  }
}
