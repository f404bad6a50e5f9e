import { copy_, embedding, select } from "../ops/index.js";
import { zeros } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Tensor } from "../tensor/tensor.js";
import { normal } from "./init.js";
import { checkPositive, initialOptions, makeParameter } from "./linear.js";
import { Module } from "./module.js";
import type { LayerOptions } from "./options.js";
import type { Parameter } from "./parameter.js";

/** Options of {@link Embedding}. */
export interface EmbeddingOptions extends LayerOptions {
  /** A row that starts at zero (PyTorch also keeps its gradient at zero; here it is only zero-initialised). */
  paddingIdx?: number;
}

/**
 * A lookup table of `numEmbeddings` vectors of size `embeddingDim` (PyTorch's `nn.Embedding`): integer ids
 * [...] give vectors [..., embeddingDim]. `weight` is initialised N(0, 1).
 */
export class Embedding extends Module<[Tensor], Tensor> {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  readonly paddingIdx: number | null;
  weight: Parameter;

  constructor(numEmbeddings: number, embeddingDim: number, opts: EmbeddingOptions = {}) {
    super();
    checkPositive({ numEmbeddings, embeddingDim }, "Embedding");
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    let pad = opts.paddingIdx ?? null;
    if (pad !== null) {
      if (!Number.isInteger(pad) || pad < -numEmbeddings || pad >= numEmbeddings) {
        throw new ArgumentError(
          `Embedding: paddingIdx ${pad} is out of range for ${numEmbeddings} embeddings`,
        );
      }
      if (pad < 0) pad += numEmbeddings;
    }
    this.paddingIdx = pad;
    const weight = zeros([numEmbeddings, embeddingDim], initialOptions(opts));
    if (!opts.skipInit) {
      normal(weight, 0, 1, opts.generator);
      if (pad !== null) copy_(select(weight, 0, pad), zeros([embeddingDim]));
    }
    this.weight = makeParameter(weight, opts);
  }

  override forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}
