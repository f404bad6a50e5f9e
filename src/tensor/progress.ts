import type { Tensor } from "./tensor.js";

/**
 * The one progress type of every long loop (training, sampling, loading, saving, decoding). The CLI renders it as
 * a progress bar on a TTY and as JSON lines with `--json` (see {@link progressJson}); the server streams it as
 * events. Sampling loops also hand over the current sample, for previews.
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
  /**
   * Sampling loops: the sample after this step (latents, or images of a pixel-space model), on its device; read it
   * only when a preview is wanted. Not part of the JSON form.
   */
  readonly sample?: Tensor;
  /** Sampling loops that have it: the model's estimate of the clean sample at this step (x0). Not part of the JSON form. */
  readonly denoised?: Tensor;
}

/** The event without its tensors: what a JSON line or a server event carries. */
export function progressJson(event: ProgressEvent): Omit<ProgressEvent, "sample" | "denoised"> {
  const { sample: _sample, denoised: _denoised, ...rest } = event;
  return rest;
}

/** Receives progress events. Must be cheap; it is called once per step. */
export type ProgressCallback = (event: ProgressEvent) => void;
