/**
 * The one progress type of every long loop (training, sampling, loading, decoding). The CLI renders it as a
 * progress bar on a TTY and as JSON lines with `--json`; the server streams it as events.
 */
export interface ProgressEvent {
  /** What is running: "train", "sample", "load", "decode", "eval", ... */
  readonly stage: string;
  /** Steps done so far (1-based after the first step completes). */
  readonly step: number;
  /** Total steps, when known. */
  readonly total?: number;
  /** Extra numbers worth showing (loss, lr, sigma, images/s ...). */
  readonly values?: Readonly<Record<string, number>>;
  /** A short human message (e.g. the file being loaded). */
  readonly message?: string;
}

/** Receives progress events. Must be cheap; it is called once per step. */
export type ProgressCallback = (event: ProgressEvent) => void;
