// Beta schedules and the quantities derived from them (DDPM, Ho et al. 2020), computed with the dtypes diffusers
// uses: betas and alphas in float32, alphas_cumprod as torch.cumprod does it on CPU (float64 running product, each
// output rounded to float32). The results match diffusers bit for bit.
import { SchedulerError } from "./errors.js";
import { f32, torchLinspaceF32 } from "./numerics.js";

/** Names accepted by `beta_schedule`. */
export type BetaSchedule = "linear" | "scaled_linear" | "squaredcos_cap_v2" | "sigmoid";

/** The inputs of a beta schedule, named as in diffusers' scheduler configs. */
export interface BetaScheduleConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: string;
  trained_betas?: readonly number[] | null;
  rescale_betas_zero_snr?: boolean;
}

/** The training noise schedule: beta_t, alpha_t = 1 - beta_t and alpha-bar_t = prod_{s<=t} alpha_s. */
export interface NoiseSchedule {
  betas: Float32Array;
  alphas: Float32Array;
  alphasCumprod: Float32Array;
}

/**
 * Betas that discretise a continuous alpha-bar(t) on [0, 1]: beta_i = min(1 - abar((i+1)/n) / abar(i/n), maxBeta).
 * "cosine" is the squared-cosine schedule of Nichol & Dhariwal 2021 (eq. 17, s = 0.008); "exp" is exp(-12 t).
 */
export function betasForAlphaBar(
  n: number,
  maxBeta = 0.999,
  transform: "cosine" | "exp" = "cosine",
): Float32Array {
  const alphaBar =
    transform === "cosine"
      ? (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2
      : (t: number) => Math.exp(t * -12.0);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta);
  return out;
}

/** The betas of a config: `trained_betas` when given, else the named `beta_schedule`. */
export function makeBetas(config: BetaScheduleConfig): Float32Array {
  const n = config.num_train_timesteps;
  if (config.trained_betas != null) {
    if (config.trained_betas.length !== n) {
      throw new SchedulerError(
        `trained_betas has ${config.trained_betas.length} values but num_train_timesteps is ${n}; they must agree`,
      );
    }
    return Float32Array.from(config.trained_betas);
  }
  switch (config.beta_schedule) {
    case "linear":
      return torchLinspaceF32(config.beta_start, config.beta_end, n);
    case "scaled_linear": {
      // Latent-diffusion schedule: linear in sqrt(beta).
      const b = torchLinspaceF32(config.beta_start ** 0.5, config.beta_end ** 0.5, n);
      for (let i = 0; i < n; i++) b[i] = f32(b[i]! * b[i]!);
      return b;
    }
    case "squaredcos_cap_v2":
      return betasForAlphaBar(n);
    case "sigmoid": {
      // GeoDiff schedule (DDPMScheduler only in diffusers).
      const x = torchLinspaceF32(-6, 6, n);
      const scale = f32(config.beta_end - config.beta_start);
      const shift = f32(config.beta_start);
      for (let i = 0; i < n; i++) x[i] = f32(f32(f32(1 / (1 + Math.exp(-x[i]!))) * scale) + shift);
      return x;
    }
    default:
      throw new SchedulerError(
        `beta_schedule must be "linear", "scaled_linear" or "squaredcos_cap_v2" (or give trained_betas), got ${JSON.stringify(config.beta_schedule)}`,
      );
  }
}

/** Cumulative product as torch.cumprod computes it for float32 on CPU: float64 accumulator, float32 outputs. */
export function cumprodF32(values: ArrayLike<number>): Float32Array {
  const out = new Float32Array(values.length);
  let acc = 1;
  for (let i = 0; i < values.length; i++) {
    acc *= values[i]!;
    out[i] = acc;
  }
  return out;
}

/**
 * Rescales betas so that the last alpha-bar is exactly 0 (zero terminal SNR) while the first is unchanged:
 * Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1.
 */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const n = betas.length;
  const alphas = betas.map((b) => f32(1 - b));
  const sqrtAbar = cumprodF32(alphas).map((a) => f32(Math.sqrt(a)));
  const first = sqrtAbar[0]!;
  const last = sqrtAbar[n - 1]!;
  const scale = f32(first / f32(first - last));
  for (let i = 0; i < n; i++) sqrtAbar[i] = f32(f32(sqrtAbar[i]! - last) * scale);
  const abar = sqrtAbar.map((s) => f32(s * s));
  const out = new Float32Array(n);
  out[0] = f32(1 - abar[0]!);
  for (let i = 1; i < n; i++) out[i] = f32(1 - f32(abar[i]! / abar[i - 1]!));
  return out;
}

/** Betas, alphas and alpha-bar of a config (with `rescale_betas_zero_snr` applied when set). */
export function noiseSchedule(config: BetaScheduleConfig): NoiseSchedule {
  let betas = makeBetas(config);
  if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
  const alphas = betas.map((b) => f32(1 - b));
  return { betas, alphas, alphasCumprod: cumprodF32(alphas) };
}

/** The VE noise level of each training step, sigma_t = sqrt((1 - abar_t) / abar_t), in float32. */
export function trainSigmas(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}
