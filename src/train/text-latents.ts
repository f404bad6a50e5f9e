// What the trainers on a frozen VAE and text encoder share (the text-to-image UNet, latent consistency
// distillation): per step a latent is drawn from each image's precomputed posterior (times the VAE's scaling_factor,
// Rombach et al. 2022, Sec. 3.3 / Appendix G), and captions are encoded by the frozen text encoder (its last hidden
// state, as Stable Diffusion 1.x), cached per caption since the CLDR names recur every epoch.
import type { CLIPTextModel } from "../models/clip/text-model.js";
import type { CLIPTokenizer } from "../models/clip/tokenizer.js";
import { add, chunk, mul, toDevice } from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { randn, tensor } from "../tensor/create.js";
import type { Device } from "../tensor/device.js";
import type { Generator } from "../tensor/generator.js";
import type { Tensor } from "../tensor/tensor.js";
import type { LabeledImages } from "./data/loader.js";
import type { LatentSet } from "./text-to-image-trainer.js";

/** Text embeddings kept per caption; bounded so memory stays small. */
const CACHE_LIMIT = 8192;

/** The frozen text encoder's last hidden states of captions, cached per caption. */
export class CaptionEncoder {
  readonly textEncoder: CLIPTextModel;
  readonly tokenizer: CLIPTokenizer;
  readonly #cache = new Map<string, Float32Array>();

  constructor(textEncoder: CLIPTextModel, tokenizer: CLIPTokenizer) {
    this.textEncoder = textEncoder.eval();
    this.tokenizer = tokenizer;
  }

  /** [B, L, D] on `device` (padded to the tokenizer's model_max_length, as at inference). */
  encode(captions: readonly string[], device: Device): Tensor {
    const missing = [...new Set(captions.filter((c) => !this.#cache.has(c)))];
    const fresh = new Map<string, Float32Array>();
    if (missing.length > 0) {
      const ids = this.tokenizer.encodeBatch(missing, { padding: "max_length" }).inputIds;
      const h = noGrad(() => toDevice(this.textEncoder.call(ids).lastHiddenState, "cpu").toFloat32Array());
      const row = h.length / missing.length;
      missing.forEach((c, i) => {
        const v = h.slice(i * row, (i + 1) * row);
        fresh.set(c, v);
        if (this.#cache.size < CACHE_LIMIT) this.#cache.set(c, v);
      });
    }
    const rows = captions.map((c) => this.#cache.get(c) ?? fresh.get(c)!);
    const row = rows[0]!.length;
    const out = new Float32Array(rows.length * row);
    for (let i = 0; i < rows.length; i++) out.set(rows[i]!, i * row);
    const length = this.tokenizer.modelMaxLength;
    return tensor(out, [rows.length, length, row / length], { device });
  }
}

/** The data loader's view of a latent set: its "images" are the posteriors, its labels the image indices. */
export function latentLoaderData(latents: LatentSet): LabeledImages {
  return {
    images: latents.moments,
    labels: Int32Array.from({ length: latents.count }, (_, i) => i),
    count: latents.count,
  };
}

/** The loader's image shape of a latent set: [2C, h, w] (means, then standard deviations). */
export function latentLoaderShape(latents: LatentSet): number[] {
  return [2 * latents.channels, latents.height, latents.width];
}

/** Draws z = scalingFactor * (mean + std * eps) from a batch of posteriors [B, 2C, h, w] on `device`. */
export function sampleLatents(
  moments: Tensor,
  scalingFactor: number,
  generator: Generator,
  device: Device,
): Tensor {
  const [mean, std] = chunk(toDevice(moments, device), 2, 1) as [Tensor, Tensor];
  const eps = randn([...mean.shape], { generator, device: mean.device });
  return mul(add(mean, mul(std, eps)), scalingFactor);
}
