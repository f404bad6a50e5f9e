import { clone, contiguous, detach, to, toDevice } from "../../ops/index.js";
import { zeros } from "../../tensor/create.js";
import { DeviceError } from "../../tensor/device.js";
import { ArgumentError, DTypeError, ShapeError } from "../../tensor/errors.js";
import { keep, release } from "../../tensor/scope.js";
import { formatShape, shapesEqual } from "../../tensor/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { movedTo } from "../parameter.js";

/**
 * Per-parameter optimizer state: moment buffers (float32 tensors on the parameter's device, one value per
 * element) and counters.
 */
export type ParamState = Record<string, Tensor | number>;

/** A group of parameters sharing hyperparameters; options left out take the optimizer's defaults. */
export type ParamGroupInput<O> = { params: Iterable<Tensor> } & Partial<O>;

/** A parameter group as held by the optimizer: every option resolved. */
export type ParamGroup<O> = O & { params: Tensor[] };

/**
 * A serialisable snapshot of an optimizer (PyTorch's layout): per-parameter state keyed by the parameter's
 * position across all groups, and each group's options with the positions of its parameters. Tensors are copies.
 */
export interface OptimizerStateDict {
  state: Record<string, Record<string, Tensor | number>>;
  paramGroups: (Record<string, unknown> & { params: number[] })[];
}

/**
 * Base class of the optimizers: holds parameter groups and per-parameter state, and saves/restores both so a
 * training run resumes exactly. Updates write the parameters' float32 storage in place, outside autograd.
 */
export abstract class Optimizer<O extends object> {
  readonly paramGroups: ParamGroup<O>[];
  readonly defaults: Readonly<O>;
  protected readonly state = new Map<Tensor, ParamState>();

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<O>>, defaults: O) {
    this.defaults = Object.freeze({ ...defaults });
    const items = [...params] as (Tensor | ParamGroupInput<O>)[];
    const groups: ParamGroupInput<O>[] =
      items.length === 0 || items[0] instanceof Tensor
        ? [{ params: items as Tensor[] } as unknown as ParamGroupInput<O>]
        : (items as ParamGroupInput<O>[]);
    const seen = new Set<Tensor>();
    this.paramGroups = groups.map((g) => {
      const ps = [...g.params];
      for (const p of ps) {
        if (!(p instanceof Tensor))
          throw new ArgumentError("optimizer: params must be tensors or parameter groups");
        if (seen.has(p)) throw new ArgumentError("optimizer: a parameter appears in more than one group");
        seen.add(p);
      }
      return { ...defaults, ...g, params: ps } as ParamGroup<O>;
    });
    if (seen.size === 0) throw new ArgumentError("optimizer: got an empty parameter list");
  }

  /** Applies one update to every parameter that has a gradient. */
  abstract step(): void;

  /** Clears the gradients of all parameters (`.grad = null`). */
  zeroGrad(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        release(p.grad);
        p.grad = null;
      }
    }
  }

  /** Sets the learning rate of every group (what an LR schedule calls before each step). */
  setLr(lr: number): void {
    for (const g of this.paramGroups) (g as { lr?: number }).lr = lr;
  }

  /** The gradient of a float32 parameter `p`, or null when it has none. */
  protected gradOf(p: Tensor): Tensor | null {
    const moved = movedTo(p);
    if (moved !== undefined) {
      throw new DeviceError(
        `optimizer: its parameters were replaced when the model moved to ${moved}; create the optimizer after module.toDevice()`,
      );
    }
    if (!p.grad) return null;
    if (p.dtype !== "float32") {
      throw new DTypeError(
        `optimizer: parameters must be float32 to be trained, got ${p.dtype} (convert with module.toDType("float32"))`,
      );
    }
    if (!p.isContiguous()) throw new ArgumentError("optimizer: parameters must be contiguous");
    if (!shapesEqual(p.grad.shape, p.shape)) {
      throw new ShapeError(
        `optimizer: gradient shape ${formatShape(p.grad.shape)} does not match parameter ${formatShape(p.shape)}`,
      );
    }
    return p.grad;
  }

  /** A zero-filled float32 state buffer shaped like `p`, on its device, kept past memory scopes. */
  protected zerosLike(p: Tensor): Tensor {
    return keep(zeros(p.shape, { device: p.device }));
  }

  /** The state of `p`, created by `init` on first use. */
  protected stateOf<S extends ParamState>(p: Tensor, init: () => S): S {
    let s = this.state.get(p) as S | undefined;
    if (!s) {
      s = init();
      this.state.set(p, s);
    }
    return s;
  }

  /** A snapshot of groups and state (copies), for checkpoints. */
  stateDict(): OptimizerStateDict {
    const state: OptimizerStateDict["state"] = {};
    const paramGroups: OptimizerStateDict["paramGroups"] = [];
    let index = 0;
    for (const g of this.paramGroups) {
      const { params, ...options } = g;
      const ids: number[] = [];
      for (const p of params) {
        const s = this.state.get(p);
        if (s) {
          const entry: Record<string, Tensor | number> = {};
          for (const [k, v] of Object.entries(s)) entry[k] = typeof v === "number" ? v : detach(clone(v));
          state[String(index)] = entry;
        }
        ids.push(index++);
      }
      paramGroups.push({ ...structuredClone(options), params: ids });
    }
    return { state, paramGroups };
  }

  /** Restores a snapshot from {@link stateDict}: the same parameters, in the same groups and order. */
  loadStateDict(sd: OptimizerStateDict): void {
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new ArgumentError(
        `optimizer loadStateDict: the state dict has ${sd.paramGroups.length} parameter groups, the optimizer ${this.paramGroups.length}`,
      );
    }
    const byIndex = new Map<number, Tensor>();
    sd.paramGroups.forEach((sg, gi) => {
      const g = this.paramGroups[gi]!;
      if (sg.params.length !== g.params.length) {
        throw new ArgumentError(
          `optimizer loadStateDict: group ${gi} has ${sg.params.length} parameters in the state dict, ${g.params.length} in the optimizer`,
        );
      }
      sg.params.forEach((id, j) => {
        byIndex.set(id, g.params[j]!);
      });
    });
    const restored = new Map<Tensor, ParamState>();
    for (const [key, entry] of Object.entries(sd.state)) {
      const p = byIndex.get(Number(key));
      if (!p) throw new ArgumentError(`optimizer loadStateDict: state for unknown parameter index ${key}`);
      const s: ParamState = {};
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v === "number") {
          s[k] = v;
        } else {
          if (v.size !== p.size) {
            throw new ShapeError(
              `optimizer loadStateDict: state "${k}" of parameter ${key} has shape ${formatShape(v.shape)}, the parameter ${formatShape(p.shape)}`,
            );
          }
          s[k] = keep(clone(contiguous(toDevice(to(detach(v), "float32"), p.device))));
        }
      }
      restored.set(p, s);
    }
    // all checks passed: replace options and state
    sd.paramGroups.forEach((sg, gi) => {
      const { params: _ids, ...options } = sg;
      Object.assign(this.paramGroups[gi]!, structuredClone(options));
    });
    this.state.clear();
    for (const [p, s] of restored) this.state.set(p, s);
  }
}
