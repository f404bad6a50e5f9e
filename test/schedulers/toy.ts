// A Gaussian toy data distribution N(mu, s^2 I) whose exact denoiser is known in closed form, and the diffusers
// pipeline loop, for property tests that do not depend on fixtures.
import { F, Generator, randn, type Tensor } from "../../src/index.js";
import { type Scheduler, trainSigmas } from "../../src/schedulers/index.js";

/** Stable Diffusion 1.x scheduler config (what `scheduler_config.json` of SD 1.5 holds). */
export const SD15_CONFIG = {
  _class_name: "PNDMScheduler",
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  steps_offset: 1,
  clip_sample: false,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  trained_betas: null,
};

/** VE noise level of a (fractional) training timestep: log-sigma interpolated between training steps. */
export function sigmaAtTimestep(alphasCumprod: Float32Array): (t: number) => number {
  const logS = Array.from(trainSigmas(alphasCumprod), Math.log);
  return (t) => {
    const lo = Math.max(0, Math.min(Math.floor(t), logS.length - 2));
    const w = t - lo;
    return Math.exp(logS[lo]! * (1 - w) + logS[lo + 1]! * w);
  };
}

/**
 * The exact epsilon-prediction model for data x0 ~ N(mu, s^2 I), given the VP input x = a x0 + b eps at training
 * timestep t: E[x0 | x] = mu + a s^2 / (a^2 s^2 + b^2) (x - a mu), eps = (x - a E[x0 | x]) / b.
 */
export function gaussianEpsModel(
  mu: Tensor,
  s: number,
  alphasCumprod: Float32Array,
): (x: Tensor, t: number) => Tensor {
  const sigmaOf = sigmaAtTimestep(alphasCumprod);
  return (x, t) => {
    const sigma = sigmaOf(t);
    const abar = 1 / (1 + sigma * sigma);
    const a = Math.sqrt(abar);
    const b = Math.sqrt(1 - abar);
    const x0 = F.add(mu, F.mul(F.sub(x, F.mul(mu, a)), (a * s * s) / (a * a * s * s + b * b)));
    return F.div(F.sub(x, F.mul(x0, a)), b);
  };
}

/** The diffusers pipeline loop: x = noise * initNoiseSigma, then scale / model / step for every timestep. */
export function runPipeline(
  sched: Scheduler,
  model: (x: Tensor, t: number) => Tensor,
  initialNoise: Tensor,
  generator?: Generator,
): Tensor {
  let x = F.mul(initialNoise, sched.initNoiseSigma);
  for (const t of sched.timesteps) {
    const out = model(sched.scaleModelInput(x, t), t);
    x = sched.step(out, t, x, generator ? { generator } : {}).prevSample;
  }
  return x;
}

/** Root mean square of a tensor. */
export function rms(t: Tensor): number {
  const d = t.toFloat32Array();
  let q = 0;
  for (const v of d) q += v * v;
  return Math.sqrt(q / d.length);
}

/** Standard normal noise from a seeded generator. */
export function seededNoise(shape: number[], seed: number): Tensor {
  return randn(shape, { generator: new Generator().manualSeed(seed) });
}
