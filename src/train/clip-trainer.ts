// Contrastive text-image training (CLIP; Radford et al. 2021, Fig. 3): per step a batch of images and one caption
// drawn for each, the B x B matrix of scaled cosine similarities, and the mean of the cross entropies along its
// rows (image -> text) and columns (text -> image) with the diagonal as the targets. The pooled output is the
// hidden state at EOS, which the causal mask keeps from seeing what follows, so captions are padded only to the
// batch's longest: the same embeddings as at the full length, for less work.
import type { ContrastiveTextImageModel } from "../models/clip/contrastive.js";
import type { CLIPTokenizer } from "../models/clip/tokenizer.js";
import { add, cross_entropy, matmul, mul, toDevice, transpose } from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import { tensor } from "../tensor/create.js";
import type { Tensor } from "../tensor/tensor.js";
import { type EmojiSet, emojiCaption } from "./data/emoji.js";
import type { LabeledBatch } from "./data/loader.js";
import {
  type BatchLoss,
  type OptimOptions,
  type ResolvedOptimOptions,
  resolveOptimOptions,
  TrainerBase,
} from "./trainer-base.js";

/** The trainer of a {@link ContrastiveTextImageModel} on the emoji images and their captions (batch default 128). */
export class ClipTrainer extends TrainerBase<ContrastiveTextImageModel, ResolvedOptimOptions> {
  readonly tokenizer: CLIPTokenizer;
  readonly set: EmojiSet;

  constructor(model: ContrastiveTextImageModel, set: EmojiSet, tokenizer: CLIPTokenizer, opts: OptimOptions) {
    const o = resolveOptimOptions(opts, "ClipTrainer", 128);
    // the loader's labels are image indices: a batch's captions are drawn from their entries
    const data = { images: set.images, labels: Int32Array.from(set.entries, (_, i) => i), count: set.count };
    super(model, data, o, { imageShape: [3, set.size, set.size] });
    this.tokenizer = tokenizer;
    this.set = set;
  }

  checkpointConfigs(): Record<string, Record<string, unknown>> {
    return { clipConfig: { ...this.model.config } };
  }

  /** Token ids [B, L] (int64, L = the longest of `texts`, truncated to the tokenizer's length). */
  tokenIds(texts: readonly string[]): Tensor {
    return this.tokenizer.encodeBatch(texts, { padding: "longest" }).inputIds;
  }

  protected batchLoss(batch: LabeledBatch): BatchLoss {
    const captions = Array.from(batch.labels, (i) => emojiCaption(this.set.entries[i]!, this.generator));
    const images = toDevice(batch.images, this.model.device);
    const logits = this.model.call(this.tokenIds(captions), images);
    const b = captions.length;
    const targets = tensor(
      Int32Array.from({ length: b }, (_, i) => i),
      [b],
      { dtype: "int32", device: images.device },
    );
    const loss = mul(
      add(cross_entropy(logits, targets), cross_entropy(transpose(logits, 0, 1), targets)),
      0.5,
    );
    return { loss };
  }
}

/** Image -> text retrieval accuracy over every image of the set, against every image's own label as candidates. */
export interface RetrievalAccuracy {
  /** Share of images whose own label is the most similar of all labels (skin tones count as different labels). */
  top1: number;
  top5: number;
  /** Share of images whose most similar label names their base emoji (any skin tone). */
  top1BaseEmoji: number;
  images: number;
}

/** Measures {@link RetrievalAccuracy} with the model's current weights, `batch` images or texts at a time. */
export function retrievalAccuracy(
  model: ContrastiveTextImageModel,
  set: EmojiSet,
  tokenizer: CLIPTokenizer,
  batch = 256,
): RetrievalAccuracy {
  const labels = set.entries.map((e) => e.label);
  const n = set.count;
  const per = 3 * set.size * set.size;
  return noGrad(() => {
    const textRows: Float32Array[] = [];
    for (let i = 0; i < n; i += batch) {
      const ids = tokenizer.encodeBatch(labels.slice(i, i + batch), { padding: "longest" }).inputIds;
      textRows.push(toDevice(model.embedText(ids), "cpu").toFloat32Array());
    }
    const dim = model.config.projection_dim;
    const texts = tensor(concat(textRows), [n, dim]);
    let top1 = 0;
    let top5 = 0;
    let base = 0;
    for (let i = 0; i < n; i += batch) {
      const b = Math.min(batch, n - i);
      const x = tensor(set.images.subarray(i * per, (i + b) * per), [b, 3, set.size, set.size]);
      const img = toDevice(model.embedImages(toDevice(x, model.device)), "cpu");
      const sims = matmul(img, transpose(texts, 0, 1)).toFloat32Array();
      for (let r = 0; r < b; r++) {
        const row = sims.subarray(r * n, (r + 1) * n);
        const own = row[i + r]!;
        let better = 0;
        let best = 0;
        for (let j = 0; j < n; j++) {
          if (row[j]! > own) better++;
          if (row[j]! > row[best]!) best = j;
        }
        if (better === 0) top1++;
        if (better < 5) top5++;
        if (set.entries[best]!.classIndex === set.entries[i + r]!.classIndex) base++;
      }
    }
    return { top1: top1 / n, top5: top5 / n, top1BaseEmoji: base / n, images: n };
  });
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
