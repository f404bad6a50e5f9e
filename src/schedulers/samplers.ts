// The sampler names A1111 / ComfyUI users know, mapped to a diffusers class and config overrides. A sampler built
// from a model's own scheduler config keeps its training schedule (betas, timestep count, prediction type).
import type { SchedulerConfigInput, SchedulerOptions } from "./config.js";
import { SchedulerError } from "./errors.js";
import { schedulerClass } from "./registry.js";
import type { Scheduler } from "./scheduler.js";

/** One named sampler. */
export interface SamplerSpec {
  /** Short name (CLI / server). */
  readonly name: string;
  /** diffusers class it runs on. */
  readonly className: string;
  /** Config keys set on top of the model's scheduler config. */
  readonly overrides: Readonly<Record<string, unknown>>;
  /** What A1111 / ComfyUI call it. */
  readonly aka: string;
  /** One line on what it does. */
  readonly description: string;
}

const noKarras = { use_karras_sigmas: false };

/** The named samplers. */
export const SAMPLERS: readonly SamplerSpec[] = Object.freeze([
  {
    name: "ddpm",
    className: "DDPMScheduler",
    overrides: {},
    aka: "DDPM / ddpm",
    description: "ancestral DDPM sampling (stochastic; needs many steps)",
  },
  {
    name: "ddim",
    className: "DDIMScheduler",
    overrides: {},
    aka: "DDIM / ddim",
    description: "deterministic DDIM (eta = 0; pass eta to step() for stochastic DDIM)",
  },
  {
    name: "pndm",
    className: "PNDMScheduler",
    overrides: { skip_prk_steps: true },
    aka: "PLMS",
    description: "pseudo linear multistep (PLMS), Stable Diffusion's original sampler",
  },
  {
    name: "lms",
    className: "LMSDiscreteScheduler",
    overrides: noKarras,
    aka: "LMS / lms",
    description: "4th-order linear multistep on the probability-flow ODE",
  },
  {
    name: "euler",
    className: "EulerDiscreteScheduler",
    overrides: noKarras,
    aka: "Euler / euler",
    description: "Euler's method on the probability-flow ODE",
  },
  {
    name: "euler-a",
    className: "EulerAncestralDiscreteScheduler",
    overrides: {},
    aka: "Euler a / euler_ancestral",
    description: "Euler with ancestral noise (stochastic)",
  },
  {
    name: "heun",
    className: "HeunDiscreteScheduler",
    overrides: noKarras,
    aka: "Heun / heun",
    description: "Heun's 2nd-order method (two model calls per step)",
  },
  {
    name: "dpmpp-2m",
    className: "DPMSolverMultistepScheduler",
    overrides: { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: false },
    aka: "DPM++ 2M / dpmpp_2m",
    description: "2nd-order multistep DPM-Solver++",
  },
  {
    name: "dpmpp-2m-karras",
    className: "DPMSolverMultistepScheduler",
    overrides: { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: true },
    aka: "DPM++ 2M Karras / dpmpp_2m + karras",
    description: "DPM++ 2M on Karras et al. noise levels",
  },
  {
    name: "dpmpp-2m-sde",
    className: "DPMSolverMultistepScheduler",
    overrides: { algorithm_type: "sde-dpmsolver++", solver_order: 2, use_karras_sigmas: false },
    aka: "DPM++ 2M SDE / dpmpp_2m_sde",
    description: "2nd-order multistep SDE-DPM-Solver++ (stochastic)",
  },
  {
    name: "dpmpp-2m-sde-karras",
    className: "DPMSolverMultistepScheduler",
    overrides: { algorithm_type: "sde-dpmsolver++", solver_order: 2, use_karras_sigmas: true },
    aka: "DPM++ 2M SDE Karras / dpmpp_2m_sde + karras",
    description: "DPM++ 2M SDE on Karras et al. noise levels",
  },
  {
    name: "dpmpp-3m-sde",
    className: "DPMSolverMultistepScheduler",
    overrides: { algorithm_type: "sde-dpmsolver++", solver_order: 3, use_karras_sigmas: false },
    aka: "DPM++ 3M SDE / dpmpp_3m_sde",
    description: "3rd-order multistep SDE-DPM-Solver++ (stochastic)",
  },
  {
    name: "unipc",
    className: "UniPCMultistepScheduler",
    overrides: {},
    aka: "UniPC / uni_pc",
    description: "UniPC predictor-corrector (bh2), strong at 10-20 steps",
  },
  {
    name: "lcm",
    className: "LCMScheduler",
    overrides: {},
    aka: "LCM / lcm",
    description: "latent consistency model sampling (for LCM-distilled models / LoRAs, 2-8 steps)",
  },
]);

/** Normalises user spellings: "DPM++ 2M Karras" -> "dpmpp-2m-karras", "Euler a" -> "euler-a", "k_lms" -> "lms". */
export function normalizeSamplerName(name: string): string {
  const n = name
    .trim()
    .toLowerCase()
    .replace(/\+\+/g, "pp")
    .replace(/[\s_]+/g, "-")
    .replace(/^k-/, "");
  const aliases: Record<string, string> = {
    plms: "pndm",
    "euler-ancestral": "euler-a",
    "uni-pc": "unipc",
    "dpmpp-2m-sde-gpu": "dpmpp-2m-sde",
  };
  return aliases[n] ?? n;
}

/** The spec of a named sampler (after normalising the spelling), or a SchedulerError listing the names. */
export function samplerSpec(name: string): SamplerSpec {
  if (typeof name !== "string") {
    throw new SchedulerError(
      `expected a sampler name (a string), got ${name === null ? "null" : typeof name}; known: ${SAMPLERS.map((s) => s.name).join(", ")}`,
    );
  }
  const key = normalizeSamplerName(name);
  const spec = SAMPLERS.find((s) => s.name === key);
  if (!spec) {
    throw new SchedulerError(
      `unknown sampler ${JSON.stringify(name)}; known: ${SAMPLERS.map((s) => s.name).join(", ")}`,
    );
  }
  return spec;
}

/**
 * The named sampler built on a model's scheduler config (e.g. the `scheduler_config.json` of an SD checkpoint):
 * its class, with the sampler's overrides on top of `baseConfig`.
 */
export function samplerFromName(
  name: string,
  baseConfig: SchedulerConfigInput = {},
  options?: SchedulerOptions,
): Scheduler {
  const spec = samplerSpec(name);
  const cls = schedulerClass(spec.className);
  return new cls({ ...baseConfig, ...spec.overrides, _class_name: spec.className }, options);
}

/** The SAMPLERS table as markdown (docs/samplers.md). */
export function samplersMarkdownTable(): string {
  const rows = SAMPLERS.map((s) => {
    const overrides = Object.entries(s.overrides)
      .map(([k, v]) => `\`${k}=${JSON.stringify(v)}\``)
      .join(", ");
    return `| \`${s.name}\` | ${s.aka} | \`${s.className}\` | ${overrides || "-"} | ${s.description} |`;
  });
  return [
    "| name | A1111 / ComfyUI | diffusers class | config overrides | notes |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}
