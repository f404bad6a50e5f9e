import cliProgress from "cli-progress";
import { type ProgressCallback, type ProgressEvent, progressJson } from "../tensor/progress.js";

/** Options for {@link progressReporter}. */
export interface ReporterOptions {
  /** Print one JSON object per event on stdout instead of a bar. */
  json?: boolean;
  /** Stream for the bar (default stderr, so stdout stays clean for data). */
  stream?: NodeJS.WriteStream;
}

/**
 * A progress callback for the CLI: a bar with steps, rate, ETA and the event's values on a TTY; JSON lines with
 * `--json`; nothing otherwise (non-TTY without --json stays quiet). Call `stop()` when the work ends.
 */
export function progressReporter(opts: ReporterOptions = {}): {
  onProgress: ProgressCallback;
  stop: () => void;
} {
  const stream = opts.stream ?? process.stderr;
  if (opts.json) {
    return {
      onProgress: (e) =>
        process.stdout.write(`${JSON.stringify({ type: "progress", ...progressJson(e) })}\n`),
      stop: () => {},
    };
  }
  if (!stream.isTTY) return { onProgress: () => {}, stop: () => {} };
  const bars = new Map<string, cliProgress.SingleBar>();
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: "{stage} |{bar}| {value}/{total} {rate} ETA {eta_formatted} {values}",
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  // rate = steps done in this process / time, so a resumed run does not count the steps of the earlier one
  const started = new Map<string, { time: number; step: number }>();
  const onProgress = (e: ProgressEvent) => {
    let bar = bars.get(e.stage);
    const payload = { stage: e.stage.padEnd(6), values: formatValues(e), rate: formatRate(e, started) };
    if (!bar) {
      started.set(e.stage, { time: performance.now(), step: e.step });
      bar = multi.create(e.total ?? 0, e.step, payload);
      bars.set(e.stage, bar);
    }
    if (e.total !== undefined) bar.setTotal(e.total);
    bar.update(e.step, payload);
  };
  return { onProgress, stop: () => multi.stop() };
}

function formatValues(e: ProgressEvent): string {
  const parts = Object.entries(e.values ?? {}).map(([k, v]) => `${k} ${formatNumber(v)}`);
  if (e.message) parts.push(e.message);
  return parts.join("  ");
}

function formatRate(e: ProgressEvent, started: Map<string, { time: number; step: number }>): string {
  const first = started.get(e.stage);
  if (first === undefined || e.step <= first.step) return "";
  const perSecond = (e.step - first.step) / ((performance.now() - first.time) / 1000);
  return perSecond >= 1 ? `${perSecond.toFixed(2)} it/s` : `${(1 / perSecond).toFixed(2)} s/it`;
}

function formatNumber(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 || a < 1e-3 ? v.toExponential(3) : v.toPrecision(4);
}

/**
 * Passes events on only once `delayMs` have passed since it was made: work that usually ends quickly (loading a
 * cached checkpoint) shows a bar only when it does not.
 */
export function afterDelay(onProgress: ProgressCallback, delayMs: number): ProgressCallback {
  const start = performance.now();
  return (e) => {
    if (performance.now() - start >= delayMs) onProgress(e);
  };
}
