// Latent consistency distillation (Luo et al. 2023, "Latent Consistency Models", Algorithm 1 "LCD"): a student UNet
// f_theta(z, w, c, t) learns to map any point of the teacher's guided probability-flow ODE to its end. Per step:
//   z = E(x) (the frozen VAE's posterior, precomputed), a caption c, n ~ U{0 .. T/k - 1}, w ~ U[wMin, wMax],
//   z_{t_{n+k}} = sqrt(abar) z + sqrt(1 - abar) eps,
//   z_hat_{t_n} = DDIM step of the teacher from t_{n+k} to t_n with classifier-free guidance (1 + w) inside it
//                 (LCM eq. 9: (1 + w) Phi(z, c) - w Phi(z, empty prompt)),
//   loss = d(f_theta(z_{t_{n+k}}, w, c, t_{n+k}), f_theta-(z_hat_{t_n}, w, c, t_n)),
// where theta- (the target network) is an exponential moving average of theta and gets no gradient. The paper's
// choices, kept as defaults: skipping interval k = 20 (T = 1000: LCMScheduler's 50 original steps), EMA rate
// mu = 0.95, the DDIM solver, the boundary scalings c_skip / c_out with timestep_scaling 10. The guidance scale w is
// fed to the student as an embedding (`time_cond_proj_dim`; Meng et al. 2023): its projection starts at zero, so the
// student starts as the teacher.
// LCM-LoRA (Luo et al. 2023, "LCM-LoRA: A Universal Stable-Diffusion Acceleration Module", arXiv 2311.05556): the
// student is the teacher itself with trainable LoRA adapters (off while the teacher's step is computed), and it gets
// no guidance embedding — the LoRA learns the ODE of the guidance range drawn and is sampled without (or with little)
// classifier-free guidance. The target network is the EMA of the adapters, swapped in for the target's evaluation.
import { UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import type { LoraNetwork } from "../nn/lora-network.js";
import { cat } from "../ops/index.js";
import { applyGuidance, guidanceScaleEmbedding } from "../pipelines/guidance.js";
import type { LCMScheduler } from "../schedulers/lcm.js";
import { noGrad } from "../tensor/autograd.js";
import { randn, tensor, zeros } from "../tensor/create.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Generator } from "../tensor/generator.js";
import { keep } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  CONSISTENCY_LOSSES,
  type ConsistencyLoss,
  checkSkip,
  consistencyDistance,
  consistencyOutput,
  ddimSkipStep,
  timestepPairs,
} from "./consistency.js";
import { type EmojiSet, emojiCaption } from "./data/emoji.js";
import type { LabeledBatch } from "./data/loader.js";
import { type CaptionEncoder, latentLoaderData, latentLoaderShape, sampleLatents } from "./text-latents.js";
import type { LatentSet } from "./text-to-image-trainer.js";
import {
  type BatchLoss,
  type OptimOptions,
  type ResolvedOptimOptions,
  resolveOptimOptions,
  TrainerBase,
} from "./trainer-base.js";

/** Width of the guidance-scale embedding given to the student (`time_cond_proj_dim`; LCM's SD models use 256). */
export const GUIDANCE_EMBED_DIM = 256;

/** Hyperparameters of {@link LcmTrainer} (batch size default 32, lr 1e-4, EMA rate of the target network 0.95). */
export interface LcmDistillOptions extends OptimOptions {
  /** Skipping interval k in training timesteps (default 20, the paper's). */
  skip?: number;
  /**
   * Range of the guidance weight w drawn per sample (the teacher runs (1 + w) cond - w uncond: guidance scale 1 + w,
   * as `generate --guidance`). The paper draws w in [2, 14] for Stable Diffusion, whose usual scale is 7.5; the
   * default [1, 7] covers the emoji teacher's best scale (3: w = 2) and the pipelines' default 7.5 (w = 6.5).
   */
  wMin?: number;
  wMax?: number;
  /** The distance d (default "l2"). */
  loss?: ConsistencyLoss;
  /** c of the pseudo-Huber loss (default 0.001). */
  huberC?: number;
  /** LCMScheduler's timestep_scaling of the boundary scalings (default 10). */
  timestepScaling?: number;
}

/** The resolved hyperparameters, as saved with checkpoints. */
export type ResolvedLcmOptions = ResolvedOptimOptions & Required<Omit<LcmDistillOptions, keyof OptimOptions>>;

/** Fills in the defaults of {@link LcmDistillOptions} and checks them against `numTrain` training timesteps. */
export function resolveLcmOptions(opts: LcmDistillOptions, numTrain: number): ResolvedLcmOptions {
  const who = "LcmTrainer";
  const r: ResolvedLcmOptions = {
    ...resolveOptimOptions({ lr: 1e-4, emaDecay: 0.95, ...opts }, who, 32),
    skip: opts.skip ?? 20,
    wMin: opts.wMin ?? 1,
    wMax: opts.wMax ?? 7,
    loss: opts.loss ?? "l2",
    huberC: opts.huberC ?? 0.001,
    timestepScaling: opts.timestepScaling ?? 10,
  };
  checkSkip(r.skip, numTrain, who);
  if (!(Number.isFinite(r.wMin) && r.wMin >= 0 && Number.isFinite(r.wMax)))
    throw new ArgumentError(
      `${who}: the guidance weights must be finite and >= 0, got [${r.wMin}, ${r.wMax}]`,
    );
  if (!(r.wMax >= r.wMin))
    throw new ArgumentError(
      `${who}: the guidance range is inverted: wMin ${r.wMin} > wMax ${r.wMax}; give wMin <= wMax`,
    );
  if (!CONSISTENCY_LOSSES.includes(r.loss))
    throw new ArgumentError(`${who}: loss must be one of ${CONSISTENCY_LOSSES.join(", ")}, got "${r.loss}"`);
  if (!(r.huberC > 0)) throw new ArgumentError(`${who}: huberC must be > 0, got ${r.huberC}`);
  if (!(r.timestepScaling > 0))
    throw new ArgumentError(`${who}: timestepScaling must be > 0, got ${r.timestepScaling}`);
  return r;
}

/**
 * The student of `teacher`: its config with `time_cond_proj_dim` = `dim`, its weights, and the guidance projection
 * `time_embedding.cond_proj` at zero (so the student's output equals the teacher's conditional output at start).
 */
export function studentFromTeacher(
  teacher: UNet2DConditionModel,
  dim = GUIDANCE_EMBED_DIM,
): UNet2DConditionModel {
  if (teacher.config.time_cond_proj_dim != null)
    throw new ArgumentError(
      `the teacher UNet already takes a guidance embedding (time_cond_proj_dim ${teacher.config.time_cond_proj_dim}); distill a UNet trained with classifier-free guidance`,
    );
  const student = new UNet2DConditionModel(
    { ...teacher.config, time_cond_proj_dim: dim },
    { skipInit: true },
  );
  const weights = new Map(teacher.stateDict());
  const proj = student.time_embedding.cond_proj!.weight;
  weights.set("time_embedding.cond_proj.weight", zeros([...proj.shape]));
  student.loadStateDict(weights);
  return student.toDevice(teacher.device);
}

/** What the trainer is given besides the student. */
export interface LcmParts {
  /** The frozen teacher (float32 or float16 weights). */
  teacher: UNet2DConditionModel;
  /** The training noise schedule (the teacher's), also the student's sampler. */
  scheduler: LCMScheduler;
  captions: CaptionEncoder;
  set: EmojiSet;
  latents: LatentSet;
}

/** The trainer; see the file comment. The EMA of TrainerBase is the target network theta-. */
export class LcmTrainer extends TrainerBase<UNet2DConditionModel | LoraNetwork, ResolvedLcmOptions> {
  readonly teacher: UNet2DConditionModel;
  /**
   * The target network theta- of a full student (the EMA weights, copied in before each step); null for an LCM-LoRA,
   * whose target is the teacher with the EMA of the adapters.
   */
  readonly target: UNet2DConditionModel | null;
  /** The adapters of an LCM-LoRA run (attached to the teacher), else null. */
  readonly lora: LoraNetwork | null;
  readonly scheduler: LCMScheduler;
  readonly captions: CaptionEncoder;
  readonly set: EmojiSet;
  readonly latents: LatentSet;
  /** What an LCM-LoRA run records in its checkpoints (`lcmLora`); null for a full student. */
  readonly loraRecord: Readonly<Record<string, unknown>> | null;
  #empty: Tensor | null = null;

  /**
   * `student`: a UNet with a guidance embedding (see {@link studentFromTeacher}), or LoRA adapters attached to
   * `parts.teacher` (an LCM-LoRA run, whose checkpoints record `loraRecord` besides the adapters' rank, α and layers).
   */
  constructor(
    student: UNet2DConditionModel | LoraNetwork,
    parts: LcmParts,
    opts: LcmDistillOptions,
    loraRecord: Record<string, unknown> = {},
  ) {
    const numTrain = parts.scheduler.config.num_train_timesteps;
    const o = resolveLcmOptions(opts, numTrain);
    const who = "LcmTrainer";
    const { latents, set, teacher } = parts;
    const lora = student instanceof UNet2DConditionModel ? null : student;
    const unet = lora ? teacher : (student as UNet2DConditionModel);
    if (lora) {
      if (teacher.config.time_cond_proj_dim != null)
        throw new ArgumentError(
          `${who}: the teacher UNet already takes a guidance embedding (time_cond_proj_dim ${teacher.config.time_cond_proj_dim}); distill a UNet trained with classifier-free guidance`,
        );
      const modules = new Set(teacher.modules());
      if (!lora.layers.every((l) => modules.has(l.layer)) || !lora.attached)
        throw new ArgumentError(`${who}: the LCM-LoRA adapters must be attached to the teacher UNet`);
    } else if (unet.config.time_cond_proj_dim == null) {
      throw new ArgumentError(`${who}: the student UNet has no time_cond_proj_dim (use studentFromTeacher)`);
    }
    if (latents.count !== set.count)
      throw new ArgumentError(`${who}: ${latents.count} latents for ${set.count} images`);
    for (const key of ["in_channels", "cross_attention_dim", "sample_size"] as const) {
      if (JSON.stringify(unet.config[key]) !== JSON.stringify(teacher.config[key]))
        throw new ArgumentError(
          `${who}: the student's ${key} ${JSON.stringify(unet.config[key])} differs from the teacher's ${JSON.stringify(teacher.config[key])}`,
        );
    }
    if (teacher.config.in_channels !== latents.channels)
      throw new ArgumentError(
        `${who}: the UNet takes ${teacher.config.in_channels} channels, the latents have ${latents.channels}`,
      );
    const hidden = parts.captions.textEncoder.config.hidden_size;
    if (teacher.config.cross_attention_dim !== hidden)
      throw new ArgumentError(
        `${who}: the UNet's cross_attention_dim ${teacher.config.cross_attention_dim} is not the text encoder's hidden_size ${hidden}`,
      );
    // the teacher is frozen before the trainer collects what to optimise (an LCM-LoRA's adapters sit inside it)
    for (const p of teacher.parameters()) p.requiresGrad_(false);
    // theta- <- mu theta- + (1 - mu) theta at a constant rate mu (minDecay = decay: no warm-up of the rate)
    super(student, latentLoaderData(latents), o, {
      imageShape: latentLoaderShape(latents),
      ema: { minDecay: o.emaDecay },
    });
    this.teacher = teacher.eval();
    this.lora = lora;
    this.loraRecord = lora
      ? { ...loraRecord, rank: lora.rank, alpha: lora.alpha, paths: lora.layers.map((l) => l.path) }
      : null;
    if (lora) {
      this.target = null;
    } else {
      this.target = new UNet2DConditionModel(unet.config, { skipInit: true }).toDevice(unet.device).eval();
      for (const p of this.target.parameters()) p.requiresGrad_(false);
    }
    this.scheduler = parts.scheduler;
    this.captions = parts.captions;
    this.set = set;
    this.latents = latents;
  }

  /** The student being trained (for an LCM-LoRA: the teacher with the adapters attached). */
  get unet(): UNet2DConditionModel {
    return this.lora ? this.teacher : (this.model as UNet2DConditionModel);
  }

  checkpointConfigs(): Record<string, Record<string, unknown>> {
    const configs: Record<string, Record<string, unknown>> = {
      unetConfig: { ...this.unet.config },
      schedulerConfig: { ...this.scheduler.config, _class_name: this.scheduler.className },
    };
    if (this.loraRecord) configs.lcmLora = { ...this.loraRecord };
    return configs;
  }

  /** The student's output (with gradients); a full student takes the guidance embedding, an LCM-LoRA none. */
  #student(x: Tensor, t: number[], context: Tensor, wEmbedding: Tensor | null): Tensor {
    return wEmbedding
      ? this.unet.call(x, t, context, { timestepCond: wEmbedding })
      : this.unet.call(x, t, context);
  }

  /** The teacher's output (the adapters of an LCM-LoRA switched off meanwhile). */
  #teacherOutput(x: Tensor, t: number[], context: Tensor): Tensor {
    if (!this.lora) return this.teacher.call(x, t, context);
    this.lora.setScale(0);
    try {
      return this.teacher.call(x, t, context);
    } finally {
      this.lora.setScale(1);
    }
  }

  /** The target network's output: the EMA copy of a full student, or the teacher with the adapters' EMA weights. */
  #targetOutput(x: Tensor, t: number[], context: Tensor, wEmbedding: Tensor | null): Tensor {
    if (this.target) {
      return wEmbedding
        ? this.target.call(x, t, context, { timestepCond: wEmbedding })
        : this.target.call(x, t, context);
    }
    this.ema.store();
    this.ema.copyTo();
    try {
      return this.teacher.call(x, t, context);
    } finally {
      this.ema.restore();
    }
  }

  /** The empty prompt's embedding [1, L, D] (the teacher's unconditional branch; kept out of the step's scope). */
  #emptyPrompt(): Tensor {
    this.#empty ??= keep(this.captions.encode([""], this.unet.device));
    return this.#empty;
  }

  /**
   * The consistency loss of a batch of posteriors (image indices `labels`), its randomness drawn from `g` in a
   * fixed order: latents, captions, timestep indices, guidance weights, noise.
   */
  consistencyLoss(moments: Tensor, labels: ArrayLike<number>, g: Generator): Tensor {
    const o = this.options;
    const device = this.unet.device;
    const z = sampleLatents(moments, this.latents.scalingFactor, g, device);
    const b = z.shape[0]!;
    const captions = Array.from(labels, (i) => emojiCaption(this.set.entries[i]!, g));
    const context = this.captions.encode(captions, device);
    const gridSize = this.scheduler.config.num_train_timesteps / o.skip;
    const pairs = timestepPairs(g.randint(0, gridSize, b), o.skip);
    const w = Array.from(g.uniform(b), (u) => o.wMin + (o.wMax - o.wMin) * u);
    const noise = randn([...z.shape], { generator: g, device });
    const noisy = this.scheduler.addNoise(z, noise, pairs.start);
    const dim = this.unet.config.time_cond_proj_dim;
    const wEmbedding = dim == null ? null : guidanceScaleEmbedding(w, dim, device);
    // the target first: an LCM-LoRA's target swaps the EMA weights into the adapters, which must hold the live
    // weights again before the student's forward pass records them for backward
    const target = noGrad(() => {
      const empty = this.#emptyPrompt();
      const uncond = cat(
        Array.from({ length: b }, () => empty),
        0,
      );
      const both = this.#teacherOutput(
        cat([noisy, noisy], 0),
        [...pairs.start, ...pairs.start],
        cat([uncond, context], 0),
      );
      const scale = tensor(
        Float32Array.from(w, (x) => 1 + x),
        [b, 1, 1, 1],
        { device },
      );
      const solved = ddimSkipStep(applyGuidance(both, scale).guided, noisy, pairs, this.scheduler);
      const out = this.#targetOutput(solved, pairs.end, context, wEmbedding);
      return consistencyOutput(out, solved, pairs.end, this.scheduler, o.timestepScaling);
    });
    const online = consistencyOutput(
      this.#student(noisy, pairs.start, context, wEmbedding),
      noisy,
      pairs.start,
      this.scheduler,
      o.timestepScaling,
    );
    return consistencyDistance(online, target, o.loss, o.huberC);
  }

  protected batchLoss(batch: LabeledBatch): BatchLoss {
    if (this.target) this.ema.copyTo(this.target);
    return { loss: this.consistencyLoss(batch.images, batch.labels, this.generator) };
  }
}
