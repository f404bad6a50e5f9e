// Headless Chromium for the browser tests: Debian's binary driven by playwright-core, a throw-away profile, and
// the skip message when it is not installed (.ci/run installs it).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = process.env.DIFFUSE_CHROMIUM ?? "/usr/lib/chromium/chromium";

/** node:test `skip` when Chromium is missing. */
export const skipWithoutChromium: string | false = existsSync(CHROMIUM)
  ? false
  : `Chromium not found at ${CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does) or set DIFFUSE_CHROMIUM`;

/** Launches Chromium with its profile, config and cache under `profile` (plus `args`, e.g. WebGPU's flag). */
export function launchChromium(profile: string, args: string[] = []): Promise<BrowserContext> {
  return chromium.launchPersistentContext(join(profile, "user-data"), {
    executablePath: CHROMIUM,
    headless: false, // --headless=new below (Playwright's own flag is the old mode's)
    args: [
      "--headless=new",
      "--no-sandbox",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-breakpad",
      ...args,
    ],
    // without these Chromium writes crash dumps under ~/.config even with a user-data dir
    env: { ...process.env, XDG_CONFIG_HOME: join(profile, "config"), XDG_CACHE_HOME: join(profile, "cache") },
    timeout: 30_000,
  });
}
