import { type GuidanceInterval, parseGuidanceInterval } from "../pipelines/guidance.js";
import { CliError } from "./errors.js";

/** The help text of `--guidance-interval`. */
export const GUIDANCE_INTERVAL_HELP =
  'guide only the steps whose noise level sigma is in (lo, hi], e.g. "0.3,5" (hi may be inf); "all" guides every step';

/**
 * `--guidance-interval` as typed: undefined when absent, null for "all" (every step guided, overriding a model's
 * default), else the interval.
 */
export function guidanceIntervalOption(v: string | undefined): GuidanceInterval | null | undefined {
  if (v === undefined) return undefined;
  if (/^(all|none|off)$/i.test(v.trim())) return null;
  try {
    return parseGuidanceInterval(v);
  } catch (err) {
    throw new CliError(`--guidance-interval: ${(err as Error).message}`);
  }
}

/** The interval to use: the typed one ("all" = none) when given, else `fallback` (a model's or an image's). */
export function resolveGuidanceInterval(
  typed: GuidanceInterval | null | undefined,
  fallback: GuidanceInterval | undefined,
): GuidanceInterval | undefined {
  return typed === undefined ? fallback : (typed ?? undefined);
}
