// diffusers' UNet2DConditionModel: the noise-prediction network of Stable Diffusion 1.x / 2.x / XL (Rombach et al.
// 2022; SDXL: Podell et al. 2023). Property paths are diffusers' state-dict keys, so `diffusion_pytorch_model
// .safetensors` loads without renaming.
import type { ModelSource } from "../../io/folder.js";
import {
  Conv2d,
  Embedding,
  GroupNorm,
  Identity,
  type LayerOptions,
  Linear,
  Module,
  ModuleList,
} from "../../nn/index.js";
import { add, cat, group_norm, reshape, silu, to } from "../../ops/index.js";
import { ArgumentError, ShapeError } from "../../tensor/errors.js";
import { formatShape } from "../../tensor/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { groupNormSilu } from "../blocks/activation.js";
import type { RawConfig } from "../blocks/config-values.js";
import { batchTimesteps, TimestepEmbedding, Timesteps, timestepEmbedding } from "../blocks/embeddings.js";
import { type FromPretrainedOptions, loadPretrained } from "../blocks/weights.js";
import { planUNet, UNet2DConditionConfig, type UNetBlockPlan, type UNetPlan } from "./config.js";
import {
  CrossAttnDownBlock2D,
  CrossAttnUpBlock2D,
  DownBlock2D,
  UNetMidBlock2DCrossAttn,
  UpBlock2D,
} from "./unet-blocks.js";

/** A timestep: one for the whole batch (number), one per sample (number[]), or a 0-d / 1-d tensor of any dtype. */
export type Timestep = number | readonly number[] | Tensor;

/** SDXL's extra conditioning (`added_cond_kwargs`). */
export interface AddedCondKwargs {
  /** Pooled text embeddings [B, D] (`text_embeds`). */
  textEmbeds: Tensor;
  /** [B, K] micro-conditioning values (original size, crop, target size: K = 6), `time_ids`. */
  timeIds: Tensor;
}

/** Options of {@link UNet2DConditionModel.forward}. */
export interface UNetForwardOptions {
  /** Required when the config has `addition_embed_type: "text_time"` (SDXL). */
  addedCondKwargs?: AddedCondKwargs;
  /** Class labels [B] for class-conditional models (`num_class_embeds` / `class_embed_type`). */
  classLabels?: Tensor | readonly number[];
  /** [B, time_cond_proj_dim] when the config has `time_cond_proj_dim` (LCM's guidance embedding). */
  timestepCond?: Tensor;
  /**
   * Receives the output of each top-level stage, named as diffusers' modules: "time_proj", "time_embedding",
   * "conv_in", "down_blocks.<i>", "mid_block", "up_blocks.<i>", "conv_norm_out", "conv_out" (forward hooks).
   */
  onStage?: (name: string, value: Tensor) => void;
}

export type DownBlock = CrossAttnDownBlock2D | DownBlock2D;
type UpBlock = CrossAttnUpBlock2D | UpBlock2D;

/** Constructor options shared by every block of a UNet2DConditionModel. */
function blockCommon(cfg: UNet2DConditionConfig, plan: UNetPlan, layer: LayerOptions) {
  return {
    ...layer,
    tembChannels: plan.blocksTimeEmbedDim,
    resnetEps: cfg.norm_eps,
    resnetGroups: cfg.norm_num_groups,
    useLinearProjection: cfg.use_linear_projection,
    upcastAttention: cfg.upcast_attention ?? false,
  };
}

/** The transformer options of a block with attention. */
function attn(p: UNetBlockPlan) {
  return {
    transformerLayersPerBlock: p.transformerLayers,
    numAttentionHeads: p.heads,
    crossAttentionDim: p.crossAttentionDim,
    onlyCrossAttention: p.onlyCrossAttention,
  };
}

/**
 * Down block `index` of a UNet2DConditionModel with this config and plan, as the model builds it (benchmarks and
 * tests build a single block of real shapes with it).
 */
export function buildDownBlock(
  cfg: UNet2DConditionConfig,
  plan: UNetPlan,
  index: number,
  layer: LayerOptions = {},
): DownBlock {
  const p = plan.down[index];
  if (!p)
    throw new ArgumentError(
      `buildDownBlock: the UNet has ${plan.down.length} down blocks, not index ${index}`,
    );
  const o = {
    ...blockCommon(cfg, plan, layer),
    inChannels: p.inChannels,
    outChannels: p.outChannels,
    numLayers: p.numLayers,
    addDownsample: p.resample,
    downsamplePadding: cfg.downsample_padding,
  };
  return p.crossAttention ? new CrossAttnDownBlock2D({ ...o, ...attn(p) }) : new DownBlock2D(o);
}

/**
 * The conditional UNet: noise (or v) prediction from a noisy latent [B, in_channels, H, W], a timestep and text
 * encoder states [B, L, cross_attention_dim]. Build it from a config (`new UNet2DConditionModel(
 * UNet2DConditionConfig.sd15())`) or a diffusers folder ({@link fromPretrained}). Run inference under `noGrad`.
 */
export class UNet2DConditionModel extends Module<
  [Tensor, Timestep, Tensor | null, UNetForwardOptions?],
  Tensor
> {
  readonly config: UNet2DConditionConfig;
  readonly plan: UNetPlan;
  conv_in: Conv2d;
  time_proj: Timesteps;
  time_embedding: TimestepEmbedding;
  class_embedding: Embedding | TimestepEmbedding | Linear | Identity | null;
  add_time_proj: Timesteps | null;
  add_embedding: TimestepEmbedding | null;
  down_blocks: ModuleList<DownBlock>;
  up_blocks: ModuleList<UpBlock>;
  mid_block: UNetMidBlock2DCrossAttn | null;
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;

  /** @param config a checked config, or a raw `config.json` object (checked here). */
  constructor(
    config: UNet2DConditionConfig | RawConfig = UNet2DConditionConfig.defaults(),
    opts: LayerOptions = {},
  ) {
    super();
    const cfg = UNet2DConditionConfig.from(config);
    const plan = planUNet(cfg);
    const layer = { dtype: opts.dtype, skipInit: opts.skipInit, generator: opts.generator };
    const ch0 = cfg.block_out_channels[0]!;
    this.config = cfg;
    this.plan = plan;
    this.conv_in = new Conv2d(cfg.in_channels, ch0, cfg.conv_in_kernel, {
      ...layer,
      padding: (cfg.conv_in_kernel - 1) / 2,
    });
    this.time_proj = new Timesteps(ch0, cfg.flip_sin_to_cos, cfg.freq_shift);
    this.time_embedding = new TimestepEmbedding(ch0, plan.timeEmbedDim, {
      ...layer,
      actFn: cfg.act_fn,
      postActFn: cfg.timestep_post_act,
      condProjDim: cfg.time_cond_proj_dim,
    });
    this.class_embedding = classEmbedding(cfg, plan.timeEmbedDim, layer);
    const textTime = cfg.addition_embed_type === "text_time";
    this.add_time_proj = textTime
      ? new Timesteps(cfg.addition_time_embed_dim!, cfg.flip_sin_to_cos, cfg.freq_shift)
      : null;
    this.add_embedding = textTime
      ? new TimestepEmbedding(cfg.projection_class_embeddings_input_dim!, plan.timeEmbedDim, layer)
      : null;
    const common = blockCommon(cfg, plan, layer);
    this.down_blocks = new ModuleList<DownBlock>(
      plan.down.map((_, i) => buildDownBlock(cfg, plan, i, layer)),
    );
    this.up_blocks = new ModuleList<UpBlock>(
      plan.up.map((p) => {
        const o = {
          ...common,
          inChannels: p.inChannels,
          outChannels: p.outChannels,
          prevOutputChannels: p.prevOutputChannels,
          numLayers: p.numLayers,
          addUpsample: p.resample,
        };
        return p.crossAttention ? new CrossAttnUpBlock2D({ ...o, ...attn(p) }) : new UpBlock2D(o);
      }),
    );
    this.mid_block = plan.mid
      ? new UNetMidBlock2DCrossAttn({
          ...common,
          ...attn(plan.mid),
          inChannels: plan.mid.inChannels,
          outputScaleFactor: cfg.mid_block_scale_factor,
        })
      : null;
    this.conv_norm_out = new GroupNorm(cfg.norm_num_groups, ch0, { eps: cfg.norm_eps, dtype: opts.dtype });
    this.conv_out = new Conv2d(ch0, cfg.out_channels, cfg.conv_out_kernel, {
      ...layer,
      padding: (cfg.conv_out_kernel - 1) / 2,
    });
  }

  /**
   * Loads a diffusers `unet` folder (a path in Node.js, a base URL or a map of files; see ModelSource):
   * `config.json` and `diffusion_pytorch_model.safetensors` (or the `.fp16` file, or a sharded index). Every key and shape is checked before any weight is read. The parameters keep the
   * checkpoint's dtype unless `opts.dtype` says otherwise (a float16 file stays float16 in memory).
   */
  static fromPretrained(dir: ModelSource, opts: FromPretrainedOptions = {}): Promise<UNet2DConditionModel> {
    return loadPretrained(dir, opts, {
      who: "UNet2DConditionModel",
      config: (raw) => UNet2DConditionConfig.from(raw),
      build: (config, layer) => new UNet2DConditionModel(config, layer),
    });
  }

  /**
   * sample [B, in_channels, H, W], timestep (see {@link Timestep}), encoderHiddenStates [B, L, cross_attention_dim]
   * -> the prediction [B, out_channels, H, W].
   */
  override forward(
    sample: Tensor,
    timestep: Timestep,
    encoderHiddenStates: Tensor | null,
    opts: UNetForwardOptions = {},
  ): Tensor {
    const cfg = this.config;
    if (sample.ndim !== 4 || sample.shape[1] !== cfg.in_channels) {
      throw new ShapeError(
        `UNet2DConditionModel: sample must be [B, ${cfg.in_channels}, H, W], got ${formatShape(sample.shape)}`,
      );
    }
    const batch = sample.shape[0]!;
    const ehs = encoderHiddenStates;
    if (ehs && (ehs.ndim !== 3 || ehs.shape[0] !== batch)) {
      throw new ShapeError(
        `UNet2DConditionModel: encoderHiddenStates must be [${batch}, L, D], got ${formatShape(ehs.shape)}`,
      );
    }
    const stage = opts.onStage ?? null;
    const emit = (name: string, t: Tensor): Tensor => {
      stage?.(name, t);
      return t;
    };
    if (cfg.center_input_sample) sample = add(sample.mul(2), -1);

    // 1. time: sinusoidal projection of the (batch-broadcast) timesteps, then the MLP, plus extra embeddings
    const steps = batchTimesteps(timestep, batch, "UNet2DConditionModel");
    const tEmb = emit("time_proj", this.time_proj.call(steps, sample.device));
    let emb = emit("time_embedding", this.time_embedding.call(tEmb, opts.timestepCond ?? null));
    const classEmb = this.#classEmbedding(opts.classLabels, batch);
    if (classEmb) emb = cfg.class_embeddings_concat ? cat([emb, classEmb], -1) : add(emb, classEmb);
    if (this.add_embedding) emb = add(emb, this.#textTimeEmbedding(opts.addedCondKwargs, batch));
    if (cfg.time_embedding_act_fn) emb = silu(emb);

    // 2. down path, keeping every skip state
    let h = emit("conv_in", this.conv_in.call(sample));
    const skips: Tensor[] = [h];
    for (let i = 0; i < this.down_blocks.length; i++) {
      const out = this.down_blocks.at(i).call(h, emb, ehs);
      h = emit(`down_blocks.${i}`, out.hidden);
      skips.push(...out.skips);
    }

    // 3. middle
    if (this.mid_block) h = emit("mid_block", this.mid_block.call(h, emb, ehs));

    // 4. up path; sizes are forwarded when H or W is not a multiple of the total upsampling factor
    const factor = 2 ** this.plan.up.filter((p) => p.resample).length;
    const forwardSize = sample.shape.slice(2).some((d) => d % factor !== 0);
    for (let i = 0; i < this.up_blocks.length; i++) {
      const block = this.up_blocks.at(i);
      const n = block.resnets.length;
      const mine = skips.splice(skips.length - n, n);
      const next = skips[skips.length - 1];
      const size =
        forwardSize && next && i < this.up_blocks.length - 1
          ? ([next.shape[2]!, next.shape[3]!] as const)
          : null;
      h = emit(`up_blocks.${i}`, block.call(h, mine, emb, ehs, size));
    }

    // 5. out
    if (stage) {
      const n = this.conv_norm_out;
      h = silu(emit("conv_norm_out", group_norm(h, n.numGroups, n.weight, n.bias, n.eps)));
    } else {
      h = groupNormSilu(this.conv_norm_out, h);
    }
    return emit("conv_out", this.conv_out.call(h));
  }

  #classEmbedding(labels: Tensor | readonly number[] | undefined, batch: number): Tensor | null {
    const ce = this.class_embedding;
    if (!ce) return null;
    if (labels === undefined) {
      throw new ArgumentError("UNet2DConditionModel: this model is class-conditional; pass classLabels");
    }
    const type = this.config.class_embed_type;
    if (ce instanceof Embedding) {
      const ids =
        labels instanceof Tensor
          ? labels
          : Tensor.fromStorage(Int32Array.from(labels), [labels.length], "int32");
      return ce.call(ids);
    }
    if (type === "timestep")
      return (ce as TimestepEmbedding).call(
        this.time_proj.call(batchTimesteps(labels, batch, "UNet2DConditionModel"), this.device),
      );
    // identity / projection / simple_projection: the labels are class vectors [B, D]
    if (!(labels instanceof Tensor) || labels.ndim !== 2 || labels.shape[0] !== batch) {
      throw new ArgumentError(
        `UNet2DConditionModel: class_embed_type "${type}" takes classLabels as a [${batch}, D] tensor`,
      );
    }
    return (ce as Module<[Tensor], Tensor>).call(to(labels, "float32"));
  }

  /** SDXL: add_embedding(cat(text_embeds, add_time_proj(time_ids) flattened per sample)). */
  #textTimeEmbedding(kwargs: AddedCondKwargs | undefined, batch: number): Tensor {
    if (!kwargs?.textEmbeds || !kwargs.timeIds) {
      throw new ArgumentError(
        'UNet2DConditionModel: the config has addition_embed_type "text_time" (SDXL); pass addedCondKwargs: { textEmbeds, timeIds }',
      );
    }
    const { textEmbeds, timeIds } = kwargs;
    if (textEmbeds.ndim !== 2 || textEmbeds.shape[0] !== batch || timeIds.shape[0] !== batch) {
      throw new ShapeError(
        `UNet2DConditionModel: textEmbeds must be [${batch}, D] and timeIds [${batch}, K], got ${formatShape(textEmbeds.shape)} and ${formatShape(timeIds.shape)}`,
      );
    }
    const proj = this.add_time_proj!;
    const timeEmb = timestepEmbedding(reshape(timeIds, [timeIds.size]), proj.numChannels, {
      flipSinToCos: proj.flipSinToCos,
      downscaleFreqShift: proj.downscaleFreqShift,
      device: textEmbeds.device,
    });
    const addEmbeds = cat([to(textEmbeds, "float32"), reshape(timeEmb, [batch, -1])], -1);
    const expected = this.add_embedding!.linear_1.inFeatures;
    if (addEmbeds.shape[1] !== expected) {
      throw new ShapeError(
        `UNet2DConditionModel: textEmbeds (${textEmbeds.shape[1]}) + ${timeIds.size / batch} time ids x ${proj.numChannels} = ${addEmbeds.shape[1]} features, but projection_class_embeddings_input_dim is ${expected}`,
      );
    }
    return this.add_embedding!.call(addEmbeds);
  }
}

function classEmbedding(
  cfg: UNet2DConditionConfig,
  timeEmbedDim: number,
  layer: LayerOptions,
): Embedding | TimestepEmbedding | Linear | Identity | null {
  const ch0 = cfg.block_out_channels[0]!;
  switch (cfg.class_embed_type) {
    case null:
      return cfg.num_class_embeds != null ? new Embedding(cfg.num_class_embeds, timeEmbedDim, layer) : null;
    case "timestep":
      return new TimestepEmbedding(ch0, timeEmbedDim, { ...layer, actFn: cfg.act_fn });
    case "identity":
      return new Identity();
    case "projection":
      return new TimestepEmbedding(cfg.projection_class_embeddings_input_dim!, timeEmbedDim, {
        ...layer,
        actFn: cfg.act_fn,
      });
    case "simple_projection":
      return new Linear(cfg.projection_class_embeddings_input_dim!, timeEmbedDim, layer);
    default:
      throw new ArgumentError(`UNet2DConditionModel: unknown class_embed_type ${cfg.class_embed_type}`);
  }
}
