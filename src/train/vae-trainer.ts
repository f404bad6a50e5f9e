// Training a KL-regularised autoencoder (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent
// Diffusion Models", Sec. 3.1 and Appendix G): per step a batch of images is encoded, a latent is drawn from the
// posterior, decoded, and the loss is the L1 reconstruction error, plus L1 on the images' horizontal and vertical
// differences (a cheap stand-in for the paper's perceptual loss: it keeps edges sharp), plus a small weight times
// the KL divergence to N(0, I) that keeps the latent space smooth. After training, `scaling_factor` is measured as
// SD's was: 1 / std of the latents over the data set.
import type { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import type { AutoencoderKLConfig } from "../models/vae/config.js";
import { abs, add, exp, mean, mul, narrow, sub, toDevice } from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { tensor } from "../tensor/create.js";
import { ArgumentError, ShapeError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";
import type { LabeledBatch, LabeledImages } from "./data/loader.js";
import {
  type BatchLoss,
  type OptimOptions,
  type ResolvedOptimOptions,
  resolveOptimOptions,
  TrainerBase,
} from "./trainer-base.js";

/** Hyperparameters of {@link VaeTrainer} (batch size default 32). */
export interface VaeTrainOptions extends OptimOptions {
  /** Weight of the mean per-element KL divergence (default 1e-4). */
  klWeight?: number;
  /** Weight of the L1 error of the image differences (default 0.5). */
  edgeWeight?: number;
}

/** The resolved hyperparameters, as saved with checkpoints. */
export type ResolvedVaeOptions = ResolvedOptimOptions &
  Required<Pick<VaeTrainOptions, "klWeight" | "edgeWeight">>;

/** L1 error of the differences of neighbouring pixels along `dim` (3: horizontal, 2: vertical). */
function differenceL1(a: Tensor, b: Tensor, dim: number): Tensor {
  const n = a.shape[dim]!;
  const da = sub(narrow(a, dim, 1, n - 1), narrow(a, dim, 0, n - 1));
  const db = sub(narrow(b, dim, 1, n - 1), narrow(b, dim, 0, n - 1));
  return mean(abs(sub(da, db)));
}

/** The trainer of an {@link AutoencoderKL} on [3, S, S] images in [-1, 1]. */
export class VaeTrainer extends TrainerBase<AutoencoderKL, ResolvedVaeOptions> {
  constructor(vae: AutoencoderKL, data: LabeledImages, opts: VaeTrainOptions) {
    const o: ResolvedVaeOptions = {
      ...resolveOptimOptions(opts, "VaeTrainer", 32),
      klWeight: opts.klWeight ?? 1e-4,
      edgeWeight: opts.edgeWeight ?? 0.5,
    };
    if (!(o.klWeight >= 0)) throw new ArgumentError(`VaeTrainer: klWeight must be >= 0, got ${o.klWeight}`);
    if (!(o.edgeWeight >= 0))
      throw new ArgumentError(`VaeTrainer: edgeWeight must be >= 0, got ${o.edgeWeight}`);
    const c = vae.config.in_channels;
    const side = Math.round(Math.sqrt(data.images.length / data.count / c));
    if (side * side * c * data.count !== data.images.length || side % vae.downscaleFactor !== 0) {
      throw new ShapeError(
        `VaeTrainer: expected ${data.count} images of [${c}, S, S] with S a multiple of ${vae.downscaleFactor}, got ${data.images.length} values`,
      );
    }
    super(vae, data, o, { imageShape: [c, side, side] });
  }

  /** The autoencoder being trained. */
  get vae(): AutoencoderKL {
    return this.model;
  }

  checkpointConfigs(): Record<string, Record<string, unknown>> {
    return { vaeConfig: { ...this.vae.config } };
  }

  protected batchLoss(batch: LabeledBatch): BatchLoss {
    const o = this.options;
    const x = toDevice(batch.images, this.vae.device);
    const dist = this.vae.encode(x).latentDist;
    const y = this.vae.decode(dist.sample(this.generator));
    let loss = mean(abs(sub(y, x)));
    if (o.edgeWeight > 0) {
      const edges = add(differenceL1(y, x, 2), differenceL1(y, x, 3));
      loss = add(loss, mul(edges, o.edgeWeight));
    }
    if (o.klWeight > 0) {
      // KL(N(mu, sigma^2) || N(0, 1)) = (mu^2 + sigma^2 - 1 - log sigma^2) / 2 per element (Kingma & Welling 2014)
      const kl = mean(sub(add(dist.mean.square(), exp(dist.logvar)), add(dist.logvar, 1)));
      loss = add(loss, mul(kl, 0.5 * o.klWeight));
    }
    return { loss };
  }
}

/**
 * 1 / std of the posterior samples of `images` (as SD's `scaling_factor` was measured), encoded `batch` at a time
 * with the VAE's current weights; the moments of the samples are computed exactly from the posteriors.
 */
export function measureScalingFactor(
  vae: AutoencoderKL,
  images: Float32Array,
  count: number,
  opts: { batch?: number } = {},
): number {
  const per = images.length / count;
  const c = vae.config.in_channels;
  const side = Math.round(Math.sqrt(per / c));
  const step = opts.batch ?? 64;
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  noGrad(() => {
    for (let i = 0; i < count; i += step) {
      const b = Math.min(step, count - i);
      const x = tensor(images.subarray(i * per, (i + b) * per), [b, c, side, side]);
      const z = vae.encode(toDevice(x, vae.device)).latentDist;
      const values = z.mean.toFloat32Array();
      const stds = z.std.toFloat32Array();
      // E[z] and E[z^2] of the posterior sample, exactly: mean and mean^2 + var per element
      for (let k = 0; k < values.length; k++) {
        const m = values[k]!;
        const s = stds[k]!;
        sum += m;
        sumSq += m * m + s * s;
      }
      n += values.length;
    }
  });
  const variance = sumSq / n - (sum / n) ** 2;
  if (!(variance > 0))
    throw new ArgumentError(`measureScalingFactor: the latents have no spread (${variance})`);
  return 1 / Math.sqrt(variance);
}

/** The config to save with a measured scaling factor. */
export function vaeConfigJson(config: AutoencoderKLConfig, scalingFactor: number): Record<string, unknown> {
  return {
    _class_name: "AutoencoderKL",
    _diffusers_version: "0.30.0",
    ...config,
    scaling_factor: scalingFactor,
  };
}
