import { ArgumentError } from "../../tensor/errors.js";

/** Options of {@link warmupCosine}. */
export interface WarmupCosineOptions {
  /** peak learning rate; leave out (1) to get a multiplier */
  lr?: number;
  warmupSteps: number;
  totalSteps: number;
  /** value reached at totalSteps, in the same units as lr (default 0) */
  minLr?: number;
}

function checkSteps(step: number, warmupSteps: number): void {
  if (!(step >= 0)) throw new ArgumentError(`LR schedule: step must be >= 0, got ${step}`);
  if (!(warmupSteps >= 0))
    throw new ArgumentError(`LR schedule: warmupSteps must be >= 0, got ${warmupSteps}`);
}

/**
 * Learning rate at `step` (0-based, before that step's update): linear warm-up from 0 over `warmupSteps`
 * (lr·step/warmupSteps, as diffusers' get_cosine_schedule_with_warmup), then a half cosine from lr down to
 * minLr at totalSteps, constant after.
 */
export function warmupCosine(step: number, opts: WarmupCosineOptions): number {
  const lr = opts.lr ?? 1;
  const minLr = opts.minLr ?? 0;
  const { warmupSteps, totalSteps } = opts;
  checkSteps(step, warmupSteps);
  if (step < warmupSteps) return (lr * step) / warmupSteps;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** Learning rate at `step`: linear warm-up from 0 over `warmupSteps`, then constant `lr` (default 1: a multiplier). */
export function constantWithWarmup(step: number, opts: { lr?: number; warmupSteps: number }): number {
  const lr = opts.lr ?? 1;
  checkSteps(step, opts.warmupSteps);
  return step < opts.warmupSteps ? (lr * step) / opts.warmupSteps : lr;
}
