// `--resume` keeps the options a run was started with (the CLI records them in its checkpoint): a flag given again
// with the same value is fine, one with another value is an error naming both, and an omitted flag takes the
// recorded value, not the command's default. A few options may change between sessions (`--steps` extends a run).
import type { Command } from "commander";
import { resumeCheckpoint } from "../train/checkpoint.js";
import { CliError } from "./errors.js";

/** Options that may differ from the recorded run (where output goes, how it is reported, how long it runs). */
const ALWAYS_FREE = new Set(["out", "resume", "json", "device", "sampleEvery", "checkpointEvery"]);

function flag(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * The options a resumed run goes on with: `given` (commander's parsed options of `cmd`) merged over the options
 * recorded in the checkpoint of `given.resume`; `free` lists the options that may change (e.g. "steps"). Without
 * `--resume`, or for a checkpoint that recorded no options, `given` is returned as it is.
 */
export function resumeOptions<T extends { resume?: string }>(
  cmd: Command,
  given: T,
  free: readonly string[] = [],
): T {
  if (!given.resume) return given;
  const recorded = resumeCheckpoint(given.resume).state.extra?.options as Record<string, unknown> | undefined;
  if (!recorded || typeof recorded !== "object") return given;
  const merged: Record<string, unknown> = { ...given };
  for (const [key, value] of Object.entries(recorded)) {
    if (ALWAYS_FREE.has(key)) continue;
    const explicit = cmd.getOptionValueSource(key) === "cli";
    const current = (given as Record<string, unknown>)[key];
    if (free.includes(key)) {
      if (!explicit) merged[key] = value;
      continue;
    }
    if (explicit && String(current) !== String(value)) {
      throw new CliError(
        `${flag(key)} ${String(current)} contradicts the resumed run's ${flag(key)} ${String(value)} (recorded in ${given.resume}); leave it out to keep the run's value`,
      );
    }
    merged[key] = value;
  }
  return merged as T;
}

/** The options to record with a run's checkpoints: every parsed option except where output and reports go. */
export function recordedOptions(given: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(given).filter(([k]) => !ALWAYS_FREE.has(k)));
}
