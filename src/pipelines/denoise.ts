// The one denoising loop of every pipeline (diffusers' StableDiffusion*Pipeline.__call__ loop): per timestep, one
// model call on the guidance batch [uncond; cond], guidance, a scheduler step, and for inpainting either the extra
// mask channels (9-channel UNets) or the known region pasted back (4-channel UNets). The model and its
// conditioning come in as a NoisePredictor: a text-conditioned UNet (unetPredictor) or a class-conditional one.
import type { AddedCondKwargs, UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import { cat } from "../ops/index.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { noGrad } from "../tensor/autograd.js";
import type { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import { release, tidy } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  applyGuidance,
  conditionalHalf,
  type GuidanceInterval,
  guidanceBatch,
  guidedAt,
} from "./guidance.js";
import { blendKnownRegion } from "./inpaint.js";
import { assertFiniteOnCpu, NON_FINITE_HINT } from "./latents.js";

/** Inpainting inputs of the loop, on the latent grid. */
export interface InpaintState {
  /** [B, 1, h, w]: 1 = repaint, 0 = keep. */
  mask: Tensor;
  /** 9-channel UNets: latents of the masked init image [B, C, h, w] (extra UNet input). */
  maskedImageLatents?: Tensor;
  /** 4-channel UNets: latents of the init image [B, C, h, w], re-noised and pasted outside the mask. */
  imageLatents?: Tensor;
  /** The initial noise, reused to re-noise the known region (as diffusers). */
  noise: Tensor;
}

/**
 * The model of one step with its conditioning bound. `input` is the scaled sample batch: [x; x] on a guided step,
 * whose conditioning is then [unconditional; conditional] (diffusers' order), else x alone with the conditional
 * conditioning. Returns the model output for that batch.
 */
export type NoisePredictor = (input: Tensor, t: number, guided: boolean) => Tensor;

/** Everything the loop needs. */
export interface DenoiseRun {
  /** The model with its conditioning (see {@link unetPredictor}). */
  predict: NoisePredictor;
  scheduler: Scheduler;
  timesteps: readonly number[];
  latents: Tensor;
  /** Classifier-free guidance is on (diffusers: guidance scale > 1, see usesGuidance). */
  guided: boolean;
  guidanceScale: number;
  guidanceRescale: number;
  /** Guide only the steps in this noise interval; the others run the conditional branch alone. */
  guidanceInterval?: GuidanceInterval;
  generator: Generator;
  inpaint?: InpaintState;
  /**
   * After each step: stage "sample", step i + 1 of the timesteps, `values.t` the timestep, `sample` the latents. On a
   * device with its own memory (a GPU) the sample is freed after the next step: clone() it to keep it.
   */
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** The conditioning of a text-conditioned UNet (UNet2DConditionModel) in the loop. */
export interface UNetConditioning {
  /** [2B, L, D] ([uncond; cond]) with guidance, else [B, L, D]. */
  embeds: Tensor;
  addedCondKwargs?: AddedCondKwargs;
  /** Guidance embedding of guidance-distilled UNets (time_cond_proj_dim). */
  timestepCond?: Tensor;
  /** 9-channel inpainting UNets: the mask and the masked image's latents ([B, ...]), added as input channels. */
  extraChannels?: readonly Tensor[];
}

/**
 * The {@link NoisePredictor} of a text-conditioned UNet. With `guided`, `cond` holds the guidance batch and the
 * conditional halves are made once, for the steps outside a guidance interval.
 */
export function unetPredictor(
  unet: UNet2DConditionModel,
  cond: UNetConditioning,
  guided: boolean,
): NoisePredictor {
  // the extra channels, doubled for the guidance batch once
  const extra = cond.extraChannels
    ? noGrad(() => cond.extraChannels!.map((c) => guidanceBatch(c, guided)))
    : null;
  const full = { embeds: cond.embeds, extra, addedCondKwargs: cond.addedCondKwargs };
  // made here, not inside a step: a step's memory scope would free them when it ends
  const condOnly = guided
    ? noGrad(() => ({
        embeds: conditionalHalf(full.embeds),
        extra: full.extra?.map(conditionalHalf) ?? null,
        addedCondKwargs: full.addedCondKwargs && {
          textEmbeds: conditionalHalf(full.addedCondKwargs.textEmbeds),
          timeIds: conditionalHalf(full.addedCondKwargs.timeIds),
        },
      }))
    : full;
  return (input, t, guidedStep) => {
    const branch = guidedStep || !guided ? full : condOnly;
    const x = branch.extra ? cat([input, ...branch.extra], 1) : input;
    return unet.call(x, t, branch.embeds, {
      addedCondKwargs: branch.addedCondKwargs,
      timestepCond: cond.timestepCond,
    });
  };
}

/** Lets timers and I/O (e.g. an abort request) run between steps. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) =>
    typeof setImmediate === "function" ? setImmediate(resolve) : setTimeout(resolve, 0),
  );
}

/**
 * Runs the loop of every pipeline and returns the final sample: per timestep one model call (on the guidance batch
 * when the step is guided), guidance, a scheduler step, the known region pasted back for 4-channel inpainting.
 * Yields to the event loop between steps. Each step runs in a memory scope: what the model computes is freed when
 * the step ends. On the CPU every step's sample is checked for NaN/Inf; on other devices nothing is read back until
 * the caller reads the result.
 */
export async function denoise(run: DenoiseRun): Promise<Tensor> {
  const { scheduler, timesteps, inpaint, guided } = run;
  let x = run.latents;
  const total = timesteps.length;
  for (let i = 0; i < total; i++) {
    run.signal?.throwIfAborted();
    const t = timesteps[i]!;
    // outside a guidance interval the conditional branch runs alone
    const guidedStep = guided && guidedAt(scheduler, t, run.guidanceInterval);
    // each step's intermediates (the model's activations) are freed when it ends; its sample stays until the next
    // step is done (schedulers copy what they keep of it)
    const previous = x;
    x = tidy(() =>
      noGrad(() => {
        const input = scheduler.scaleModelInput(guidanceBatch(x, guidedStep), t);
        const out = run.predict(input, t, guidedStep);
        const eps = guidedStep ? applyGuidance(out, run.guidanceScale, run.guidanceRescale).guided : out;
        let next = scheduler.step(eps, t, x, { generator: run.generator }).prevSample;
        if (inpaint?.imageLatents) {
          const known =
            i < total - 1
              ? scheduler.addNoise(inpaint.imageLatents, inpaint.noise, [timesteps[i + 1]!])
              : inpaint.imageLatents;
          next = blendKnownRegion(next, known, inpaint.mask);
        }
        return next;
      }),
    );
    if (previous !== run.latents) release(previous);
    assertFiniteOnCpu(x, `the latents after step ${i + 1} of ${total} (timestep ${t})`, NON_FINITE_HINT);
    run.onProgress?.({ stage: "sample", step: i + 1, total, values: { t }, sample: x });
    await yieldToEventLoop();
  }
  return x;
}
