// A static HTTP server for the browser tests, on 127.0.0.1 and a free port: fixed pages (the bundle, an empty page)
// and folders mounted under a prefix (GET and HEAD; nothing outside a mounted folder is served).
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, resolve, sep } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html",
  ".css": "text/css",
  ".js": "text/javascript",
  ".json": "application/json",
  ".png": "image/png",
  ".safetensors": "application/octet-stream",
};

/** What a test server serves. */
export interface StaticRoutes {
  /** Exact paths ("/", "/bundle.js") and their contents; the type comes from the extension (a page for "/"). */
  pages?: Record<string, string | Uint8Array>;
  /** URL prefixes ("/models/") and the folders they serve. */
  folders?: Record<string, string>;
}

/** A running test server and its base URL ("http://127.0.0.1:PORT/"). */
export interface StaticServer {
  server: Server;
  url: string;
  /** How many requests each path got (to check caching). */
  hits: Map<string, number>;
  close(): Promise<void>;
}

function find(routes: StaticRoutes, path: string): { body: string | Uint8Array; type: string } | null {
  const page = routes.pages?.[path];
  if (page !== undefined) return { body: page, type: TYPES[extname(path)] ?? "text/html" };
  for (const [prefix, dir] of Object.entries(routes.folders ?? {})) {
    if (!path.startsWith(prefix)) continue;
    const root = resolve(dir);
    const file = resolve(root, `.${path.slice(prefix.length - 1)}`);
    if (file.startsWith(root + sep) && existsSync(file) && statSync(file).isFile())
      return { body: readFileSync(file), type: TYPES[extname(file)] ?? "application/octet-stream" };
  }
  return null;
}

/** Starts a server for `routes`. */
export async function startStaticServer(routes: StaticRoutes): Promise<StaticServer> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const found = find(routes, path);
    if (!found) return void res.writeHead(404).end();
    const length = typeof found.body === "string" ? Buffer.byteLength(found.body) : found.body.length;
    res.writeHead(200, { "content-type": found.type, "content-length": length });
    res.end(req.method === "HEAD" ? undefined : found.body);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    hits,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
