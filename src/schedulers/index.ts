// Public API of the schedulers layer: noise schedules, the diffusers-compatible scheduler classes, the functional
// k-diffusion-style samplers, and the named-sampler table.
export {
  type BetaSchedule,
  type BetaScheduleConfig,
  betasForAlphaBar,
  cumprodF32,
  makeBetas,
  type NoiseSchedule,
  noiseSchedule,
  rescaleZeroTerminalSnr,
  trainSigmas,
} from "./betas.js";
export { isKnownConfigKey, type SchedulerConfigInput, type SchedulerOptions } from "./config.js";
export { type DDIMConfig, DDIMScheduler, type DDIMStepOptions, ddimStep, ddimVariance } from "./ddim.js";
export { type DDPMConfig, DDPMScheduler, ddpmPosteriorMean, ddpmPosteriorVariance } from "./ddpm.js";
export { DiscreteSigmaScheduler } from "./discrete-sigma-scheduler.js";
export {
  type DPMSolverMultistepConfig,
  DPMSolverMultistepScheduler,
  type DpmSolverOrderPolicy,
  type DpmSolverSamplerOptions,
  type DpmSolverUpdateOptions,
  dpmSolverPlusPlusUpdate,
  dpmSolverStepOrder,
  sampleDpmpp2m,
  sampleDpmpp2mSde,
  sampleDpmpp3mSde,
  sampleDpmSolverPlusPlus,
} from "./dpmsolver-multistep.js";
export { SchedulerError } from "./errors.js";
export {
  type ChurnOptions,
  churn,
  churnGamma,
  type EulerDiscreteConfig,
  EulerDiscreteScheduler,
  eulerStep,
  sampleEuler,
} from "./euler.js";
export {
  type EulerAncestralDiscreteConfig,
  EulerAncestralDiscreteScheduler,
  eulerAncestralStep,
  sampleEulerAncestral,
} from "./euler-ancestral.js";
export { type HeunDiscreteConfig, HeunDiscreteScheduler, heunDerivative, sampleHeun } from "./heun.js";
export {
  type Denoiser,
  discreteDenoiser,
  eulerMove,
  getAncestralStep,
  type SamplerOptions,
  stepNoise,
  toD,
} from "./kdiffusion.js";
export { type LCMConfig, LCMScheduler, lcmBoundaryScalings, renoise } from "./lcm.js";
export {
  type LMSDiscreteConfig,
  LMSDiscreteScheduler,
  type LMSStepOptions,
  lmsCoefficient,
  lmsStep,
  sampleLms,
} from "./lms.js";
export { MultistepScheduler } from "./multistep-scheduler.js";
export { type PNDMConfig, PNDMScheduler, plmsCombine, pndmTransfer } from "./pndm.js";
export {
  denoisedFromOutputVE,
  denoisedFromOutputVP,
  epsilonFromOutputVP,
  PREDICTION_TYPES,
  type PredictionType,
} from "./predictions.js";
export {
  loadScheduler,
  parseSchedulerConfigJson,
  SCHEDULER_CLASSES,
  schedulerClass,
  schedulerFromConfig,
} from "./registry.js";
export {
  normalizeSamplerName,
  SAMPLERS,
  type SamplerSpec,
  samplerFromName,
  samplerSpec,
  samplersMarkdownTable,
} from "./samplers.js";
export {
  type CommonSchedulerConfig,
  Scheduler,
  type SchedulerClass,
  type StepOptions,
  type StepResult,
} from "./scheduler.js";
export {
  discreteSigmaSchedule,
  type FinalSigma,
  multistepSigmaSchedule,
  type SigmaSchedule,
  type SigmaScheduleOptions,
  type SigmaSpacing,
} from "./sigma-schedule.js";
export {
  alphaBarToSigma,
  appendZero,
  exponentialSigmas,
  halfLogSnr,
  karrasSigmas,
  type NoiseLevel,
  sigmaToAlphaSigma,
  sigmaToT,
  veLevel,
  vpLevel,
} from "./sigmas.js";
export { clipSample, dynamicThreshold, limitPredictedX0 } from "./threshold.js";
export { multistepTimesteps, spacedTimesteps, TIMESTEP_SPACINGS, type TimestepSpacing } from "./timesteps.js";
export {
  sampleUniPc,
  type UniPCMultistepConfig,
  UniPCMultistepScheduler,
  type UniPcUpdateOptions,
  uniPcStepOrder,
  uniPcUpdate,
} from "./unipc.js";
