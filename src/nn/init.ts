// Weight initialisation (PyTorch's torch.nn.init, without the trailing underscores): each function fills a
// contiguous tensor in place and returns it. Random ones draw from the given Generator in the order and with the
// float32 arithmetic of PyTorch's CPU kernels, so equal seeds give PyTorch's numbers (given a torch-compatible
// Generator).
import { writeValues } from "../ops/index.js";
import { ArgumentError } from "../tensor/errors.js";
import { defaultGenerator, type Generator } from "../tensor/generator.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";

/** Nonlinearities known to {@link calculateGain}. */
export type Nonlinearity =
  | "linear"
  | "conv1d"
  | "conv2d"
  | "conv3d"
  | "sigmoid"
  | "tanh"
  | "relu"
  | "leaky_relu"
  | "selu";

/** Fan-in / fan-out mode of the Kaiming initialisations. */
export type FanMode = "fan_in" | "fan_out";

/** Options of the Kaiming initialisations. */
export interface KaimingOptions {
  /** negative slope of the leaky ReLU that follows (default 0) */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
  generator?: Generator;
}

const f = Math.fround;

/** Writes float32 `values` into `t`'s storage (converted to its dtype). */
function write(t: Tensor, values: Float32Array): Tensor {
  if (!t.isContiguous()) {
    throw new ArgumentError(`init: expected a contiguous tensor, got strides [${t.strides.join(", ")}]`);
  }
  return writeValues(t, values);
}

/** The recommended gain for a nonlinearity (PyTorch's `calculate_gain`); `param` is leaky_relu's slope. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear":
    case "conv1d":
    case "conv2d":
    case "conv3d":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case "selu":
      return 3 / 4;
  }
}

/**
 * Fan-in and fan-out of a weight shape: [out, in, ...kernel] gives in * receptive field and out * receptive field.
 */
export function fanInAndFanOut(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new ArgumentError(`fan in/out need a tensor with at least 2 dims, got shape ${formatShape(shape)}`);
  }
  let receptive = 1;
  for (let i = 2; i < shape.length; i++) receptive *= shape[i]!;
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

/** Fills `t` with U(a, b) (PyTorch's `uniform_`: `u * (b - a) + a` in float32 for each draw u of `rand`). */
export function uniform(t: Tensor, a = 0, b = 1, generator: Generator = defaultGenerator): Tensor {
  const u = generator.uniform(t.size);
  const lo = f(a);
  const range = f(f(b) - lo);
  for (let i = 0; i < u.length; i++) u[i] = f(u[i]! * range) + lo;
  return write(t, u);
}

/** Fills `t` with N(mean, std²) (PyTorch's `normal_`: `z * std + mean` for each draw z of `randn`). */
export function normal(t: Tensor, mean = 0, std = 1, generator: Generator = defaultGenerator): Tensor {
  const z = generator.normal(t.size);
  if (mean !== 0 || std !== 1) {
    const m = f(mean);
    const s = f(std);
    for (let i = 0; i < z.length; i++) z[i] = f(z[i]! * s) + m;
  }
  return write(t, z);
}

/** Fills `t` with `value`. */
export function constant(t: Tensor, value: number): Tensor {
  return write(t, new Float32Array(t.size).fill(value));
}

export function zeros(t: Tensor): Tensor {
  return constant(t, 0);
}

export function ones(t: Tensor): Tensor {
  return constant(t, 1);
}

function kaimingStd(t: Tensor, opts: KaimingOptions): number {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  const fan = (opts.mode ?? "fan_in") === "fan_in" ? fanIn : fanOut;
  if (fan === 0) throw new ArgumentError(`kaiming init of a tensor with zero fan (${formatShape(t.shape)})`);
  const gain = calculateGain(opts.nonlinearity ?? "leaky_relu", opts.a ?? 0);
  return gain / Math.sqrt(fan);
}

/**
 * He initialisation, uniform: U(-bound, bound) with bound = gain * sqrt(3 / fan) (He et al. 2015).
 * `nn.Linear` and `nn.Conv2d` use it with a = sqrt(5), which gives bound = 1 / sqrt(fan_in).
 */
export function kaimingUniform(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, opts);
  return uniform(t, -bound, bound, opts.generator);
}

/** He initialisation, normal: N(0, std²) with std = gain / sqrt(fan). */
export function kaimingNormal(t: Tensor, opts: KaimingOptions = {}): Tensor {
  return normal(t, 0, kaimingStd(t, opts), opts.generator);
}

/** Glorot initialisation, uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010). */
export function xavierUniform(t: Tensor, opts: { gain?: number; generator?: Generator } = {}): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  const a = Math.sqrt(3) * (opts.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
  return uniform(t, -a, a, opts.generator);
}

/** Glorot initialisation, normal: N(0, std²) with std = gain * sqrt(2 / (fan_in + fan_out)). */
export function xavierNormal(t: Tensor, opts: { gain?: number; generator?: Generator } = {}): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  return normal(t, 0, (opts.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut)), opts.generator);
}

/**
 * The default initialisation of `nn.Linear` / `nn.ConvNd`: weight kaiming_uniform(a = sqrt(5)), then bias
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn in that order.
 */
export function defaultLinearInit(weight: Tensor, bias: Tensor | null, generator?: Generator): void {
  kaimingUniform(weight, { a: Math.sqrt(5), generator });
  if (bias) {
    const { fanIn } = fanInAndFanOut(weight.shape);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform(bias, -bound, bound, generator);
  }
}
