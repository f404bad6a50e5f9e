// The `optim` namespace: optimizers, gradient clipping, learning-rate schedules and weight averaging.
export { AdamW, type AdamWOptions } from "./adamw.js";
export { clipGradNorm } from "./clip.js";
export { EMA, type EMAOptions, type EMAStateDict } from "./ema.js";
export {
  Optimizer,
  type OptimizerStateDict,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
} from "./optimizer.js";
export { constantWithWarmup, type WarmupCosineOptions, warmupCosine } from "./schedule.js";
export { SGD, type SGDOptions } from "./sgd.js";
