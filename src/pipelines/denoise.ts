// The denoising loop of the latent-diffusion pipelines (diffusers' StableDiffusion*Pipeline.__call__ loop): per
// timestep, one UNet call on the guidance batch, guidance, a scheduler step, and for inpainting either the extra
// mask channels (9-channel UNets) or the known region pasted back (4-channel UNets).
import type { AddedCondKwargs, UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import { cat } from "../ops/index.js";
import type { Scheduler } from "../schedulers/scheduler.js";
import { noGrad } from "../tensor/autograd.js";
import type { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import { tidy } from "../tensor/scope.js";
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

/** What one step reports to {@link DenoiseRun.onStep}. */
export interface StepInfo {
  /** 0-based step index. */
  step: number;
  timestep: number;
  /** The latents after this step. */
  latents: Tensor;
}

/** Everything the loop needs. */
export interface DenoiseRun {
  unet: UNet2DConditionModel;
  scheduler: Scheduler;
  timesteps: readonly number[];
  latents: Tensor;
  /** [2B, L, D] ([uncond; cond]) with guidance, else [B, L, D]. */
  embeds: Tensor;
  addedCondKwargs?: AddedCondKwargs;
  /** Guidance embedding of guidance-distilled UNets (time_cond_proj_dim). */
  timestepCond?: Tensor;
  guided: boolean;
  guidanceScale: number;
  guidanceRescale: number;
  /** Guide only the steps in this noise interval; the others run the conditional half of the batch alone. */
  guidanceInterval?: GuidanceInterval;
  generator: Generator;
  inpaint?: InpaintState;
  onStep?: (info: StepInfo) => void;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Lets timers and I/O (e.g. an abort request) run between steps. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) =>
    typeof setImmediate === "function" ? setImmediate(resolve) : setTimeout(resolve, 0),
  );
}

/**
 * Runs the loop and returns the final latents. On the CPU every step's latents are checked for NaN/Inf; on other
 * devices nothing is read back until the caller reads the result. Each step runs in a memory scope: what the
 * UNet computes is freed when the step ends.
 */
export async function denoise(run: DenoiseRun): Promise<Tensor> {
  const { unet, scheduler, timesteps, inpaint, guided } = run;
  let x = run.latents;
  const total = timesteps.length;
  // the mask inputs of a 9-channel UNet, doubled for the guidance batch once
  const extra =
    inpaint?.maskedImageLatents !== undefined
      ? [guidanceBatch(inpaint.mask, guided), guidanceBatch(inpaint.maskedImageLatents, guided)]
      : null;
  // the conditional halves, for the steps outside a guidance interval
  const condOnly =
    guided && run.guidanceInterval
      ? noGrad(() => ({
          embeds: conditionalHalf(run.embeds),
          extra: extra?.map(conditionalHalf) ?? null,
          addedCondKwargs: run.addedCondKwargs && {
            textEmbeds: conditionalHalf(run.addedCondKwargs.textEmbeds),
            timeIds: conditionalHalf(run.addedCondKwargs.timeIds),
          },
        }))
      : null;
  for (let i = 0; i < total; i++) {
    run.signal?.throwIfAborted();
    const t = timesteps[i]!;
    const guidedStep = guided && guidedAt(scheduler, t, run.guidanceInterval);
    // condOnly exists only for guided runs with an interval
    const branch =
      condOnly && !guidedStep
        ? condOnly
        : { embeds: run.embeds, extra, addedCondKwargs: run.addedCondKwargs };
    // each step's intermediates (the UNet's activations) are freed when it ends; its latents stay
    x = tidy(() =>
      noGrad(() => {
        let input = scheduler.scaleModelInput(guidanceBatch(x, guidedStep), t);
        if (branch.extra) input = cat([input, ...branch.extra], 1);
        const out = unet.call(input, t, branch.embeds, {
          addedCondKwargs: branch.addedCondKwargs,
          timestepCond: run.timestepCond,
        });
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
    assertFiniteOnCpu(x, `the latents after step ${i + 1} of ${total} (timestep ${t})`, NON_FINITE_HINT);
    run.onStep?.({ step: i, timestep: t, latents: x });
    run.onProgress?.({ stage: "sample", step: i + 1, total, values: { t } });
    await yieldToEventLoop();
  }
  return x;
}
