// LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") on Linear and Conv2d
// layers. A frozen weight W [out, in(, kh, kw)] gets a low-rank update ΔW = s · (α / r) · B A, with A = `down`
// [r, in(, kh, kw)] and B = `up` [out, r(, 1, 1)]: kohya's conv LoRA is a kxk conv to r channels followed by a 1x1
// conv. Two ways to apply it:
//   - "adapter" (on the fly): the layer's forward becomes y = base(x) + s · (α / r) · up(down(x)); W is untouched
//     and gradients reach `down` / `up` (train them by passing Parameters);
//   - "merge": W' = W + Σ ΔW over the layer's merged adapters, computed in float32 from the original W and stored
//     in W's dtype. The original weight tensor is kept, so removing the last merged adapter puts it back bit-exactly
//     (no subtraction).
// Several adapters of either kind can sit on one layer, each with its own scale.
import { add, conv2d, linear, matmul, mul, reshape, to, toDevice } from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { isFloating } from "../tensor/dtype.js";
import { ArgumentError } from "../tensor/errors.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { Conv2d } from "./conv.js";
import { Linear } from "./linear.js";
import type { Module } from "./module.js";
import { Parameter } from "./parameter.js";

/** The low-rank factors of one layer's LoRA. */
export interface LoraWeights {
  /** A: [r, in] for a Linear (or [r, in, 1, 1]); [r, in, kh, kw] for a Conv2d ([r, in] allowed for 1x1). */
  down: Tensor;
  /** B: [out, r] or [out, r, 1, 1]. */
  up: Tensor;
  /** α: the update is scaled by α / r. Default (null / undefined): r, a factor of 1. */
  alpha?: number | null;
}

/** "merge": fold the update into the weight; "adapter": add it on the fly in forward. */
export type LoraMode = "merge" | "adapter";

/** A layer LoRA can attach to. */
export type LoraLayer = Linear | Conv2d;

/** Options of {@link addLoraAdapter}. */
export interface LoraAdapterOptions {
  /** The user scale s (default 1). */
  scale?: number;
  /** Default "adapter". */
  mode?: LoraMode;
  /** A label for messages and {@link loraAdaptersOf} (default `lora`). */
  name?: string;
}

/** Per-layer bookkeeping: the original weight and forward, and the adapters in place. */
interface LayerState {
  readonly base: Parameter;
  /** The weight this module set on the layer (base while nothing is merged). */
  current: Parameter;
  readonly merged: LoraAdapter[];
  readonly onTheFly: LoraAdapter[];
  /** The layer's own `forward` property before patching (another hook), restored with the last adapter. */
  savedForward?: PropertyDescriptor;
}

const states = new WeakMap<Module, LayerState>();

/** True for the layer types LoRA supports. */
export function isLoraLayer(m: unknown): m is LoraLayer {
  return m instanceof Linear || m instanceof Conv2d;
}

function describeLayer(layer: LoraLayer): string {
  if (layer instanceof Linear) return `Linear(${layer.inFeatures} -> ${layer.outFeatures})`;
  const [kh, kw] = layer.kernelSize;
  return `Conv2d(${layer.inChannels} -> ${layer.outChannels}, ${kh}x${kw})`;
}

/**
 * Why `weights` cannot be attached to `layer`, or null when they fit: the layer type, the ranks of down and up,
 * and their shapes against the layer's weight are checked (nothing is read or written).
 */
export function loraShapeProblem(layer: Module, weights: LoraWeights): string | null {
  if (!isLoraLayer(layer)) return `is a ${layer.constructor.name}, LoRA supports Linear and Conv2d only`;
  const { down, up } = weights;
  if (!isFloating(down.dtype) || !isFloating(up.dtype))
    return `LoRA weights must be floating point (down ${down.dtype}, up ${up.dtype})`;
  const r = down.shape[0] ?? 0;
  const what = describeLayer(layer);
  const isConv = layer instanceof Conv2d;
  const out = isConv ? layer.outChannels : layer.outFeatures;
  const inF = isConv ? layer.inChannels : layer.inFeatures;
  const [kh, kw] = isConv ? layer.kernelSize : [1, 1];
  if (isConv && layer.groups !== 1) return `${what} has groups ${layer.groups}; LoRA needs groups 1`;
  const downOk =
    r > 0 &&
    ((down.ndim === 2 && kh === 1 && kw === 1 && down.shape[1] === inF) ||
      (down.ndim === 4 && down.shape[1] === inF && down.shape[2] === kh && down.shape[3] === kw));
  if (!downOk) {
    const want = kh === 1 && kw === 1 ? `[r, ${inF}]` : `[r, ${inF}, ${kh}, ${kw}]`;
    return `down ${formatShape(down.shape)} does not fit ${what}: expected ${want}`;
  }
  const upOk =
    up.shape[0] === out &&
    up.shape[1] === r &&
    (up.ndim === 2 || (up.ndim === 4 && up.shape[2] === 1 && up.shape[3] === 1));
  if (!upOk)
    return `up ${formatShape(up.shape)} does not fit ${what} with rank ${r}: expected [${out}, ${r}]`;
  return null;
}

/**
 * One LoRA on one layer. Change its strength with {@link setScale}; take it off with {@link remove}.
 * Create with {@link addLoraAdapter}.
 */
export class LoraAdapter {
  readonly layer: LoraLayer;
  readonly name: string;
  readonly mode: LoraMode;
  readonly down: Tensor;
  readonly up: Tensor;
  readonly rank: number;
  /** α (r when the LoRA has none). */
  readonly alpha: number;
  #scale: number;
  #removed = false;

  /** @internal use {@link addLoraAdapter}. */
  constructor(layer: LoraLayer, weights: LoraWeights, mode: LoraMode, scale: number, name: string) {
    this.layer = layer;
    this.name = name;
    this.mode = mode;
    // factors read from a file are on the CPU: they go where the layer's weight is (trained ones already are)
    const device = layer.weight.device;
    this.down = toDevice(weights.down, device);
    this.up = toDevice(weights.up, device);
    this.rank = weights.down.shape[0]!;
    this.alpha = weights.alpha ?? this.rank;
    this.#scale = scale;
  }

  /** The user scale s. */
  get scale(): number {
    return this.#scale;
  }

  /** s · α / r: what up(down(x)) is multiplied by. */
  get factor(): number {
    return (this.#scale * this.alpha) / this.rank;
  }

  /** False once removed. */
  get active(): boolean {
    return !this.#removed;
  }

  /** Sets the scale s (a merged adapter's layer weight is recomputed from the original). */
  setScale(scale: number): void {
    checkScale(scale);
    if (this.#removed) throw new ArgumentError(`LoRA "${this.name}": setScale after remove()`);
    this.#scale = scale;
    if (this.mode === "merge") remerge(this.layer);
  }

  /** Takes the adapter off; the layer is back to what it was without it. Removing twice is a no-op. */
  remove(): void {
    if (this.#removed) return;
    const state = states.get(this.layer)!;
    const list = this.mode === "merge" ? state.merged : state.onTheFly;
    list.splice(list.indexOf(this), 1);
    this.#removed = true;
    if (this.mode === "merge") remerge(this.layer);
    else if (state.onTheFly.length === 0) unpatchForward(this.layer, state);
    if (state.merged.length === 0 && state.onTheFly.length === 0) states.delete(this.layer);
  }

  /** up(down(x)) · factor for the layer's input x. */
  delta(x: Tensor): Tensor {
    const r = this.rank;
    let h: Tensor;
    if (this.layer instanceof Linear) {
      const down = this.down.ndim === 2 ? this.down : reshape(this.down, [r, -1]);
      const up = this.up.ndim === 2 ? this.up : reshape(this.up, [this.up.shape[0]!, r]);
      h = linear(linear(x, down), up);
    } else {
      const c = this.layer;
      const down = this.down.ndim === 4 ? this.down : reshape(this.down, [r, -1, 1, 1]);
      const up = this.up.ndim === 4 ? this.up : reshape(this.up, [this.up.shape[0]!, r, 1, 1]);
      const opts = { stride: c.stride, padding: c.padding, dilation: c.dilation };
      h = conv2d(conv2d(x, down, null, opts), up);
    }
    return mul(h, this.factor);
  }
}

function checkScale(scale: number): void {
  if (!Number.isFinite(scale)) throw new ArgumentError(`LoRA scale must be a finite number, got ${scale}`);
}

/**
 * Attaches a LoRA to a Linear or Conv2d. Throws ArgumentError (touching nothing) when the shapes do not fit
 * ({@link loraShapeProblem}).
 *
 * @example
 * const a = addLoraAdapter(attn.to_q, { down, up, alpha: 8 }, { scale: 0.8, mode: "merge" });
 * a.remove();
 */
export function addLoraAdapter(
  layer: Module,
  weights: LoraWeights,
  opts: LoraAdapterOptions = {},
): LoraAdapter {
  const name = opts.name ?? "lora";
  const problem = loraShapeProblem(layer, weights);
  if (problem) throw new ArgumentError(`LoRA "${name}": ${problem}`);
  const mode = opts.mode ?? "adapter";
  if (mode !== "merge" && mode !== "adapter")
    throw new ArgumentError(`LoRA mode must be "merge" or "adapter", got ${JSON.stringify(mode)}`);
  const scale = opts.scale ?? 1;
  checkScale(scale);
  if (weights.alpha != null && !Number.isFinite(weights.alpha))
    throw new ArgumentError(`LoRA "${name}": alpha must be finite, got ${weights.alpha}`);
  const target = layer as LoraLayer;
  let state = states.get(target);
  if (state && target.weight !== state.current) {
    throw new ArgumentError(
      `LoRA "${name}": the layer's weight was replaced while LoRAs were attached; remove them before loading weights`,
    );
  }
  const adapter = new LoraAdapter(target, weights, mode, scale, name);
  if (!state) {
    state = { base: target.weight, current: target.weight, merged: [], onTheFly: [] };
    states.set(target, state);
  }
  if (mode === "merge") {
    state.merged.push(adapter);
    remerge(target);
  } else {
    state.onTheFly.push(adapter);
    if (state.onTheFly.length === 1) patchForward(target, state);
  }
  return adapter;
}

/** Adapters currently on a layer (merged first, then on-the-fly, each in the order added). */
export function loraAdaptersOf(layer: Module): LoraAdapter[] {
  const s = states.get(layer);
  return s ? [...s.merged, ...s.onTheFly] : [];
}

/**
 * Shadows the class's forward with one that adds every on-the-fly adapter's update (removed with the last). A
 * residual given to the forward (Conv2d's skip connection) is added after the updates.
 */
function patchForward(layer: LoraLayer, state: LayerState): void {
  state.savedForward = Object.getOwnPropertyDescriptor(layer, "forward");
  type Forward = (x: Tensor, residual?: Tensor | null) => Tensor;
  const base = (state.savedForward?.value ?? Object.getPrototypeOf(layer).forward) as Forward;
  (layer as { forward: Forward }).forward = function (
    this: LoraLayer,
    x: Tensor,
    residual?: Tensor | null,
  ): Tensor {
    let y = base.call(this, x);
    for (const a of state.onTheFly) y = add(y, a.delta(x));
    return residual ? add(y, residual) : y;
  };
}

function unpatchForward(layer: LoraLayer, state: LayerState): void {
  if (state.savedForward) Object.defineProperty(layer, "forward", state.savedForward);
  else delete (layer as { forward?: unknown }).forward;
  state.savedForward = undefined;
}

/** Sets the layer's weight to the original plus every merged adapter's update (or the original itself). */
function remerge(layer: LoraLayer): void {
  const state = states.get(layer)!;
  if (layer.weight !== state.current) {
    throw new ArgumentError(
      "LoRA: the layer's weight was replaced while a LoRA was merged into it; remove LoRAs before loading weights",
    );
  }
  const next =
    state.merged.length === 0
      ? state.base
      : new Parameter(mergedWeight(state.base, state.merged), state.base.requiresGrad);
  layer.weight = next;
  state.current = next;
}

/** W + Σ factor_i · B_i A_i in float32, returned in W's dtype (a new tensor; W is not modified). */
export function mergedWeight(weight: Tensor, adapters: readonly LoraAdapter[]): Tensor {
  return noGrad(() => {
    const out = weight.shape[0]!;
    let w = to(weight, "float32");
    for (const a of adapters) {
      const up = reshape(to(a.up, "float32"), [out, a.rank]);
      const down = reshape(to(a.down, "float32"), [a.rank, -1]);
      w = add(w, reshape(mul(matmul(up, down), a.factor), weight.shape));
    }
    return weight.dtype === "float32" ? w : to(w, weight.dtype);
  });
}
