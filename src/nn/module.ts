import { contiguous, copy_, detach, to, toDevice } from "../ops/index.js";
import type { Device } from "../tensor/device.js";
import { type DType, isFloating } from "../tensor/dtype.js";
import { ArgumentError } from "../tensor/errors.js";
import { release } from "../tensor/scope.js";
import { shapesEqual } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { type ShapeMismatch, StateDictError } from "./errors.js";
import { markMoved, Parameter } from "./parameter.js";

/** A state dict: dotted names (`down_blocks.0.resnets.1.conv1.weight`) to tensors. */
export type StateDict = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /** Throw when keys are missing or unexpected (default true). Shape mismatches always throw. */
  strict?: boolean;
  /**
   * Keep the dtype of the loaded float tensors: a float16 tensor loaded into a float32 parameter makes the
   * parameter float16 (sharing the given tensor's storage; ops widen half weights per kernel). Without it, values
   * are converted and copied into the existing storage, so references held elsewhere (optimizers, EMA) stay valid.
   */
  keepDtype?: boolean;
  /**
   * Take the given tensors themselves, where they already have the parameter's dtype and device and are
   * contiguous, instead of copying them into the existing storage: for a model built only to be loaded (no
   * writes into memory that is dropped next; a memory-mapped checkpoint's tensors stay views of the file). The
   * module then shares those tensors' storage, and references to its old parameters (an optimizer) go stale.
   */
  adopt?: boolean;
}

/** Keys that did not match in a non-strict load (PyTorch's `_IncompatibleKeys`). */
export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** One parameter or buffer slot: the module owning it and its property name there. */
interface Slot {
  readonly name: string;
  readonly owner: Module;
  readonly key: string;
  readonly tensor: Tensor;
  readonly kind: "parameter" | "buffer";
}

type Props = Record<string, unknown>;

/**
 * Base class of layers and models (PyTorch's `nn.Module`). Submodules and parameters are found by walking the
 * instance's own properties, so the property names are the state-dict names: a `Linear` stored as
 * `this.proj_in` has parameters `proj_in.weight` and `proj_in.bias`. Numbered children go in a
 * {@link ModuleList} (`down_blocks.0`). A property set to null (e.g. `bias` without bias) is skipped. To keep a
 * reference to a module or tensor out of the tree, hold it in a `#private` field. Order (state-dict order) is the
 * order in which the properties were first defined: class field declaration order, then constructor assignments.
 *
 * `In`/`Out` type {@link forward} and {@link call}.
 */
export class Module<In extends unknown[] = unknown[], Out = unknown> {
  /** Training mode (dropout active); set with {@link train} / {@link eval}, which recurse. */
  training = true;
  /** Buffer names -> persistent (included in the state dict). */
  readonly #buffers = new Map<string, boolean>();

  /** The computation. Subclasses override it; call it through {@link call}. */
  forward(..._args: In): Out {
    throw new ArgumentError(`${this.constructor.name} does not define forward()`);
  }

  /**
   * True while this instance's `forward` is shadowed by a hook (an on-the-fly LoRA adapter): a caller that folds the
   * layer's math into a fused kernel must then go through {@link call} instead.
   */
  get forwardIsHooked(): boolean {
    return Object.hasOwn(this, "forward");
  }

  /** Runs {@link forward} (the typed equivalent of PyTorch's `module(x)`). */
  call(...args: In): Out {
    return this.forward(...args);
  }

  /**
   * Registers a non-trainable tensor (running statistics, position ids) as property `name`. Persistent buffers
   * are part of the state dict. Passing null registers the name with no tensor (skipped until set).
   */
  registerBuffer(name: string, tensor: Tensor | null, opts: { persistent?: boolean } = {}): void {
    if (name === "" || name.includes("."))
      throw new ArgumentError(`buffer name "${name}" must be non-empty, no "."`);
    const current = (this as unknown as Props)[name];
    if (current instanceof Module || current instanceof Parameter) {
      throw new ArgumentError(`registerBuffer: "${name}" is already a submodule or parameter`);
    }
    this.#buffers.set(name, opts.persistent ?? true);
    (this as unknown as Props)[name] = tensor;
  }

  /** Own parameters, buffers and children, in property order. */
  #ownMembers(): {
    params: [string, Parameter][];
    buffers: [string, Tensor, boolean][];
    children: [string, Module][];
  } {
    const params: [string, Parameter][] = [];
    const buffers: [string, Tensor, boolean][] = [];
    const children: [string, Module][] = [];
    for (const [key, value] of Object.entries(this)) {
      if (value instanceof Module) children.push([key, value]);
      else if (value instanceof Parameter) params.push([key, value]);
      else if (value instanceof Tensor && this.#buffers.has(key))
        buffers.push([key, value, this.#buffers.get(key)!]);
    }
    return { params, buffers, children };
  }

  /** Direct submodules with their property names. */
  namedChildren(): [string, Module][] {
    return this.#ownMembers().children;
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module (name "") and every submodule, depth first, each once (PyTorch's `named_modules`). */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, name: string): void => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [key, child] of m.namedChildren()) visit(child, name ? `${name}.${key}` : key);
    };
    visit(this, prefix);
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Every parameter with its dotted name, each (shared) parameter once. */
  namedParameters(): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [key, p] of m.#ownMembers().params) {
        if (seen.has(p)) continue;
        seen.add(p);
        out.push([prefix ? `${prefix}.${key}` : key, p]);
      }
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Every buffer (persistent or not) with its dotted name. */
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [key, b] of m.#ownMembers().buffers) out.push([prefix ? `${prefix}.${key}` : key, b]);
    }
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  /** Parameter and persistent buffer slots in state-dict order (own parameters, own buffers, then children). */
  #slots(): Slot[] {
    const out: Slot[] = [];
    const ancestors = new Set<Module>();
    const visit = (m: Module, prefix: string): void => {
      if (ancestors.has(m)) return; // a reference cycle: not part of the tree
      ancestors.add(m);
      const { params, buffers, children } = m.#ownMembers();
      for (const [key, tensor] of params) {
        out.push({ name: prefix + key, owner: m, key, tensor, kind: "parameter" });
      }
      for (const [key, tensor, persistent] of buffers) {
        if (persistent) out.push({ name: prefix + key, owner: m, key, tensor, kind: "buffer" });
      }
      for (const [key, child] of children) visit(child, `${prefix}${key}.`);
      ancestors.delete(m);
    };
    visit(this, "");
    return out;
  }

  /**
   * Parameters and persistent buffers by dotted name, in PyTorch's order. The tensors share storage with the
   * module (detached views), so save them before training further.
   */
  stateDict(): Map<string, Tensor> {
    return new Map(this.#slots().map((s) => [s.name, detach(s.tensor)]));
  }

  /**
   * Copies a state dict into the module's parameters and buffers. Every key and shape is checked before anything
   * is written; all problems are reported together in one {@link StateDictError}. Float values are converted to
   * the module's dtype unless `keepDtype` is set.
   */
  loadStateDict(sd: StateDict, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const given: ReadonlyMap<string, Tensor> = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const slots = this.#slots();
    const known = new Set(slots.map((s) => s.name));
    const missingKeys = slots.filter((s) => !given.has(s.name)).map((s) => s.name);
    const unexpectedKeys = [...given.keys()].filter((k) => !known.has(k));
    const mismatched: ShapeMismatch[] = [];
    for (const s of slots) {
      const t = given.get(s.name);
      if (t && !shapesEqual(t.shape, s.tensor.shape)) {
        mismatched.push({ key: s.name, expected: s.tensor.shape, found: t.shape });
      }
    }
    if (mismatched.length > 0 || (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0))) {
      throw new StateDictError(this.constructor.name, missingKeys, unexpectedKeys, mismatched);
    }
    for (const s of slots) {
      const t = given.get(s.name);
      if (t) loadInto(s, t, opts);
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Sets training mode on this module and every submodule. Returns this. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Evaluation mode (`train(false)`): dropout off. Returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Clears every parameter's gradient (`.grad = null`). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      release(p.grad);
      p.grad = null;
    }
  }

  /** Total number of parameter elements (only those with requiresGrad when `trainableOnly`). */
  numParameters(opts: { trainableOnly?: boolean } = {}): number {
    let n = 0;
    for (const p of this.parameters()) if (!opts.trainableOnly || p.requiresGrad) n += p.size;
    return n;
  }

  /** Calls `fn` on every submodule (children first) and then on this module, as PyTorch's `apply`. Returns this. */
  apply(fn: (m: Module) => void): this {
    for (const child of this.children()) child.apply(fn);
    fn(this);
    return this;
  }

  /**
   * Converts every floating-point parameter and buffer to `dtype` (integer buffers are kept). Parameters are
   * replaced by new ones (gradients dropped), so convert before creating an optimizer. Returns this.
   */
  toDType(dtype: DType): this {
    if (!isFloating(dtype)) throw new ArgumentError(`toDType: expected a floating dtype, got ${dtype}`);
    for (const m of this.modules()) {
      const { params, buffers } = m.#ownMembers();
      const props = m as unknown as Props;
      for (const [key, p] of params) {
        if (isFloating(p.dtype) && p.dtype !== dtype)
          props[key] = new Parameter(to(p, dtype), p.requiresGrad);
      }
      for (const [key, b] of buffers) {
        if (isFloating(b.dtype) && b.dtype !== dtype) props[key] = detach(to(b, dtype));
      }
    }
    return this;
  }

  /**
   * Moves every parameter and buffer to `device` (PyTorch's `module.to(device)`). Parameters are replaced by new
   * ones there (gradients dropped), so move before creating an optimizer. Returns this.
   */
  toDevice(device: Device): this {
    for (const m of this.modules()) {
      const { params, buffers } = m.#ownMembers();
      const props = m as unknown as Props;
      for (const [key, p] of params) {
        if (p.device === device) continue;
        props[key] = new Parameter(toDevice(detach(p), device), p.requiresGrad);
        markMoved(p, device);
      }
      for (const [key, b] of buffers) if (b.device !== device) props[key] = toDevice(detach(b), device);
    }
    return this;
  }

  /** The device of the module's parameters (of its buffers when it has none; "cpu" when it has neither). */
  get device(): Device {
    return this.parameters()[0]?.device ?? this.buffers()[0]?.device ?? "cpu";
  }
}

/**
 * Writes `src` into a slot: converted in place, or adopted as it is (`adopt`, same dtype and device, contiguous),
 * or (keepDtype, float to float) adopted with its own dtype.
 */
function loadInto(slot: Slot, src: Tensor, opts: LoadStateDictOptions): void {
  const dst = slot.tensor;
  const props = slot.owner as unknown as Props;
  if (opts.adopt && src.dtype === dst.dtype && src.device === dst.device && src.isContiguous()) {
    props[slot.key] = slot.kind === "parameter" ? new Parameter(src, dst.requiresGrad) : detach(src);
    return;
  }
  if (opts.keepDtype && src.dtype !== dst.dtype && isFloating(src.dtype) && isFloating(dst.dtype)) {
    // adopted with its dtype, on the slot's device
    const placed = toDevice(src, dst.device);
    props[slot.key] =
      slot.kind === "parameter" ? new Parameter(placed, dst.requiresGrad) : detach(contiguous(placed));
    return;
  }
  if (dst.isContiguous()) {
    copy_(dst, src);
  } else {
    const fresh = to(contiguous(to(src, dst.device)), dst.dtype);
    props[slot.key] = slot.kind === "parameter" ? new Parameter(fresh, dst.requiresGrad) : fresh;
  }
}
