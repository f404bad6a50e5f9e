// A small CNN digit classifier, the feature extractor of `diffuse eval`: it judges whether a generated digit is the
// one asked for, and its penultimate features are what the Fréchet distance compares. Stored as `config.json` +
// `model.safetensors`.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../../io/atomic.js";
import type { ModelSource } from "../../io/folder.js";
import { saveSafetensors } from "../../io/safetensors.js";
import { Conv2d, GroupNorm, Linear, Module, ModuleList } from "../../nn/index.js";
import { avg_pool2d, flatten, silu } from "../../ops/index.js";
import type { DType } from "../../tensor/dtype.js";
import { ShapeError } from "../../tensor/errors.js";
import type { Generator } from "../../tensor/generator.js";
import { formatShape } from "../../tensor/shape.js";
import type { Tensor } from "../../tensor/tensor.js";
import { groupNormSilu } from "../blocks/activation.js";
import { ConfigChecker, type RawConfig } from "../blocks/config-values.js";
import { loadPretrained } from "../blocks/weights.js";

/** The classifier's `config.json` (snake_case keys, as the other model configs). */
export interface DigitClassifierConfig {
  /** Image channels (1 for MNIST). */
  readonly in_channels: number;
  /** Image side; inputs must be [N, in_channels, sample_size, sample_size]. */
  readonly sample_size: number;
  /** Channels of each conv block; each block halves the resolution. */
  readonly block_out_channels: readonly number[];
  readonly norm_num_groups: number;
  /** Length of the feature vector (the input of the linear head). */
  readonly feature_dim: number;
  readonly num_classes: number;
  readonly [key: string]: unknown;
}

const WHO = "DigitClassifier";
/** File name of the weights in a classifier folder. */
export const CLASSIFIER_WEIGHTS = "model.safetensors";

const DEFAULTS: RawConfig = {
  in_channels: 1,
  sample_size: 32,
  block_out_channels: [16, 32, 64],
  norm_num_groups: 8,
  feature_dim: 64,
  num_classes: 10,
};

/** Builds and checks classifier configs. */
export const DigitClassifierConfig = {
  /** Checks a `config.json` object and fills in the defaults (unknown keys are kept). */
  from(raw: RawConfig = {}): DigitClassifierConfig {
    const cfg: Record<string, unknown> = { ...DEFAULTS, ...raw };
    const c = new ConfigChecker(cfg, WHO);
    c.int("in_channels", 1);
    const size = c.int("sample_size", 1);
    const channels = c.ints("block_out_channels");
    const groups = c.int("norm_num_groups", 1);
    c.int("feature_dim", 1);
    c.int("num_classes", 2);
    channels.forEach((ch, i) => {
      if (ch % groups !== 0)
        c.error(`block_out_channels[${i}] = ${ch} is not divisible by norm_num_groups = ${groups}`);
    });
    if (size % 2 ** channels.length !== 0) {
      c.error(`sample_size ${size} must be divisible by 2^${channels.length} (one halving per block)`);
    }
    return Object.freeze(cfg) as DigitClassifierConfig;
  },
};

/** Construction options (as the nn layers'). */
export interface DigitClassifierOptions {
  dtype?: DType;
  /** Leave parameters uninitialised (they are about to be loaded). */
  skipInit?: boolean;
  /** Source of the initial weights. */
  generator?: Generator;
}

/** conv3x3 -> GroupNorm -> SiLU, twice, then 2x2 average pooling. */
export class ClassifierBlock extends Module<[Tensor], Tensor> {
  conv1: Conv2d;
  norm1: GroupNorm;
  conv2: Conv2d;
  norm2: GroupNorm;

  constructor(inChannels: number, outChannels: number, groups: number, opts: DigitClassifierOptions) {
    super();
    this.conv1 = new Conv2d(inChannels, outChannels, 3, { padding: 1, ...opts });
    this.norm1 = new GroupNorm(groups, outChannels, { dtype: opts.dtype });
    this.conv2 = new Conv2d(outChannels, outChannels, 3, { padding: 1, ...opts });
    this.norm2 = new GroupNorm(groups, outChannels, { dtype: opts.dtype });
  }

  override forward(x: Tensor): Tensor {
    const h = groupNormSilu(this.norm1, this.conv1.call(x));
    return avg_pool2d(groupNormSilu(this.norm2, this.conv2.call(h)), 2);
  }
}

/**
 * The digit classifier: conv blocks (each halving the resolution), a flattening linear feature layer with SiLU
 * ({@link features}), and a linear head over the classes ({@link forward} returns logits).
 */
export class DigitClassifier extends Module<[Tensor], Tensor> {
  readonly config: DigitClassifierConfig;
  blocks: ModuleList<ClassifierBlock>;
  feature: Linear;
  head: Linear;

  constructor(
    config: DigitClassifierConfig = DigitClassifierConfig.from(),
    opts: DigitClassifierOptions = {},
  ) {
    super();
    this.config = config;
    const blocks: ClassifierBlock[] = [];
    let ch = config.in_channels;
    for (const out of config.block_out_channels) {
      blocks.push(new ClassifierBlock(ch, out, config.norm_num_groups, opts));
      ch = out;
    }
    this.blocks = new ModuleList(blocks);
    const side = config.sample_size / 2 ** config.block_out_channels.length;
    this.feature = new Linear(ch * side * side, config.feature_dim, opts);
    this.head = new Linear(config.feature_dim, config.num_classes, opts);
  }

  /** Feature vectors [N, feature_dim] of images x [N, in_channels, sample_size, sample_size] in [-1, 1]. */
  features(x: Tensor): Tensor {
    const { in_channels: c, sample_size: s } = this.config;
    if (x.ndim !== 4 || x.shape[1] !== c || x.shape[2] !== s || x.shape[3] !== s) {
      throw new ShapeError(`${WHO}: expected images [N, ${c}, ${s}, ${s}], got ${formatShape(x.shape)}`);
    }
    let h = x;
    for (const block of this.blocks) h = block.call(h);
    return silu(this.feature.call(flatten(h, 1)));
  }

  /** Class logits [N, num_classes]. */
  override forward(x: Tensor): Tensor {
    return this.head.call(this.features(x));
  }

  /** Logits from features already computed by {@link features}. */
  classify(features: Tensor): Tensor {
    return this.head.call(features);
  }

  /** Writes `config.json` and `model.safetensors` (float32) into `dir` (created if needed). */
  async save(dir: string, metadata: Record<string, string> = {}): Promise<void> {
    await mkdir(dir, { recursive: true });
    await saveSafetensors(join(dir, CLASSIFIER_WEIGHTS), this.stateDict(), { format: "pt", ...metadata });
    const config = { _class_name: WHO, ...this.config };
    writeFileAtomic(join(dir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  }

  /** Loads a classifier folder written by {@link save} (a path, a base URL or a map of files; in eval mode). */
  static fromPretrained(dir: ModelSource, opts: { dtype?: DType } = {}): Promise<DigitClassifier> {
    return loadPretrained(dir, opts, {
      who: WHO,
      naming: "transformers", // CLASSIFIER_WEIGHTS
      config: (raw) => DigitClassifierConfig.from(raw),
      build: (config, layer) => new DigitClassifier(config, layer),
    });
  }
}
