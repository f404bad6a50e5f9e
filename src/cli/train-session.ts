// What every `diffuse train ...` command does around its run: a progress bar on a TTY (JSON lines with --json),
// Ctrl-C turned into a stop after the current step (the run then writes its checkpoint), "saved ..." and the final
// "done" / "stopped" lines, and exit status 130 for a run stopped by Ctrl-C (as a shell reports SIGINT).
import type { Command } from "commander";
import type { ProgressCallback } from "../tensor/progress.js";
import { addDeviceOption, resolveDevice } from "./device-option.js";
import { cliInt, cliNumber } from "./option-values.js";
import { progressReporter } from "./progress.js";

/** What a training command's body is given. */
export interface TrainSession {
  signal: AbortSignal;
  onProgress: ProgressCallback;
  /** A line for the user (stderr on a TTY) or a JSON object (stdout with --json). */
  log: (msg: Record<string, unknown>, text: string) => void;
  /** Reports a saved file. */
  onSaved: (what: string, path: string, step: number) => void;
}

/** Runs `body`; it returns whether it was stopped and at which step, and where its output is. */
export async function trainSession(
  opts: { json?: boolean; out: string },
  body: (session: TrainSession) => Promise<{ stopped: boolean; step: number }>,
): Promise<void> {
  const reporter = progressReporter({ json: opts.json });
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once("SIGINT", onSigint);
  const log = (msg: Record<string, unknown>, text: string): void => {
    if (opts.json) process.stdout.write(`${JSON.stringify(msg)}\n`);
    else if (process.stderr.isTTY) process.stderr.write(`\n${text}\n`);
  };
  try {
    const { stopped, step } = await body({
      signal: controller.signal,
      onProgress: reporter.onProgress,
      log,
      onSaved: (what, path, s) =>
        log({ type: "saved", what, path, step: s }, `saved ${what}: ${path} (step ${s})`),
    });
    reporter.stop();
    log(
      { type: stopped ? "stopped" : "done", step, out: opts.out },
      stopped
        ? `stopped at step ${step}; continue with --resume ${opts.out}`
        : `done: ${step} steps, output in ${opts.out}`,
    );
    if (stopped) process.exitCode = 130;
  } finally {
    reporter.stop();
    process.off("SIGINT", onSigint);
  }
}

/** The options every `diffuse train ...` run command shares, as commander parses them. */
export interface TrainRunCliOptions {
  out: string;
  resume?: string;
  device?: string;
  steps: string;
  batch: string;
  lr: string;
  warmup?: string;
  emaDecay: string;
  seed: string;
  sampleEvery: string;
  checkpointEvery: string;
  json?: boolean;
}

/**
 * Adds the shared options of a training run to `cmd` (after its own): --resume, --steps, --batch, --lr, --warmup,
 * --ema-decay, --seed, --sample-every, --checkpoint-every, --json and --device, with `defaults`.
 */
export function addTrainRunOptions(
  cmd: Command,
  defaults: {
    steps: string;
    batch: string;
    batchHelp?: string;
    samplesHelp: string;
    /** Default of --lr (1e-3). */
    lr?: string;
    /** Default and help of --ema-decay (0.999, "EMA decay upper bound"). */
    emaDecay?: string;
    emaHelp?: string;
  },
): Command {
  cmd
    .option("--resume <dir>", "continue the run whose output folder (or checkpoint/) this is")
    .option("--steps <n>", "optimisation steps", defaults.steps)
    .option("--batch <n>", defaults.batchHelp ?? "images per step", defaults.batch)
    .option("--lr <x>", "peak learning rate (AdamW, warm-up then cosine)", defaults.lr ?? "1e-3")
    .option("--warmup <n>", "warm-up steps (default min(200, steps / 10))")
    .option("--ema-decay <x>", defaults.emaHelp ?? "EMA decay upper bound", defaults.emaDecay ?? "0.999")
    .option("--seed <n>", "seed of weights, noise and data order", "0")
    .option("--sample-every <k>", `${defaults.samplesHelp} every k steps (0: at the end)`, "500")
    .option("--checkpoint-every <k>", "write a checkpoint every k steps (0: at the end)", "250")
    .option("--json", "print progress as JSON lines");
  return addDeviceOption(cmd);
}

/** The optimisation hyperparameters of the shared options (checked). */
export function optimFromCli(o: TrainRunCliOptions, minBatch = 1) {
  return {
    steps: cliInt("steps", o.steps, 1),
    batchSize: cliInt("batch", o.batch, minBatch),
    lr: cliNumber("lr", o.lr, Number.MIN_VALUE),
    warmupSteps: o.warmup !== undefined ? cliInt("warmup", o.warmup, 0) : undefined,
    emaDecay: cliNumber("ema-decay", o.emaDecay, 0, 1),
    seed: cliInt("seed", o.seed, 0),
  };
}

/** The loop settings of the shared options: how often to sample and checkpoint, and the device to train on. */
export async function loopFromCli(o: TrainRunCliOptions) {
  const sampleEvery = cliInt("sample-every", o.sampleEvery, 0);
  const checkpointEvery = cliInt("checkpoint-every", o.checkpointEvery, 0);
  const device = await resolveDevice(o.device, (text) => {
    if (!o.json) process.stderr.write(`diffuse: warning: ${text}\n`);
  });
  // a GPU run reads the loss back every 10 steps, not every step
  return { sampleEvery, checkpointEvery, device, logEvery: device === "cpu" ? 1 : 10 };
}
