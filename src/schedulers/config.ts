// Scheduler configs: diffusers' `scheduler_config.json` keys as-is (snake_case), merged over each class's defaults,
// checked, and kept whole so that another scheduler can be built from them (diffusers' `from_config`).
import { SchedulerError } from "./errors.js";

/** A scheduler config as found in `scheduler_config.json`: diffusers' keys and values. */
export type SchedulerConfigInput = Readonly<Record<string, unknown>>;

/** Options of scheduler constructors and factories. */
export interface SchedulerOptions {
  /** Receives warnings (unknown config keys); defaults to `console.warn`. Each key is reported once per process. */
  logger?: (message: string) => void;
}

/**
 * Keys that some scheduler of the diffusers family understands. diffusers' `from_config` keeps keys of compatible
 * classes silently (so that switching sampler keeps them); only keys outside this set are reported.
 */
const KNOWN_KEYS = new Set([
  // shared by the zoo
  "num_train_timesteps",
  "beta_start",
  "beta_end",
  "beta_schedule",
  "trained_betas",
  "prediction_type",
  "timestep_spacing",
  "steps_offset",
  "rescale_betas_zero_snr",
  "clip_sample",
  "clip_sample_range",
  "thresholding",
  "dynamic_thresholding_ratio",
  "sample_max_value",
  "set_alpha_to_one",
  "skip_prk_steps",
  "variance_type",
  "interpolation_type",
  "use_karras_sigmas",
  "use_exponential_sigmas",
  "use_beta_sigmas",
  "use_lu_lambdas",
  "use_flow_sigmas",
  "flow_shift",
  "sigma_min",
  "sigma_max",
  "timestep_type",
  "final_sigmas_type",
  "solver_order",
  "algorithm_type",
  "solver_type",
  "lower_order_final",
  "euler_at_final",
  "lambda_min_clipped",
  "use_dynamic_shifting",
  "time_shift_type",
  "shift_terminal",
  "predict_x0",
  "disable_corrector",
  "solver_p",
  "original_inference_steps",
  "timestep_scaling",
  // other diffusers schedulers compatible with Stable Diffusion (DEIS, KDPM2, DPM-SDE, EDM, ...)
  "noise_sampler_seed",
  "rho",
  "sigma_data",
  "sigma_schedule",
  // keys of old diffusers versions, still found in hub configs
  "tensor_format",
  "timestep_values",
  "predict_epsilon",
]);

/** Whether diffusers' scheduler family knows `key` (unknown keys are kept but reported). */
export function isKnownConfigKey(key: string): boolean {
  return KNOWN_KEYS.has(key) || key.startsWith("_");
}

const reported = new Set<string>();

function parseNonFinite(value: unknown): unknown {
  if (value === "Infinity" || value === "inf") return Number.POSITIVE_INFINITY;
  if (value === "-Infinity" || value === "-inf") return Number.NEGATIVE_INFINITY;
  if (value === "NaN" || value === "nan") return Number.NaN;
  return value;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/**
 * The full config of `className`: `defaults` overlaid with `input`. Values are checked against the type of their
 * default (a number where a number is expected, ...); non-finite numbers may be given as the strings "Infinity",
 * "-Infinity", "NaN" (how JSON writers spell them); null for a number keeps its default. Keys no scheduler knows are kept and reported once each.
 * `_class_name` is set to `className`.
 */
export function resolveConfig<C extends object>(
  className: string,
  defaults: C,
  input: SchedulerConfigInput,
  options: SchedulerOptions = {},
): C & Record<string, unknown> {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new SchedulerError(`${className}: config must be an object, got ${typeName(input)}`);
  }
  const def = defaults as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { ...def };
  for (const [key, raw] of Object.entries(input)) {
    if (key in def) {
      const expected = def[key];
      let value = raw;
      if (typeof expected === "number" || expected === null) value = parseNonFinite(raw);
      // null for a number: how JSON.stringify writes a non-finite one (the default, e.g. -Infinity), never a value
      if (typeof expected === "number" && value === null) value = expected;
      if (expected !== null && value !== null && typeName(value) !== typeName(expected)) {
        throw new SchedulerError(
          `${className}: config "${key}" must be a ${typeName(expected)}, got ${JSON.stringify(raw)}`,
        );
      }
      out[key] = value;
      continue;
    }
    out[key] = raw;
    if (!isKnownConfigKey(key) && !reported.has(key)) {
      reported.add(key);
      const message = `${className}: unknown config key "${key}" is kept in the config but ignored`;
      (options.logger ?? console.warn)(message);
    }
  }
  out._class_name = className;
  return out as C & Record<string, unknown>;
}

/** Throws unless `value` is one of `allowed`. */
export function checkOneOf<T extends string>(
  className: string,
  key: string,
  value: unknown,
  allowed: readonly T[],
): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new SchedulerError(
      `${className}: config "${key}" must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** Throws unless `value` is an integer in [min, max]. */
export function checkInteger(
  className: string,
  key: string,
  value: unknown,
  min: number,
  max = Infinity,
): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new SchedulerError(
      `${className}: config "${key}" must be an integer ${range}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Throws when an option diffusers has but this port does not implement is switched on. */
export function checkUnsupported(
  className: string,
  key: string,
  value: unknown,
  defaultValue: unknown,
): void {
  if (value !== defaultValue && !(value == null && defaultValue == null)) {
    throw new SchedulerError(
      `${className}: config "${key}" = ${JSON.stringify(value)} is not supported (only ${JSON.stringify(defaultValue)})`,
    );
  }
}
