// Timestep embeddings: the sinusoidal projection of a diffusion timestep (diffusers' `Timesteps`) and the MLP that
// follows it (`TimestepEmbedding`).
import { type LayerOptions, Linear, Module } from "../../nn/index.js";
import { add } from "../../ops/index.js";
import { ArgumentError, ShapeError } from "../../tensor/errors.js";
import { formatShape } from "../../tensor/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { type Activation, activation } from "./activation.js";

/** Options of {@link timestepEmbedding}. */
export interface TimestepEmbeddingOptions {
  /** Put the cosines first (diffusers' `flip_sin_to_cos`; true for Stable Diffusion). Default false. */
  flipSinToCos?: boolean;
  /** diffusers' `downscale_freq_shift` (a UNet's `freq_shift`): frequencies are max_period^(-i / (half - shift)). Default 1. */
  downscaleFreqShift?: number;
  /** Multiplies the arguments of sin/cos. Default 1. */
  scale?: number;
  /** Default 10000. */
  maxPeriod?: number;
}

/**
 * Sinusoidal embeddings [N, dim] of N timesteps (DDPM, Ho et al. 2020, after the Transformer's positional
 * encoding): with half = floor(dim / 2) and f_i = exp(-ln(maxPeriod) * i / (half - shift)), row n is
 * [sin(t_n f_i)..., cos(t_n f_i)...] (halves swapped with `flipSinToCos`, a zero appended when dim is odd).
 * Every step is rounded to float32 as diffusers' `get_timestep_embedding` computes it on float32 tensors, so a
 * timestep like 623.4567 is first rounded to float32.
 */
export function timestepEmbedding(
  timesteps: ArrayLike<number>,
  dim: number,
  opts: TimestepEmbeddingOptions = {},
): Tensor {
  if (!Number.isInteger(dim) || dim < 1)
    throw new ArgumentError(`timestepEmbedding: dim must be a positive integer, got ${dim}`);
  const f = Math.fround;
  const half = Math.floor(dim / 2);
  const shift = opts.downscaleFreqShift ?? 1;
  const scale = opts.scale ?? 1;
  const flip = opts.flipSinToCos ?? false;
  const negLog = f(-Math.log(opts.maxPeriod ?? 10000));
  const denom = f(half - shift);
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = f(Math.exp(f(f(negLog * i) / denom)));
  const n = timesteps.length;
  const out = new Float32Array(n * dim);
  const [sinAt, cosAt] = flip ? [half, 0] : [0, half];
  for (let r = 0; r < n; r++) {
    const t = f(timesteps[r]!);
    if (!Number.isFinite(t))
      throw new ArgumentError(`timestepEmbedding: timestep ${timesteps[r]} is not finite`);
    const row = r * dim;
    for (let i = 0; i < half; i++) {
      let arg = f(t * freqs[i]!);
      if (scale !== 1) arg = f(scale * arg);
      out[row + sinAt + i] = Math.sin(arg);
      out[row + cosAt + i] = Math.cos(arg);
    }
  }
  return Tensor.fromStorage(out, [n, dim], "float32");
}

/** The float32 values of a 0-d or 1-d timestep tensor (any dtype) or of numbers. */
export function timestepValues(t: Tensor | number | ArrayLike<number>): Float32Array {
  if (typeof t === "number") return Float32Array.of(t);
  if (t instanceof Tensor) {
    if (t.ndim > 1)
      throw new ShapeError(`timesteps must be a number or a 0-d/1-d tensor, got ${formatShape(t.shape)}`);
    return t.toFloat32Array();
  }
  return Float32Array.from(t);
}

/**
 * diffusers' `Timesteps` module: no parameters, maps timesteps [N] to sinusoidal embeddings [N, numChannels]
 * (see {@link timestepEmbedding}).
 */
export class Timesteps extends Module<[Tensor | number | ArrayLike<number>], Tensor> {
  readonly numChannels: number;
  readonly flipSinToCos: boolean;
  readonly downscaleFreqShift: number;
  readonly scale: number;

  constructor(numChannels: number, flipSinToCos: boolean, downscaleFreqShift: number, scale = 1) {
    super();
    this.numChannels = numChannels;
    this.flipSinToCos = flipSinToCos;
    this.downscaleFreqShift = downscaleFreqShift;
    this.scale = scale;
  }

  override forward(timesteps: Tensor | number | ArrayLike<number>): Tensor {
    return timestepEmbedding(timestepValues(timesteps), this.numChannels, {
      flipSinToCos: this.flipSinToCos,
      downscaleFreqShift: this.downscaleFreqShift,
      scale: this.scale,
    });
  }
}

/** Options of {@link TimestepEmbedding}. */
export interface TimestepEmbeddingModuleOptions extends LayerOptions {
  /** Activation between the two layers (default "silu"). */
  actFn?: string;
  /** Output size (default timeEmbedDim). */
  outDim?: number;
  /** Activation after linear_2 (diffusers' `post_act_fn`; default none). */
  postActFn?: string | null;
  /** Size of an extra condition projected (no bias) and added to the input (`cond_proj`, LCM's guidance embedding). */
  condProjDim?: number | null;
}

/**
 * diffusers' `TimestepEmbedding`: `linear_2(act(linear_1(x + cond_proj(condition))))`, mapping the sinusoidal
 * embedding [N, inChannels] to the time embedding [N, timeEmbedDim] that conditions every ResNet block.
 */
export class TimestepEmbedding extends Module<[Tensor, (Tensor | null)?], Tensor> {
  linear_1: Linear;
  linear_2: Linear;
  cond_proj: Linear | null;
  readonly #act: Activation;
  readonly #postAct: Activation | null;

  constructor(inChannels: number, timeEmbedDim: number, opts: TimestepEmbeddingModuleOptions = {}) {
    super();
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    this.linear_1 = new Linear(inChannels, timeEmbedDim, layer);
    this.linear_2 = new Linear(timeEmbedDim, opts.outDim ?? timeEmbedDim, layer);
    this.cond_proj =
      opts.condProjDim != null ? new Linear(opts.condProjDim, inChannels, { ...layer, bias: false }) : null;
    this.#act = activation(opts.actFn ?? "silu", "TimestepEmbedding");
    this.#postAct = opts.postActFn != null ? activation(opts.postActFn, "TimestepEmbedding") : null;
  }

  override forward(sample: Tensor, condition?: Tensor | null): Tensor {
    let x = sample;
    if (condition) {
      if (!this.cond_proj)
        throw new ArgumentError("TimestepEmbedding: a condition was given but there is no cond_proj");
      x = add(x, this.cond_proj.call(condition));
    }
    x = this.linear_2.call(this.#act(this.linear_1.call(x)));
    return this.#postAct ? this.#postAct(x) : x;
  }
}
