// A set of trainable LoRA adapters (Hu et al. 2021) on chosen Linear / Conv2d layers of a frozen model, as a Module
// whose only parameters are the low-rank factors: hand it to an optimizer, an EMA or a checkpoint and the base
// model's weights are never touched. Each layer gets down A [r, in(, kh, kw)] drawn as PyTorch initialises a layer
// of that shape (kaiming-uniform, a = √5) and up B [out, r(, 1, 1)] = 0, so the adapted model starts out equal to
// the base model (PEFT's and kohya's initialisation), and is attached on the fly (src/nn/lora.ts "adapter" mode):
// y = base(x) + s · (α / r) · B A x.
import { toDevice } from "../ops/index.js";
import { zeros } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Generator } from "../tensor/generator.js";
import type { Tensor } from "../tensor/tensor.js";
import { Conv2d } from "./conv.js";
import { kaimingUniform } from "./init.js";
import { addLoraAdapter, isLoraLayer, type LoraAdapter, type LoraLayer } from "./lora.js";
import { Module } from "./module.js";
import { Parameter } from "./parameter.js";

/** The trainable factors of one layer's LoRA. */
export class LoraFactors extends Module {
  /** A: [r, in] for a Linear, [r, in, kh, kw] for a Conv2d. */
  down: Parameter;
  /** B: [out, r] for a Linear, [out, r, 1, 1] for a Conv2d. */
  up: Parameter;

  constructor(layer: LoraLayer, rank: number, generator?: Generator) {
    super();
    const device = layer.weight.device;
    let downShape: number[];
    let upShape: number[];
    if (layer instanceof Conv2d) {
      const [kh, kw] = layer.kernelSize;
      downShape = [rank, layer.inChannels, kh, kw];
      upShape = [layer.outChannels, rank, 1, 1];
    } else {
      downShape = [rank, layer.inFeatures];
      upShape = [layer.outFeatures, rank];
    }
    const down = kaimingUniform(zeros(downShape), { a: Math.sqrt(5), generator });
    this.down = new Parameter(toDevice(down, device));
    this.up = new Parameter(toDevice(zeros(upShape), device));
  }
}

/** Options of {@link LoraNetwork}. */
export interface LoraNetworkOptions {
  /** r, the rank of every adapter (a positive integer). */
  rank: number;
  /** α: the update is scaled by α / r (default r). */
  alpha?: number;
  /** Draws the down factors (default: the global generator). */
  generator?: Generator;
  /** A label for messages (default `lora`). */
  name?: string;
}

/** One adapted layer of a {@link LoraNetwork}. */
export interface LoraNetworkLayer {
  /** The layer's dotted path in the model (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`). */
  readonly path: string;
  readonly layer: LoraLayer;
  readonly factors: LoraFactors;
}

/**
 * Trainable LoRA adapters on the layers `paths` of `model`, attached at construction; see the file comment. The
 * state-dict names are the layers' paths with "_" for "." (`down_blocks_0_..._to_q.down`).
 *
 * @example
 * const net = new LoraNetwork(unet, ["mid_block.attentions.0.transformer_blocks.0.attn1.to_q"], { rank: 4 });
 * const opt = new AdamW(net.parameters(), { lr: 1e-4 });
 */
export class LoraNetwork extends Module {
  readonly rank: number;
  readonly alpha: number;
  readonly #layers: LoraNetworkLayer[] = [];
  readonly #adapters: LoraAdapter[] = [];
  #scale = 1;

  constructor(model: Module, paths: readonly string[], opts: LoraNetworkOptions) {
    super();
    const name = opts.name ?? "lora";
    const { rank } = opts;
    if (!Number.isInteger(rank) || rank < 1)
      throw new ArgumentError(`LoRA "${name}": rank must be a positive integer, got ${rank}`);
    const alpha = opts.alpha ?? rank;
    if (!Number.isFinite(alpha) || alpha <= 0)
      throw new ArgumentError(`LoRA "${name}": alpha must be a positive number, got ${alpha}`);
    this.rank = rank;
    this.alpha = alpha;
    if (paths.length === 0) throw new ArgumentError(`LoRA "${name}": no layers to adapt`);
    const modules = new Map(model.namedModules());
    const props = this as unknown as Record<string, unknown>;
    for (const path of paths) {
      const layer = modules.get(path);
      if (!layer) throw new ArgumentError(`LoRA "${name}": the model has no module ${path}`);
      if (!isLoraLayer(layer))
        throw new ArgumentError(
          `LoRA "${name}": ${path} is a ${layer.constructor.name}; LoRA adapts Linear and Conv2d layers`,
        );
      const key = path.replaceAll(".", "_");
      if (key in props)
        throw new ArgumentError(`LoRA "${name}": ${path} is listed twice or shares its name ${key}`);
      const factors = new LoraFactors(layer, rank, opts.generator);
      props[key] = factors;
      this.#layers.push({ path, layer, factors });
    }
    try {
      for (const { path, layer, factors } of this.#layers) {
        const weights = { down: factors.down, up: factors.up, alpha };
        this.#adapters.push(addLoraAdapter(layer, weights, { name: `${name}:${path}` }));
      }
    } catch (err) {
      this.remove();
      throw err;
    }
  }

  /** The adapted layers, in the order given. */
  get layers(): readonly LoraNetworkLayer[] {
    return this.#layers;
  }

  /** The user scale s of every adapter (default 1). */
  get scale(): number {
    return this.#scale;
  }

  /** Sets the scale s of every adapter (0 turns the network off without detaching it). */
  setScale(scale: number): void {
    for (const a of this.#adapters) a.setScale(scale);
    this.#scale = scale;
  }

  /** False once {@link remove}d. */
  get attached(): boolean {
    return this.#adapters.length > 0 && this.#adapters[0]!.active;
  }

  /** Takes every adapter off the model (the model is then exactly the base model). Removing twice is a no-op. */
  remove(): void {
    for (const a of [...this.#adapters].reverse()) a.remove();
  }

  /** The factors and α of every layer, e.g. to write a LoRA file (the tensors are the live parameters). */
  weights(): { path: string; down: Tensor; up: Tensor; alpha: number }[] {
    return this.#layers.map(({ path, factors }) => ({
      path,
      down: factors.down,
      up: factors.up,
      alpha: this.alpha,
    }));
  }
}

/**
 * Freezes every parameter of `model` (requiresGrad off): backward then neither computes nor stores gradients of the
 * base weights, only of what requires them (LoRA factors). Returns the number of parameters frozen.
 */
export function freezeParameters(model: Module): number {
  let n = 0;
  for (const p of model.parameters()) {
    if (p.requiresGrad) n++;
    p.requiresGrad = false;
  }
  return n;
}
