// What every `diffuse train ...` command does around its run: a progress bar on a TTY (JSON lines with --json),
// Ctrl-C turned into a stop after the current step (the run then writes its checkpoint), "saved ..." and the final
// "done" / "stopped" lines, and exit status 130 for a run stopped by Ctrl-C (as a shell reports SIGINT).
import type { ProgressCallback } from "../tensor/progress.js";
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
