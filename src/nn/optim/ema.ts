import { clone, contiguous, copy_, detach, lerpTo_, reshape, to, toDevice } from "../../ops/index.js";
import { ArgumentError, ShapeError } from "../../tensor/errors.js";
import { keep, release } from "../../tensor/scope.js";
import { formatShape } from "../../tensor/shape.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { Module } from "../module.js";

/** Options of {@link EMA} (diffusers' EMAModel names and defaults). */
export interface EMAOptions {
  /** upper bound of the decay (0.9999) */
  decay?: number;
  /** lower bound of the decay (0) */
  minDecay?: number;
  /** updates before this many steps only copy the weights (0) */
  updateAfterStep?: number;
  /** use the warm-up formula 1 − (1 + t/invGamma)^−power instead of (1 + t)/(10 + t) (false) */
  warmup?: boolean;
  /** warm-up inverse multiplicative factor (1) */
  invGamma?: number;
  /** warm-up exponent (2/3; 3/4 suits shorter runs) */
  power?: number;
}

/** A serialisable snapshot of an {@link EMA}: its counters and options, and the averaged weights by name. */
export interface EMAStateDict {
  decay: number;
  minDecay: number;
  optimizationStep: number;
  updateAfterStep: number;
  warmup: boolean;
  invGamma: number;
  power: number;
  shadowParams: Map<string, Tensor>;
}

/**
 * Exponential moving average of a module's parameters, as diffusers' `EMAModel`. Each {@link update} (after an
 * optimizer step) counts a step t, computes the decay
 *   t' = max(0, t − updateAfterStep − 1);  decay = 0 if t' = 0, else
 *   warmup ? 1 − (1 + t'/invGamma)^(−power) : (1 + t')/(10 + t'),  clamped to [minDecay, decay]
 * and moves each averaged weight s ← s − (1 − decay)·(s − p); parameters without requiresGrad are copied.
 * The averages are float32 copies keyed by parameter name, on the parameters' device (updated by a kernel there).
 */
export class EMA {
  readonly decay: number;
  readonly minDecay: number;
  readonly updateAfterStep: number;
  readonly warmup: boolean;
  readonly invGamma: number;
  readonly power: number;
  /** Number of update() calls so far. */
  optimizationStep = 0;
  /** The decay used by the last update. */
  curDecay = 0;
  readonly #module: Module;
  readonly #shadow = new Map<string, Tensor>();
  #stored: Map<string, Tensor> | null = null;

  constructor(module: Module, opts: EMAOptions = {}) {
    this.decay = opts.decay ?? 0.9999;
    this.minDecay = opts.minDecay ?? 0;
    this.updateAfterStep = opts.updateAfterStep ?? 0;
    this.warmup = opts.warmup ?? false;
    this.invGamma = opts.invGamma ?? 1;
    this.power = opts.power ?? 2 / 3;
    if (!(this.decay >= 0 && this.decay <= 1))
      throw new ArgumentError(`EMA: decay must be in [0, 1], got ${this.decay}`);
    this.#module = module;
    for (const [name, p] of module.namedParameters()) this.#shadow.set(name, float32Copy(p, p.device));
  }

  /** The decay applied at optimisation step `step` (diffusers' `get_decay`). */
  getDecay(step: number): number {
    const t = Math.max(0, step - this.updateAfterStep - 1);
    if (t <= 0) return 0;
    const d = this.warmup ? 1 - (1 + t / this.invGamma) ** -this.power : (1 + t) / (10 + t);
    return Math.max(this.minDecay, Math.min(d, this.decay));
  }

  /** Folds the current parameters of `module` (default: the one given at construction) into the averages. */
  update(module: Module = this.#module): void {
    this.optimizationStep += 1;
    const decay = this.getDecay(this.optimizationStep);
    this.curDecay = decay;
    const oneMinus = 1 - decay;
    for (const [name, p] of module.namedParameters()) {
      const s = this.#shadowFor(name, p);
      if (!p.requiresGrad) copy_(s, reshape(detach(p), s.shape));
      else lerpTo_(s, detach(p), oneMinus);
    }
  }

  #shadowFor(name: string, p: Tensor): Tensor {
    const s = this.#shadow.get(name);
    if (!s) throw new ArgumentError(`EMA: parameter "${name}" was not in the module the EMA was created for`);
    if (s.size !== p.size) {
      throw new ShapeError(
        `EMA: parameter "${name}" has ${p.size} elements (${formatShape(p.shape)}), the average ${s.size}`,
      );
    }
    return s;
  }

  /** Writes the averaged weights into `module`'s parameters (converted to their dtype). */
  copyTo(module: Module = this.#module): void {
    for (const [name, p] of module.namedParameters()) writeInto(p, this.#shadowFor(name, p));
  }

  /** Saves `module`'s current parameters so {@link restore} can put them back (e.g. around an EMA evaluation). */
  store(module: Module = this.#module): void {
    this.#releaseStored();
    this.#stored = new Map(module.namedParameters().map(([n, p]) => [n, float32Copy(p, p.device)]));
  }

  /** Restores the parameters saved by {@link store}. */
  restore(module: Module = this.#module): void {
    if (!this.#stored) throw new ArgumentError("EMA.restore: nothing stored (call store() first)");
    for (const [name, p] of module.namedParameters()) {
      const saved = this.#stored.get(name);
      if (saved) writeInto(p, saved);
    }
    this.#releaseStored();
  }

  /** Frees the stored copy now where it is in device memory (a model-sized copy per evaluation otherwise). */
  #releaseStored(): void {
    for (const t of this.#stored?.values() ?? []) release(t);
    this.#stored = null;
  }

  /** The averaged weights as a state dict of the module (parameter names to float32 tensors; copies). */
  averagedStateDict(): Map<string, Tensor> {
    return new Map([...this.#shadow].map(([n, s]) => [n, clone(s)]));
  }

  /** A snapshot of counters, options and averages (copies), for checkpoints. */
  stateDict(): EMAStateDict {
    return {
      decay: this.decay,
      minDecay: this.minDecay,
      optimizationStep: this.optimizationStep,
      updateAfterStep: this.updateAfterStep,
      warmup: this.warmup,
      invGamma: this.invGamma,
      power: this.power,
      shadowParams: this.averagedStateDict(),
    };
  }

  /** Restores the step counter and averages of {@link stateDict} (options are fixed at construction). */
  loadStateDict(sd: Pick<EMAStateDict, "optimizationStep" | "shadowParams">): void {
    const next = new Map<string, Tensor>();
    for (const [name, s] of this.#shadow) {
      const t = sd.shadowParams.get(name);
      if (!t) throw new ArgumentError(`EMA loadStateDict: no average for parameter "${name}"`);
      if (t.size !== s.size) {
        throw new ShapeError(
          `EMA loadStateDict: "${name}" has shape ${formatShape(t.shape)}, expected ${s.size} elements`,
        );
      }
      next.set(name, reshape(float32Copy(t, s.device), s.shape));
    }
    for (const [name, s] of next) {
      release(this.#shadow.get(name));
      this.#shadow.set(name, keep(s));
    }
    this.optimizationStep = sd.optimizationStep;
  }
}

/** A float32 copy of `t` on `device`, kept past memory scopes (an average lives as long as the EMA). */
function float32Copy(t: Tensor, device: string): Tensor {
  return keep(clone(contiguous(to(toDevice(detach(t), device), "float32"))));
}

/** Copies float32 values into a contiguous parameter of any float dtype. */
function writeInto(p: Tensor, values: Tensor): void {
  if (!p.isContiguous()) throw new ArgumentError("EMA: parameters must be contiguous");
  copy_(p, reshape(values, p.shape));
}
