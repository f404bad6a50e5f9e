// Safe defaults: the API key on every route (Bearer or x-api-key; 401 otherwise), no non-loopback bind without a
// key or --insecure (also from the CLI), CORS only for the named origin, the request body limit.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { ModelCatalog } from "../../src/server/models.js";
import { checkBind, isLoopback } from "../../src/server/server.js";
import { mnistCatalog, request, startServer, type TestServer } from "./helpers.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

describe("diffuse serve: API key, bind address, CORS, body limit", () => {
  let catalog: ModelCatalog;
  let t: TestServer;
  before(async () => {
    catalog = await mnistCatalog();
    t = await startServer({
      catalog,
      apiKey: "s3cret",
      cors: "https://app.example",
      limits: { bodyLimit: 4096 },
    });
  });
  after(() => t.close());

  it("refuses requests without the key or with a wrong one (401 JSON), on every route", async () => {
    for (const [method, path] of [
      ["GET", "/api/v1/models"],
      ["POST", "/api/v1/generate"],
      ["GET", "/sdapi/v1/progress"],
      ["POST", "/sdapi/v1/txt2img"],
      ["GET", "/openapi.json"],
      ["GET", "/nowhere"],
    ]) {
      const missing = await request(
        `${t.url}${path}`,
        method!,
        method === "POST" ? { prompt: "1" } : undefined,
      );
      assert.equal(missing.status, 401, `${method} ${path}`);
      assert.match(
        missing.body.message,
        /an API key is required: send Authorization: Bearer KEY or x-api-key: KEY/,
      );
      assert.equal(missing.headers.get("www-authenticate"), "Bearer");
      const wrong = await request(`${t.url}${path}`, method!, undefined, { authorization: "Bearer nope" });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.message, "wrong API key");
    }
    assert.equal(
      (await request(`${t.url}/api/v1/models`, "GET", undefined, { authorization: "Bearer s3cret" })).status,
      200,
    );
    assert.equal(
      (await request(`${t.url}/sdapi/v1/options`, "GET", undefined, { "x-api-key": "s3cret" })).status,
      200,
    );
  });

  it("answers CORS for the named origin only", async () => {
    const ok = await fetch(`${t.url}/api/v1/models`, {
      headers: { origin: "https://app.example", "x-api-key": "s3cret" },
    });
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example");
    const preflight = await fetch(`${t.url}/api/v1/generate`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    assert.ok(preflight.status < 300, `preflight status ${preflight.status}`);
    const other = await fetch(`${t.url}/api/v1/models`, {
      headers: { origin: "https://evil.example", "x-api-key": "s3cret" },
    });
    assert.notEqual(other.headers.get("access-control-allow-origin"), "https://evil.example");
  });

  it("has no CORS headers unless an origin is named", async () => {
    const plain = await startServer({ catalog });
    try {
      const res = await fetch(`${plain.url}/api/v1/models`, { headers: { origin: "https://app.example" } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("access-control-allow-origin"), null);
    } finally {
      await plain.close();
    }
  });

  it("refuses a body over the limit with 413", async () => {
    const r = await request(
      `${t.url}/api/v1/generate`,
      "POST",
      { prompt: "1", init_image: "A".repeat(8000) },
      { "x-api-key": "s3cret" },
    );
    assert.equal(r.status, 413);
    assert.match(r.body.message, /body/i);
  });

  it("binds beyond loopback only with an API key or --insecure", () => {
    assert.ok(isLoopback("127.0.0.1") && isLoopback("::1") && isLoopback("localhost"));
    assert.ok(!isLoopback("0.0.0.0") && !isLoopback("::") && !isLoopback("192.168.1.5"));
    assert.doesNotThrow(() => checkBind("127.0.0.1", undefined, false));
    assert.throws(
      () => checkBind("0.0.0.0", undefined, false),
      /--host 0.0.0.0 lets other machines connect, and no --api-key/,
    );
    assert.doesNotThrow(() => checkBind("0.0.0.0", "key", false));
    assert.doesNotThrow(() => checkBind("0.0.0.0", undefined, true));
  });

  it("diffuse serve --host 0.0.0.0 without a key exits 1 with one line saying what to do", () => {
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "serve", "--host", "0.0.0.0"],
      {
        cwd: repoRoot,
        encoding: "utf8",
        env: { ...process.env, DIFFUSE_DEBUG: "", DIFFUSE_API_KEY: "" },
        timeout: 60_000,
      },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      /^diffuse: --host 0\.0\.0\.0 lets other machines connect.*add --api-key KEY.*--insecure/,
    );
    assert.equal(r.stderr.trimEnd().split("\n").length, 1);
  });
});
