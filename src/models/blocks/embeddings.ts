// Timestep embeddings: the sinusoidal projection of a diffusion timestep (diffusers' `Timesteps`) and the MLP that
// follows it (`TimestepEmbedding`).
import { type LayerOptions, Linear, Module } from "../../nn/index.js";
import { add, cat, cos, mul, pad, reshape, sin, to } from "../../ops/index.js";
import { tensor } from "../../tensor/create.js";
import type { Device } from "../../tensor/device.js";
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
  /** Where the embeddings go (default: the timesteps' device, "cpu" for numbers). */
  device?: Device;
}

/**
 * Sinusoidal embeddings [N, dim] of N timesteps (DDPM, Ho et al. 2020, after the Transformer's positional
 * encoding): with half = floor(dim / 2) and f_i = exp(-ln(maxPeriod) * i / (half - shift)), row n is
 * [sin(t_n f_i)..., cos(t_n f_i)...] (halves swapped with `flipSinToCos`, a zero appended when dim is odd).
 * Every step is rounded to float32 as diffusers' `get_timestep_embedding` computes it on float32 tensors, so a
 * timestep like 623.4567 is first rounded to float32.
 */
export function timestepEmbedding(
  timesteps: ArrayLike<number> | Tensor,
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
  if (timesteps instanceof Tensor && timesteps.device !== "cpu") {
    return deviceEmbedding(timesteps, freqs, dim, scale, flip);
  }
  const values = timesteps instanceof Tensor ? timesteps.toFloat32Array() : timesteps;
  const n = values.length;
  const out = new Float32Array(n * dim);
  const [sinAt, cosAt] = flip ? [half, 0] : [0, half];
  for (let r = 0; r < n; r++) {
    const t = f(values[r]!);
    if (!Number.isFinite(t))
      throw new ArgumentError(`timestepEmbedding: timestep ${values[r]} is not finite`);
    const row = r * dim;
    for (let i = 0; i < half; i++) {
      let arg = f(t * freqs[i]!);
      if (scale !== 1) arg = f(scale * arg);
      out[row + sinAt + i] = Math.sin(arg);
      out[row + cosAt + i] = Math.cos(arg);
    }
  }
  return tensor(out, [n, dim], { device: opts.device ?? "cpu" });
}

/** The same embedding computed by kernels on the device of `timesteps` (no readback; float32 sin/cos). */
function deviceEmbedding(
  timesteps: Tensor,
  freqs: Float32Array,
  dim: number,
  scale: number,
  flip: boolean,
): Tensor {
  const n = timesteps.size;
  const half = freqs.length;
  let args = mul(
    reshape(to(timesteps, "float32"), [n, 1]),
    tensor(freqs, [1, half], { device: timesteps.device }),
  );
  if (scale !== 1) args = mul(args, scale);
  const parts = flip ? [cos(args), sin(args)] : [sin(args), cos(args)];
  const emb = cat(parts, 1);
  return dim % 2 === 1 ? pad(emb, [0, 1]) : emb;
}

/**
 * The timesteps of a batch of `batch` samples: numbers (one broadcast, or one per sample) as float32 values, or a
 * 0-d/1-d tensor on a device other than the CPU, kept there (expanded to the batch).
 */
export function batchTimesteps(
  t: Tensor | number | ArrayLike<number>,
  batch: number,
  who: string,
): Float32Array | Tensor {
  if (t instanceof Tensor && t.ndim > 1)
    throw new ShapeError(
      `${who}: timesteps must be a number or a 0-d/1-d tensor, got ${formatShape(t.shape)}`,
    );
  if (t instanceof Tensor && t.device !== "cpu") {
    if (t.size === batch) return reshape(t, [batch]);
    if (t.size === 1) return reshape(t, [1]).expand([batch]);
    throw new ShapeError(`${who}: got ${t.size} timesteps for a batch of ${batch}`);
  }
  const v =
    typeof t === "number"
      ? Float32Array.of(t)
      : t instanceof Tensor
        ? t.toFloat32Array()
        : Float32Array.from(t);
  if (v.length === batch) return v;
  if (v.length === 1) return new Float32Array(batch).fill(v[0]!);
  throw new ShapeError(`${who}: got ${v.length} timesteps for a batch of ${batch}`);
}

/**
 * diffusers' `Timesteps` module: no parameters, maps timesteps [N] to sinusoidal embeddings [N, numChannels]
 * (see {@link timestepEmbedding}).
 */
export class Timesteps extends Module<[Tensor | number | ArrayLike<number>, Device?], Tensor> {
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

  /** Embeddings [N, numChannels] of N timesteps, made on `device` (default: the timesteps' own device). */
  override forward(timesteps: Tensor | number | ArrayLike<number>, device?: Device): Tensor {
    if (timesteps instanceof Tensor && timesteps.ndim > 1) {
      throw new ShapeError(
        `timesteps must be a number or a 0-d/1-d tensor, got ${formatShape(timesteps.shape)}`,
      );
    }
    const values =
      timesteps instanceof Tensor || typeof timesteps !== "number" ? timesteps : Float32Array.of(timesteps);
    return timestepEmbedding(values, this.numChannels, {
      flipSinToCos: this.flipSinToCos,
      downscaleFreqShift: this.downscaleFreqShift,
      scale: this.scale,
      device: device ?? (timesteps instanceof Tensor ? timesteps.device : "cpu"),
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
