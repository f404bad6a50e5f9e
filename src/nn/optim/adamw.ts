import { adamwUpdate } from "../../ops/index.js";
import { ArgumentError } from "../../tensor/errors.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Optimizer, type ParamGroupInput } from "./optimizer.js";

/** Hyperparameters of {@link AdamW} (PyTorch's defaults). */
export interface AdamWOptions {
  /** learning rate (1e-3) */
  lr: number;
  /** decay rates of the first and second moment estimates ([0.9, 0.999]) */
  betas: [number, number];
  /** added to the denominator (1e-8) */
  eps: number;
  /** decoupled weight decay coefficient (1e-2) */
  weightDecay: number;
  /** use the running maximum of the second moment (AMSGrad, Reddi et al. 2018) (false) */
  amsgrad: boolean;
}

interface AdamState {
  [key: string]: Tensor | number;
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

/**
 * Adam with decoupled weight decay (Loshchilov & Hutter 2019), exactly as `torch.optim.AdamW`: for step t,
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
 *   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps)
 * (with AMSGrad, v in the last line is the running maximum of v).
 */
export class AdamW extends Optimizer<AdamWOptions> {
  constructor(
    params: Iterable<Tensor> | Iterable<ParamGroupInput<AdamWOptions>>,
    opts: Partial<AdamWOptions> = {},
  ) {
    const defaults: AdamWOptions = {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ?? [0.9, 0.999],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 1e-2,
      amsgrad: opts.amsgrad ?? false,
    };
    const [b1, b2] = defaults.betas;
    if (!(defaults.lr >= 0)) throw new ArgumentError(`AdamW: lr must be >= 0, got ${defaults.lr}`);
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) {
      throw new ArgumentError(`AdamW: betas must be in [0, 1), got [${b1}, ${b2}]`);
    }
    if (!(defaults.eps >= 0)) throw new ArgumentError(`AdamW: eps must be >= 0, got ${defaults.eps}`);
    super(params, defaults);
  }

  step(): void {
    for (const group of this.paramGroups) {
      const { lr, eps, weightDecay, amsgrad } = group;
      const [beta1, beta2] = group.betas;
      for (const p of group.params) {
        const g = this.gradOf(p);
        if (!g) continue;
        const s = this.stateOf<AdamState>(p, () => ({
          step: 0,
          expAvg: this.zerosLike(p),
          expAvgSq: this.zerosLike(p),
          ...(amsgrad ? { maxExpAvgSq: this.zerosLike(p) } : {}),
        }));
        s.step += 1;
        if (amsgrad && typeof s.maxExpAvgSq !== "object") s.maxExpAvgSq = this.zerosLike(p);
        adamwUpdate(p, g, s.expAvg, s.expAvgSq, amsgrad ? (s.maxExpAvgSq as Tensor) : null, {
          beta1,
          beta2,
          eps,
          decay: 1 - lr * weightDecay,
          stepSize: lr / (1 - beta1 ** s.step),
          bc2Sqrt: Math.sqrt(1 - beta2 ** s.step),
        });
      }
    }
  }
}
