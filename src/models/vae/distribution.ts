// The latent distribution of a KL autoencoder (diffusers' `DiagonalGaussianDistribution`).
import { add, chunk, clamp, contiguous, exp, mul } from "../../ops/index.js";
import { randn } from "../../tensor/create.js";
import { ShapeError } from "../../tensor/errors.js";
import type { Generator } from "../../tensor/generator.js";
import { formatShape } from "../../tensor/shape.js";
import type { Tensor } from "../../tensor/tensor.js";

/**
 * A Gaussian with diagonal covariance (Kingma & Welling 2014) from the encoder's moments [B, 2C, h, w]: the first
 * C channels are the mean, the last C the log-variance, clamped to [-30, 20] as diffusers does.
 */
export class DiagonalGaussianDistribution {
  readonly mean: Tensor;
  readonly logvar: Tensor;
  /** exp(0.5 * logvar). */
  readonly std: Tensor;

  constructor(moments: Tensor) {
    if (moments.ndim < 2 || moments.shape[1]! % 2 !== 0) {
      throw new ShapeError(
        `DiagonalGaussianDistribution: moments must be [B, 2C, ...] (mean and log-variance), got ${formatShape(moments.shape)}`,
      );
    }
    const [mean, logvar] = chunk(moments, 2, 1) as [Tensor, Tensor];
    this.mean = contiguous(mean);
    this.logvar = clamp(logvar, -30, 20);
    this.std = exp(mul(this.logvar, 0.5));
  }

  /** exp(logvar). */
  get var(): Tensor {
    return exp(this.logvar);
  }

  /** mean + std * noise, noise ~ N(0, I) drawn from `generator` (as torch.randn with that generator). */
  sample(generator?: Generator): Tensor {
    return add(this.mean, mul(this.std, randn(this.mean.shape, { generator, device: this.mean.device })));
  }

  /** The most likely latent: the mean. */
  mode(): Tensor {
    return this.mean;
  }
}
