// Test harness of the web app: builds it (scripts/build-web.js) into a temporary folder, starts `diffuse serve`
// on it (a process, on a free port, the reference backend so that its pixels are the CPU path's), runs the CLI,
// and drives the page in headless Chromium: settings in, a run, the PNG downloaded.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import type { BrowserContext, Page } from "playwright-core";
import { decodeImage } from "../../src/io/image.js";
import { launchChromium } from "./chromium.js";

export const root = resolve(import.meta.dirname, "..", "..");

/** The page's globals a test's page-side code uses (the tests compile without the DOM library). */
export interface PageGlobals {
  DataTransfer: new () => { items: { add(file: unknown): void } };
  File: new (parts: Uint8Array[], name: string, options: { type: string }) => unknown;
}

/** Runs a command to its end; rejects with its output when it fails. */
export function run(args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      env: { ...process.env, DIFFUSE_DEBUG: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.on("exit", (code) =>
      code === 0 ? ok(out) : fail(new Error(`${args.join(" ")}: exit ${code}\n${out}`)),
    );
  });
}

/** `diffuse ARGS` from the sources, on the reference backend (the browser's CPU path). */
export function diffuse(...args: string[]): Promise<string> {
  return run(["--import", "tsx", "src/cli/main.ts", ...args], { DIFFUSE_BACKEND: "reference" });
}

/** A running app: the server's URL, the browser, a scratch folder. */
export interface App {
  url: string;
  tmp: string;
  context: BrowserContext;
  page: Page;
  /** Messages the page threw (none expected: errors must become messages in the page). */
  pageErrors: string[];
  close(): Promise<void>;
}

/** Builds the app, starts `diffuse serve --web` on it and opens Chromium (`args`: extra Chromium flags). */
export async function startApp(args: string[] = []): Promise<App> {
  const tmp = mkdtempSync(join(tmpdir(), "diffuse-web-"));
  await run(["scripts/build-web.js", join(tmp, "web")]);
  const server = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "serve", "--port", "0", "--json", "--web", join(tmp, "web")],
    {
      cwd: root,
      env: { ...process.env, DIFFUSE_DEBUG: "", DIFFUSE_BACKEND: "reference" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  server.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<void>((ok) => server.on("exit", () => ok()));
  const first = (await createInterface({ input: server.stdout })[Symbol.asyncIterator]().next()).value;
  const listening = first ? (JSON.parse(first as string) as { url?: string }) : null;
  if (!listening?.url) {
    server.kill();
    throw new Error(`diffuse serve did not start: ${stderr}`);
  }
  const context = await launchChromium(join(tmp, "profile"), args);
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  return {
    url: listening.url,
    tmp,
    context,
    page,
    pageErrors,
    async close() {
      await context.close().catch(() => {});
      server.kill("SIGTERM");
      await exited;
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** Opens the page (query: e.g. "device=cpu") and waits until it can generate. */
export async function openPage(app: App, query: string): Promise<void> {
  await app.page.goto(`${app.url}/?${query}`);
  await waitReady(app.page);
}

/** Waits until the Generate button is enabled (a model is loaded, or a server connected). */
export async function waitReady(page: Page): Promise<void> {
  await page.waitForSelector("#generate:not([disabled])", { timeout: 120_000 });
}

/** The settings a test types in. */
export interface Settings {
  prompt: string;
  seed: number;
  steps: number;
  guidance: number;
  negative?: string;
  strength?: number;
}

/** Types the settings into the form. */
export async function fill(page: Page, s: Settings): Promise<void> {
  await page.fill("#prompt", s.prompt);
  await page.fill("#negative", s.negative ?? "");
  await page.fill("#seed", String(s.seed));
  await page.fill("#steps", String(s.steps));
  await page.fill("#guidance", String(s.guidance));
  if (s.strength !== undefined) await page.fill("#strength", String(s.strength));
}

/** A PNG downloaded from the page: its bytes, pixels and parameters. */
export interface Downloaded {
  png: Buffer;
  pixels: number[];
  parameters: string;
  width: number;
}

/** Decodes a PNG's pixels and parameters. */
export function readPng(png: Buffer): Downloaded {
  const image = decodeImage(png);
  return { png, pixels: Array.from(image.data), parameters: image.text.parameters ?? "", width: image.width };
}

/** Clicks Generate, waits for the new gallery image and downloads its PNG. */
export async function generate(page: Page): Promise<Downloaded> {
  const before = await page.locator("#gallery figure").count();
  await page.click("#generate");
  await page
    .locator("#gallery figure")
    .nth(before)
    .or(page.locator("#messages .error"))
    .first()
    .waitFor({ timeout: 300_000 });
  const error = await page
    .locator("#messages .error")
    .first()
    .textContent({ timeout: 10 })
    .catch(() => null);
  if (error) throw new Error(`the page says: ${error}`);
  return download(page, "#gallery figure:first-child a.download");
}

/** Waits until `selector`'s text matches `text`. */
export async function waitForText(
  page: Page,
  selector: string,
  text: RegExp,
  timeout = 120_000,
): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor({ timeout });
}

/** Clicks a download link or button and reads the file. */
export async function download(page: Page, selector: string): Promise<Downloaded> {
  const [file] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
  return readPng(readFileSync((await file.path())!));
}
