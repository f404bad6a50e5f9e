// The web app at `/` (diffuse serve --web DIR): its files are served without the API key (the API still wants
// it), with a content security policy on the page; nothing outside the folder (raw "..", encoded or not), no
// dotfiles, no directory listings; its routes stay out of the OpenAPI document; an unbuilt app says what to run.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mnistCatalog, request, startServer, type TestServer } from "./helpers.js";

/** A GET with the path sent exactly as written (fetch would normalise "..", and so would hide the attack). */
function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((ok, fail) => {
    const req = httpRequest({ hostname, port, path, method: "GET" }, (res) => {
      let body = "";
      res.on("data", (d) => {
        body += d;
      });
      res.on("end", () => ok({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", fail);
    req.end();
  });
}

describe("diffuse serve: the web app at /", () => {
  let tmp: string;
  let t: TestServer;
  let unbuilt: TestServer;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "diffuse-web-serve-"));
    const web = join(tmp, "web");
    mkdirSync(join(web, "models"), { recursive: true });
    writeFileSync(join(web, "index.html"), "<!doctype html><title>app</title>");
    writeFileSync(join(web, "app.js"), "console.log(1)");
    writeFileSync(join(web, "models", "index.json"), "[]");
    writeFileSync(join(web, ".env"), "SECRET=dotfile");
    writeFileSync(join(tmp, "secret.txt"), "SECRET=outside");
    const catalog = await mnistCatalog();
    t = await startServer({ catalog, apiKey: "s3cret", web });
    unbuilt = await startServer({ catalog, web: join(tmp, "nowhere") });
  });

  after(async () => {
    await t?.close();
    await unbuilt?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("serves the page and its files without the key; the API still wants it", async () => {
    const page = await fetch(`${t.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'.*script-src 'self'/);
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    assert.equal(await page.text(), "<!doctype html><title>app</title>");
    const script = await fetch(`${t.url}/app.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get("content-type") ?? "", /javascript/);
    assert.equal((await fetch(`${t.url}/models/index.json`)).status, 200);
    assert.equal((await request(`${t.url}/api/v1/models`, "GET")).status, 401);
    assert.equal((await request(`${t.url}/`, "POST", {})).status, 401, "only GET and HEAD are the app's");
    const withKey = await request(`${t.url}/api/v1/models`, "GET", undefined, { "x-api-key": "s3cret" });
    assert.equal(withKey.status, 200);
  });

  it("nothing outside the folder, no dotfiles, no listings", async () => {
    for (const path of [
      "/../secret.txt",
      "/%2e%2e/secret.txt",
      "/models/..%2f..%2fsecret.txt",
      "/models/%2e%2e/%2e%2e/secret.txt",
      "/..%5csecret.txt",
      "/.env",
      "/models/",
      "/models",
    ]) {
      const r = await rawGet(t.url, path);
      assert.notEqual(r.status, 200, path);
      assert.doesNotMatch(r.body, /SECRET/, path);
    }
  });

  it("keeps its routes out of the OpenAPI document", async () => {
    const doc = await request(`${t.url}/openapi.json`, "GET", undefined, { "x-api-key": "s3cret" });
    const paths = Object.keys(doc.body.paths);
    assert.ok(paths.includes("/api/v1/generate"));
    assert.deepEqual(
      paths.filter((p) => p === "/" || p.includes("*")),
      [],
    );
  });

  it("an unbuilt app: GET / says what to run", async () => {
    const r = await request(`${unbuilt.url}/`, "GET");
    assert.equal(r.status, 404);
    assert.match(r.body.message, /the web app is not built .*run npm run build:web, or pass --web DIR/);
  });
});
