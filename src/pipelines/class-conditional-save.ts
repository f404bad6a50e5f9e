// Saving a class-conditional pipeline folder (Node.js: writes files). Loading and sampling are in
// class-conditional.ts, which also runs in browsers.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { saveSafetensors } from "../io/safetensors.js";
import type { UNet2DModel } from "../models/unet/unet-2d.js";
import { unet2DConfigJson } from "../models/unet/unet-2d-config.js";
import type { DType } from "../tensor/dtype.js";
import type { Tensor } from "../tensor/tensor.js";
import { CLASS_CONDITIONAL_PIPELINE, checkedInterval } from "./class-conditional.js";
import type { GuidanceInterval } from "./guidance.js";
import { MODEL_INDEX } from "./model-index.js";

/** Options of {@link saveClassConditionalPipeline}. */
export interface SavePipelineOptions {
  /** Weights to write instead of the UNet's own (e.g. its EMA average), keyed as its state dict. */
  weights?: ReadonlyMap<string, Tensor>;
  /** Stored dtype (default float32). */
  dtype?: DType;
  /** The sampling default written as model_index.json's `guidance_interval`. */
  guidanceInterval?: GuidanceInterval;
}

/**
 * Writes a pipeline folder diffusers can read part by part: `model_index.json`, `unet/config.json` +
 * `unet/diffusion_pytorch_model.safetensors`, `scheduler/scheduler_config.json`. Each file is written atomically.
 */
export async function saveClassConditionalPipeline(
  dir: string,
  unet: UNet2DModel,
  schedulerConfig: Readonly<Record<string, unknown>>,
  opts: SavePipelineOptions = {},
): Promise<void> {
  const version = "0.30.0";
  if (opts.guidanceInterval) checkedInterval(opts.guidanceInterval, "saveClassConditionalPipeline");
  mkdirSync(join(dir, "unet"), { recursive: true });
  mkdirSync(join(dir, "scheduler"), { recursive: true });
  const weights = new Map<string, Tensor>();
  for (const [k, t] of opts.weights ?? unet.stateDict()) {
    weights.set(k, opts.dtype && opts.dtype !== t.dtype ? t.to(opts.dtype) : t);
  }
  await saveSafetensors(join(dir, "unet", "diffusion_pytorch_model.safetensors"), weights, { format: "pt" });
  const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;
  writeFileAtomic(join(dir, "unet", "config.json"), json(unet2DConfigJson(unet.config, version)));
  const { _class_name: schedulerClass, ...sched } = schedulerConfig;
  writeFileAtomic(
    join(dir, "scheduler", "scheduler_config.json"),
    json({ _class_name: schedulerClass ?? "DDPMScheduler", _diffusers_version: version, ...sched }),
  );
  writeFileAtomic(
    join(dir, MODEL_INDEX),
    json({
      _class_name: CLASS_CONDITIONAL_PIPELINE,
      _diffusers_version: version,
      scheduler: ["diffusers", String(schedulerClass ?? "DDPMScheduler")],
      unet: ["diffusers", "UNet2DModel"],
      ...(opts.guidanceInterval && {
        guidance_interval: [
          opts.guidanceInterval.sigmaMin,
          Number.isFinite(opts.guidanceInterval.sigmaMax) ? opts.guidanceInterval.sigmaMax : null,
        ],
      }),
    }),
  );
}
