// The web app (`npm run build:web`: dist/web) at `/`: its files served as they are by @fastify/static (no
// directory listings, no dotfiles, no path outside the folder), with a content security policy on the page. The
// app is public code: it is served without the API key, which its calls to the API carry (the page asks for it).
import { existsSync } from "node:fs";
import { extname } from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { HttpError } from "./errors.js";

/** The route of the app's files, which needs no API key. */
const APP_ROUTE = "/*";

/** The page may fetch from any server (the page's "server" mode), and runs only its own scripts and workers. */
const CSP = [
  "default-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src *",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self'",
  "frame-ancestors 'none'",
].join("; ");

function setHeaders(res: { setHeader(name: string, value: string): unknown }, path: string): void {
  res.setHeader("x-content-type-options", "nosniff");
  if (extname(path) === ".html") {
    res.setHeader("content-security-policy", CSP);
    // a new build replaces the page's scripts: check every time
    res.setHeader("cache-control", "no-cache");
  }
}

/** True for a GET or HEAD of the app's files (served without the API key). */
export function isWebAppRequest(request: FastifyRequest): boolean {
  return (request.method === "GET" || request.method === "HEAD") && request.routeOptions.url === APP_ROUTE;
}

/**
 * Serves the built web app from `dir` at `/`. When `dir` holds no app (not built yet), `GET /` answers 404 with
 * what to run.
 */
export async function registerWebApp(app: FastifyInstance, dir: string): Promise<void> {
  if (!existsSync(`${dir}/index.html`)) {
    // hidden from the OpenAPI document, as the app's files are
    app.get("/", { schema: { hide: true } as object }, async () => {
      throw new HttpError(
        404,
        `the web app is not built (no ${dir}/index.html): run npm run build:web, or pass --web DIR`,
      );
    });
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: "/",
    index: "index.html",
    dotfiles: "ignore",
    list: false,
    decorateReply: false,
    setHeaders,
  });
}
