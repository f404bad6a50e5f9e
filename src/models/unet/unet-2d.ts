// diffusers' UNet2DModel: the pixel-space noise-prediction UNet of DDPM (Ho et al. 2020), unconditional or
// class-conditional through a learned class-embedding table added to the time embedding. Property paths are
// diffusers' state-dict keys, so `diffusion_pytorch_model.safetensors` loads without renaming.
import type { ModelSource } from "../../io/folder.js";
import { Conv2d, Embedding, GroupNorm, type LayerOptions, Module, ModuleList } from "../../nn/index.js";
import { add, sub } from "../../ops/index.js";
import type { Device } from "../../tensor/device.js";
import { ArgumentError, ShapeError } from "../../tensor/errors.js";
import { formatShape } from "../../tensor/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { groupNormSilu } from "../blocks/activation.js";
import type { RawConfig } from "../blocks/config-values.js";
import { batchTimesteps, TimestepEmbedding, Timesteps } from "../blocks/embeddings.js";
import { UNetMidBlock2D } from "../blocks/mid-block.js";
import { type FromPretrainedOptions, loadPretrained } from "../blocks/weights.js";
import { AttnDownBlock2D, AttnUpBlock2D } from "./unet-2d-blocks.js";
import type { Timestep } from "./unet-2d-condition.js";
import { resolveUNet2DConfig, type UNet2DConfig } from "./unet-2d-config.js";
import { DownBlock2D, UpBlock2D } from "./unet-blocks.js";

type DownBlock = DownBlock2D | AttnDownBlock2D;
type UpBlock = UpBlock2D | AttnUpBlock2D;

/** Class labels: one per sample, as numbers or a 1-d integer tensor. */
export type ClassLabels = readonly number[] | Int32Array | Tensor;

/**
 * The UNet of diffusers' `UNet2DModel`: a prediction [B, out_channels, H, W] (noise, v or x0, as trained) from a
 * noisy sample [B, in_channels, H, W], a timestep and, for class-conditional models (`num_class_embeds`), class
 * labels. Build it from a config (`new UNet2DModel({ sample_size: 32, ... })`) or a folder ({@link fromPretrained}).
 */
export class UNet2DModel extends Module<[Tensor, Timestep, (ClassLabels | null)?], Tensor> {
  readonly config: UNet2DConfig;
  conv_in: Conv2d;
  time_proj: Timesteps;
  time_embedding: TimestepEmbedding;
  class_embedding: Embedding | null;
  down_blocks: ModuleList<DownBlock>;
  mid_block: UNetMidBlock2D | null;
  up_blocks: ModuleList<UpBlock>;
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;

  /** @param config diffusers' config keys (missing ones take diffusers' defaults); checked here. */
  constructor(config: RawConfig = {}, opts: LayerOptions = {}) {
    super();
    const cfg = resolveUNet2DConfig(config);
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    const ch = cfg.block_out_channels;
    const ch0 = ch[0]!;
    const last = ch.length - 1;
    const tembDim = cfg.time_embedding_dim ?? ch0 * 4;
    this.config = cfg;
    this.conv_in = new Conv2d(cfg.in_channels, ch0, 3, { ...layer, padding: 1 });
    this.time_proj = new Timesteps(ch0, cfg.flip_sin_to_cos, cfg.freq_shift);
    this.time_embedding = new TimestepEmbedding(ch0, tembDim, layer);
    this.class_embedding =
      cfg.num_class_embeds != null ? new Embedding(cfg.num_class_embeds, tembDim, layer) : null;
    const common = {
      ...layer,
      tembChannels: tembDim,
      resnetEps: cfg.norm_eps,
      resnetGroups: cfg.norm_num_groups,
    };
    let out = ch0;
    this.down_blocks = new ModuleList<DownBlock>(
      cfg.down_block_types.map((type, i) => {
        const o = {
          ...common,
          inChannels: out,
          outChannels: ch[i]!,
          numLayers: cfg.layers_per_block,
          addDownsample: i !== last,
          downsamplePadding: cfg.downsample_padding,
        };
        out = ch[i]!;
        return type === "AttnDownBlock2D"
          ? new AttnDownBlock2D({ ...o, attentionHeadDim: cfg.attention_head_dim })
          : new DownBlock2D(o);
      }),
    );
    this.mid_block =
      cfg.mid_block_type === null
        ? null
        : new UNetMidBlock2D({
            ...common,
            inChannels: ch[last]!,
            outputScaleFactor: cfg.mid_block_scale_factor,
            attentionHeadDim: cfg.attention_head_dim,
            addAttention: cfg.add_attention,
          });
    const rev = [...ch].reverse();
    let prev = rev[0]!;
    this.up_blocks = new ModuleList<UpBlock>(
      cfg.up_block_types.map((type, i) => {
        const o = {
          ...common,
          inChannels: rev[Math.min(i + 1, last)]!,
          outChannels: rev[i]!,
          prevOutputChannels: prev,
          numLayers: cfg.layers_per_block + 1,
          addUpsample: i !== last,
        };
        prev = rev[i]!;
        return type === "AttnUpBlock2D"
          ? new AttnUpBlock2D({ ...o, attentionHeadDim: cfg.attention_head_dim })
          : new UpBlock2D(o);
      }),
    );
    this.conv_norm_out = new GroupNorm(cfg.norm_num_groups, ch0, { eps: cfg.norm_eps, dtype: opts.dtype });
    this.conv_out = new Conv2d(ch0, cfg.out_channels, 3, { ...layer, padding: 1 });
  }

  /**
   * Loads a diffusers `unet` folder (`config.json` + `diffusion_pytorch_model[.fp16].safetensors`): a path
   * (Node.js), a base URL or a map of files (see ModelSource). The parameters keep the checkpoint's dtype unless
   * `opts.dtype` says otherwise.
   */
  static fromPretrained(dir: ModelSource, opts: FromPretrainedOptions = {}): Promise<UNet2DModel> {
    const who = "UNet2DModel";
    return loadPretrained(dir, opts, {
      who,
      config: (raw, path) => {
        if (raw._class_name !== undefined && raw._class_name !== who) {
          throw new ArgumentError(`${who}: ${path} describes a ${String(raw._class_name)}, not a ${who}`);
        }
        return raw;
      },
      build: (config, layer) => new UNet2DModel(config, layer),
    });
  }

  /** The device of the model's weights (that of its first convolution). */
  override get device(): Device {
    return this.conv_in.weight.device;
  }

  /** Number of classes a class-conditional model embeds (num_class_embeds), or 0. */
  get numClassEmbeds(): number {
    return this.config.num_class_embeds ?? 0;
  }

  /**
   * sample [B, in_channels, H, W] (H, W divisible by 2^(blocks - 1)), timestep (one, or one per sample),
   * classLabels [B] in [0, num_class_embeds) for class-conditional models -> [B, out_channels, H, W].
   */
  override forward(sample: Tensor, timestep: Timestep, classLabels?: ClassLabels | null): Tensor {
    const cfg = this.config;
    if (sample.ndim !== 4 || sample.shape[1] !== cfg.in_channels) {
      throw new ShapeError(
        `UNet2DModel: sample must be [B, ${cfg.in_channels}, H, W], got ${formatShape(sample.shape)}`,
      );
    }
    const batch = sample.shape[0]!;
    const factor = 2 ** (cfg.block_out_channels.length - 1);
    if (sample.shape[2]! % factor !== 0 || sample.shape[3]! % factor !== 0) {
      throw new ShapeError(
        `UNet2DModel: height and width must be multiples of ${factor}, got ${formatShape(sample.shape)}`,
      );
    }
    let x = sample;
    if (cfg.center_input_sample) x = sub(x.mul(2), 1);
    const steps = batchTimesteps(timestep as Tensor | number | ArrayLike<number>, batch, "UNet2DModel");
    let emb = this.time_embedding.call(this.time_proj.call(steps, sample.device));
    if (this.class_embedding) {
      emb = add(emb, this.class_embedding.call(classIds(classLabels, batch, this.numClassEmbeds)));
    } else if (classLabels != null) {
      throw new ArgumentError(
        "UNet2DModel: classLabels given, but the model has no class embedding (num_class_embeds)",
      );
    }
    let h = this.conv_in.call(x);
    const skips: Tensor[] = [h];
    for (const block of this.down_blocks) {
      const o = block.call(h, emb);
      h = o.hidden;
      skips.push(...o.skips);
    }
    if (this.mid_block) h = this.mid_block.call(h, emb);
    for (const block of this.up_blocks) {
      const n = block.resnets.length;
      h = block.call(h, skips.splice(skips.length - n, n), emb);
    }
    return this.conv_out.call(groupNormSilu(this.conv_norm_out, h));
  }
}

/** Checked int32 ids [B] of the class labels. */
function classIds(labels: ClassLabels | null | undefined, batch: number, n: number): Tensor {
  if (labels == null) {
    throw new ArgumentError(
      `UNet2DModel: this model is class-conditional; pass ${batch} class labels in [0, ${n})`,
    );
  }
  // labels already on a device are used as they are (the embedding kernel checks their range there)
  if (labels instanceof Tensor && labels.device !== "cpu") {
    if (labels.ndim !== 1 || labels.size !== batch) {
      throw new ShapeError(`UNet2DModel: expected ${batch} class labels, got ${formatShape(labels.shape)}`);
    }
    return labels;
  }
  const values = labels instanceof Tensor ? labels.toFloat32Array() : labels;
  if (values.length !== batch || (labels instanceof Tensor && labels.ndim !== 1)) {
    throw new ShapeError(`UNet2DModel: expected ${batch} class labels, got ${values.length}`);
  }
  const ids = new Int32Array(batch);
  for (let i = 0; i < batch; i++) {
    const c = values[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= n) {
      throw new ArgumentError(`UNet2DModel: class label ${c} is out of range [0, ${n})`);
    }
    ids[i] = c;
  }
  return Tensor.fromStorage(ids, [batch], "int32");
}
