// A CLIP-style pair of encoders trained contrastively (Radford et al. 2021): a CLIPTextModel whose pooled output is
// projected by `text_projection`, a small convolutional image encoder, and a learned temperature. Both embeddings
// are L2-normalised; their cosine similarities times exp(logit_scale) are the logits of CLIP's symmetric InfoNCE.
// The text tower is a plain transformers CLIPTextModel, so it can be saved alone as a pipeline's text encoder.
import { Linear, Module, Parameter } from "../../nn/index.js";
import { add, div, exp, matmul, minimum, sqrt, sum, transpose } from "../../ops/index.js";
import { tensor } from "../../tensor/create.js";
import type { Generator } from "../../tensor/generator.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { RawConfig } from "../blocks/config-values.js";
import { DigitClassifier, DigitClassifierConfig } from "../classifier/digit-classifier.js";
import { type CLIPTextConfigInput, clipTextConfig } from "./config.js";
import { CLIPTextModel } from "./text-model.js";

/** Config of a {@link ContrastiveTextImageModel} (stored as its `config.json`). */
export interface ContrastiveConfig {
  /** The text tower's CLIPTextConfig (transformers keys). */
  text_config: CLIPTextConfigInput;
  /** The image tower's config (a DigitClassifier config whose `num_classes` is the embedding size). */
  vision_config: RawConfig;
  /** Size of the shared embedding space. */
  projection_dim: number;
  /** Initial log temperature (CLIP: log(1 / 0.07)). */
  logit_scale_init_value?: number;
}

/** exp(logit_scale) is clamped here, as in CLIP. */
const MAX_LOGIT_SCALE = 100;

/** Rows of `x` divided by their L2 norms. */
export function l2Normalize(x: Tensor): Tensor {
  return div(x, sqrt(add(sum(x.square(), -1, { keepdim: true }), 1e-12)));
}

/** The text and image encoders of contrastive training; see the file comment. */
export class ContrastiveTextImageModel extends Module<[Tensor, Tensor], Tensor> {
  readonly config: ContrastiveConfig;
  text_model: CLIPTextModel;
  text_projection: Linear;
  vision_model: DigitClassifier;
  logit_scale: Parameter;

  constructor(config: ContrastiveConfig, opts: { generator?: Generator; skipInit?: boolean } = {}) {
    super();
    const textConfig = clipTextConfig(config.text_config);
    this.config = { ...config, text_config: { ...textConfig } };
    this.text_model = new CLIPTextModel(textConfig, opts);
    this.text_projection = new Linear(textConfig.hidden_size, config.projection_dim, {
      bias: false,
      ...opts,
    });
    this.vision_model = new DigitClassifier(
      DigitClassifierConfig.from({ ...config.vision_config, num_classes: config.projection_dim }),
      opts,
    );
    this.logit_scale = new Parameter(tensor([config.logit_scale_init_value ?? Math.log(1 / 0.07)], [1]));
  }

  /** Normalised text embeddings [B, projection_dim] of token ids [B, L]. */
  embedText(ids: Tensor): Tensor {
    return l2Normalize(this.text_projection.call(this.text_model.call(ids).pooledOutput));
  }

  /** Normalised image embeddings [B, projection_dim] of images [B, C, S, S] in [-1, 1]. */
  embedImages(images: Tensor): Tensor {
    return l2Normalize(this.vision_model.call(images));
  }

  /** The temperature exp(logit_scale), clamped at 100 ([1]). */
  scale(): Tensor {
    return minimum(
      exp(this.logit_scale),
      tensor([MAX_LOGIT_SCALE], [1], { device: this.logit_scale.device }),
    );
  }

  /** Logits [B_images, B_texts]: scaled cosine similarities of every image with every text. */
  override forward(ids: Tensor, images: Tensor): Tensor {
    const t = this.embedText(ids);
    const i = this.embedImages(images);
    return matmul(i, transpose(t, 0, 1)).mul(this.scale());
  }
}
