// The step loop every training command shares: step until the trainer's last step or until stopped, report
// progress (reading the loss back only on the steps that report it), and every K steps write samples and/or a
// checkpoint. What a step, a checkpoint and a sample are is the caller's.

import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import type { ProgressCallback } from "../tensor/progress.js";
import type { Tensor } from "../tensor/tensor.js";
import { type CheckpointableTrainer, saveCheckpoint } from "./checkpoint.js";
import { lossCurveSvg } from "./loss-plot.js";

/** What a trainer's step returns (the loss is read from the trainer's history). */
export interface LoopStepResult {
  /** Steps done after this one. */
  step: number;
  lr: number;
  /** Global gradient norm before clipping (0-d, on the model's device). */
  gradNorm: Tensor;
  epoch: number;
}

/** A trainer the loop can drive. */
export interface LoopTrainer extends CheckpointableTrainer {
  readonly options: { steps: number; batchSize: number };
  trainStep(): LoopStepResult;
}

/** Options of {@link runTrainingLoop}. */
export interface TrainingLoopOptions {
  /** Stage "train" events with loss, lr, gradNorm, epoch, images/s. */
  onProgress?: ProgressCallback;
  /** Report every this many steps (default 1); the last step always reports. */
  logEvery?: number;
  /** Stops after the current step. */
  signal?: AbortSignal;
  /** Checkpoint every this many steps (0: only at the end, which the caller writes). */
  checkpointEvery?: number;
  /** Call `writeSamples` every this many steps (0: never from the loop). */
  sampleEvery?: number;
  /** Writes a checkpoint (see {@link checkpointTo}). */
  checkpoint: () => Promise<void>;
  writeSamples?: () => Promise<void>;
}

/** Steps the trainer to its `options.steps`; true when stopped by the signal first. */
export async function runTrainingLoop(trainer: LoopTrainer, opts: TrainingLoopOptions): Promise<boolean> {
  const total = trainer.options.steps;
  const resumedAt = trainer.step;
  let trainSeconds = 0;
  while (trainer.step < total) {
    // a step is synchronous: yield so signal handlers (Ctrl-C) and other callbacks get to run
    await new Promise<void>((done) => setImmediate(done));
    if (opts.signal?.aborted) return true;
    const t0 = performance.now();
    const r = trainer.trainStep();
    trainSeconds += (performance.now() - t0) / 1000;
    // training throughput only (sample grids and checkpoints excluded)
    const imagesPerSecond = ((r.step - resumedAt) * trainer.options.batchSize) / trainSeconds;
    const logEvery = opts.logEvery ?? 1;
    if (opts.onProgress && (r.step % logEvery === 0 || r.step === total)) {
      const losses = await trainer.readLosses();
      opts.onProgress({
        stage: "train",
        step: r.step,
        total,
        values: {
          loss: losses[losses.length - 1]!,
          lr: r.lr,
          gradNorm: await r.gradNorm.itemAsync(),
          epoch: r.epoch,
          imagesPerSecond,
        },
      });
    }
    const last = r.step === total;
    if (!last && opts.checkpointEvery && r.step % opts.checkpointEvery === 0) await opts.checkpoint();
    if (!last && opts.sampleEvery && opts.writeSamples && r.step % opts.sampleEvery === 0)
      await opts.writeSamples();
  }
  return false;
}

/** A checkpoint writer for {@link TrainingLoopOptions.checkpoint}: the trainer's state into `dir`. */
export function checkpointTo(
  trainer: CheckpointableTrainer,
  dir: string,
  extra?: Record<string, unknown>,
  onSaved?: (path: string, step: number) => void,
): () => Promise<void> {
  return async () => {
    await saveCheckpoint(trainer, dir, { extra });
    onSaved?.(dir, trainer.step);
  };
}

/** Writes the loss curve of the losses so far to `path` (an SVG). */
export async function writeLossCurve(trainer: CheckpointableTrainer, path: string): Promise<void> {
  writeFileAtomic(path, lossCurveSvg(await trainer.readLosses()));
}

/**
 * What every training run into an output folder takes about its loop (see {@link trainIntoFolder}); `Saved`: the
 * kinds of output a run reports to onSaved besides the loop's "checkpoint".
 */
export interface RunLoopOptions<Saved extends string = string> {
  sampleEvery?: number;
  checkpointEvery?: number;
  logEvery?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Told about each file or folder written (the loop itself writes "checkpoint"; runs add their own kinds). */
  onSaved?: (what: Saved | "checkpoint", path: string, step: number) => void;
  /** Extras stored in the checkpoint (e.g. the command line). */
  extra?: Record<string, unknown>;
}

/**
 * Steps `trainer` to its last step (or until stopped) with checkpoints in `outDir/checkpoint` and `writeSamples`
 * every `sampleEvery` steps, then writes the final checkpoint; true when stopped by the signal.
 */
export async function trainIntoFolder(
  trainer: LoopTrainer,
  outDir: string,
  opts: RunLoopOptions<"checkpoint">,
  writeSamples?: () => Promise<void>,
): Promise<boolean> {
  const checkpoint = checkpointTo(trainer, join(outDir, "checkpoint"), opts.extra, (path, step) =>
    opts.onSaved?.("checkpoint", path, step),
  );
  const stopped = await runTrainingLoop(trainer, {
    onProgress: opts.onProgress,
    logEvery: opts.logEvery,
    signal: opts.signal,
    checkpointEvery: opts.checkpointEvery,
    sampleEvery: opts.sampleEvery,
    checkpoint,
    writeSamples,
  });
  await checkpoint();
  return stopped;
}
