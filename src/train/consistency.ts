// The math of latent consistency distillation (Luo et al. 2023, "Latent Consistency Models", arXiv 2310.04378),
// batched with one timestep per sample:
// - the skipping-step schedule: consistency is enforced between t_{n+k} and t_n, k training timesteps apart, on the
//   grid k - 1, 2k - 1, ..., T - 1 that LCMScheduler samples from (`original_inference_steps` = T / k);
// - the one-step ODE solver from t_{n+k} to t_n: DDIM with eta = 0 (Song et al. 2021, eq. 12), which is linear in
//   the model output, so classifier-free guidance inside it equals guiding the output (LCM eq. 9);
// - the consistency function f(x, t) = c_skip(t) x + c_out(t) x0_hat(x, t) (LCM eq. 4; Song et al. 2023, eq. 3:
//   c_skip(0) = 1 and c_out(0) = 0 give the boundary condition f(x, 0) = x);
// - the distance d: L2 (mean squared error) or the pseudo-Huber loss sqrt(d^2 + c^2) - c (Song & Dhariwal 2023,
//   "Improved Techniques for Training Consistency Models", Sec. 3.3), here per element.
import { add, mean, mse_loss, mul, sqrt, square, sub } from "../ops/index.js";
import { lcmBoundaryScalings } from "../schedulers/lcm.js";
import { denoisedFromOutputVP, epsilonFromOutputVP, type PredictionType } from "../schedulers/predictions.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { tensor } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";

/** The timesteps of one consistency pair, per sample: the noisier t_{n+k} and the solver's target t_n. */
export interface TimestepPairs {
  start: number[];
  /** start - k, clamped to 0 (the pair ending at the clean end: alpha-bar_0 and the boundary condition). */
  end: number[];
}

/** Checks a skipping interval k for `numTrain` training timesteps: an integer in [1, T] dividing T. */
export function checkSkip(k: number, numTrain: number, who: string): void {
  if (!Number.isInteger(k) || k < 1 || k > numTrain || numTrain % k !== 0)
    throw new ArgumentError(
      `${who}: the skipping interval k must be an integer in [1, ${numTrain}] dividing num_train_timesteps ${numTrain} (e.g. 20: the LCMScheduler's 50 original steps), got ${k}`,
    );
}

/** The pairs of grid indices `indices` (each in [0, T / k)): t_{n+k} = (i + 1) k - 1, t_n = max(t_{n+k} - k, 0). */
export function timestepPairs(indices: ArrayLike<number>, k: number): TimestepPairs {
  const start = Array.from(indices, (i) => (i + 1) * k - 1);
  return { start, end: start.map((t) => Math.max(t - k, 0)) };
}

/** Per-sample coefficients as a [B, 1, ..., 1] tensor broadcasting over `like`. */
function perSample(values: readonly number[], like: Tensor): Tensor {
  const shape = [values.length, ...like.shape.slice(1).map(() => 1)];
  return tensor(Float32Array.from(values), shape, { device: like.device });
}

function alphaBars(scheduler: Scheduler, timesteps: readonly number[]): number[] {
  const ac = scheduler.alphasCumprod;
  return timesteps.map((t) => {
    if (!(Number.isInteger(t) && t >= 0 && t < ac.length))
      throw new ArgumentError(`timestep must be an integer in [0, ${ac.length - 1}], got ${t}`);
    return ac[t]!;
  });
}

/** x0_hat and eps_hat of `output` (the scheduler's prediction_type) at per-sample timesteps. */
export function predictedX0AndNoise(
  output: Tensor,
  x: Tensor,
  timesteps: readonly number[],
  scheduler: Scheduler,
): { x0: Tensor; eps: Tensor } {
  const abar = alphaBars(scheduler, timesteps);
  const alpha = perSample(
    abar.map((a) => Math.sqrt(a)),
    x,
  );
  const sigma = perSample(
    abar.map((a) => Math.sqrt(1 - a)),
    x,
  );
  const type = scheduler.config.prediction_type as PredictionType;
  return {
    x0: denoisedFromOutputVP(output, x, alpha, sigma, type),
    eps: epsilonFromOutputVP(output, x, alpha, sigma, type),
  };
}

/**
 * One deterministic DDIM step per sample from `start` to `end` given the model output at `start`:
 * x_end = sqrt(abar_end) x0_hat + sqrt(1 - abar_end) eps_hat (the skipping-step ODE solver Psi of LCM eq. 8).
 */
export function ddimSkipStep(output: Tensor, x: Tensor, pairs: TimestepPairs, scheduler: Scheduler): Tensor {
  const { x0, eps } = predictedX0AndNoise(output, x, pairs.start, scheduler);
  const abarEnd = alphaBars(scheduler, pairs.end);
  return add(
    mul(
      x0,
      perSample(
        abarEnd.map((a) => Math.sqrt(a)),
        x,
      ),
    ),
    mul(
      eps,
      perSample(
        abarEnd.map((a) => Math.sqrt(1 - a)),
        x,
      ),
    ),
  );
}

/**
 * The consistency function f(x, t) = c_skip(t) x + c_out(t) x0_hat(output, x, t) per sample, with LCMScheduler's
 * boundary scalings at t * `timestepScaling` (so that it is what LCMScheduler's step returns as `denoised`).
 */
export function consistencyOutput(
  output: Tensor,
  x: Tensor,
  timesteps: readonly number[],
  scheduler: Scheduler,
  timestepScaling: number,
): Tensor {
  const { x0 } = predictedX0AndNoise(output, x, timesteps, scheduler);
  const scalings = timesteps.map((t) => lcmBoundaryScalings(t, timestepScaling));
  return add(
    mul(
      x,
      perSample(
        scalings.map((s) => s.cSkip),
        x,
      ),
    ),
    mul(
      x0,
      perSample(
        scalings.map((s) => s.cOut),
        x,
      ),
    ),
  );
}

/** Distances d(a, b) of the consistency loss. */
export const CONSISTENCY_LOSSES = ["l2", "huber"] as const;
export type ConsistencyLoss = (typeof CONSISTENCY_LOSSES)[number];

/** The mean distance between `a` and `b`: L2, or pseudo-Huber with constant `c` (see the file comment). */
export function consistencyDistance(a: Tensor, b: Tensor, loss: ConsistencyLoss, c: number): Tensor {
  if (loss === "l2") return mse_loss(a, b);
  return sub(mean(sqrt(add(square(sub(a, b)), c * c))), c);
}
