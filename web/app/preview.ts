// Previews during sampling: the VAE's decode of the latents, as often as it costs at most a fifth of the sampling
// time; for images too large for that, a cheap look at the latents (their first three channels as red, green and
// blue, each stretched to its own range).
import { F, noGrad, type Tensor } from "../../src/browser.js";
import type { Pixels } from "./protocol.js";

/** One image per batch entry of latents [B, C, h, w] (C >= 3), h x w pixels. */
export async function latentPreview(sample: Tensor): Promise<Pixels[]> {
  const [b, c, h, w] = sample.shape as [number, number, number, number];
  // a copy: the sampling loop frees its latents after the next step, maybe before this read is done
  const copy = noGrad(() => F.mul(sample, 1));
  const values = await copy.toFloat32ArrayAsync();
  const plane = h * w;
  const out: Pixels[] = [];
  for (let i = 0; i < b; i++) {
    const data = new Uint8Array(plane * 3);
    for (let k = 0; k < Math.min(3, c); k++) {
      const base = (i * c + k) * plane;
      let lo = Infinity;
      let hi = -Infinity;
      for (let j = 0; j < plane; j++) {
        const v = values[base + j]!;
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      const scale = hi > lo ? 255 / (hi - lo) : 0;
      for (let j = 0; j < plane; j++) data[j * 3 + k] = Math.round((values[base + j]! - lo) * scale);
    }
    out.push({ width: w, height: h, channels: 3, data });
  }
  return out;
}

/** Paces VAE previews: one is due when the last one took at most `share` of the time sampled since. */
export class PreviewPacer {
  #costMs = 0;
  #sinceMs = 0;
  #last = performance.now();

  constructor(private readonly share = 0.2) {}

  /** Called after each step: true when a preview is due now. */
  due(): boolean {
    const now = performance.now();
    this.#sinceMs += now - this.#last;
    this.#last = now;
    return this.#costMs <= this.share * this.#sinceMs;
  }

  /** A preview was made in `ms`. */
  made(ms: number): void {
    this.#costMs = ms;
    this.#sinceMs = 0;
    this.#last = performance.now();
  }
}
