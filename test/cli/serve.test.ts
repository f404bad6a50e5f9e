// `diffuse serve` as a process: --json prints the address, an A1111 txt2img request is answered with the shipped
// model, job events come as JSON lines, SIGTERM stops it cleanly; bad options are one-line errors.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

describe("diffuse serve (CLI)", () => {
  it("serves the shipped model on a free port, logs job events as JSON lines, stops on SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "serve", "--port", "0", "--json"],
      {
        cwd: repoRoot,
        env: { ...process.env, DIFFUSE_DEBUG: "" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      const first = JSON.parse(((await lines.next()).value as string | undefined) ?? "null");
      assert.ok(first, `no listening line (stderr: ${stderr})`);
      assert.equal(first.type, "listening");
      assert.match(first.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.deepEqual(first.models, ["mnist"]);
      const res = await fetch(`${first.url}/sdapi/v1/txt2img`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "9", steps: 2, seed: 0 }),
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { images: string[] }).images.length, 1);
      const events: string[] = [];
      for (;;) {
        const line = JSON.parse((await lines.next()).value as string);
        assert.equal(line.type, "job");
        events.push(line.event.type);
        if (line.event.type === "done") break;
      }
      assert.deepEqual([events[0], events[1], events.at(-1)], ["queued", "started", "done"]);
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, stderr);
  });

  it("refuses bad options with one line", () => {
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "serve", "--model", "/no/such/model"],
      {
        cwd: repoRoot,
        encoding: "utf8",
        env: { ...process.env, DIFFUSE_DEBUG: "" },
      },
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^diffuse: --model \/no\/such\/model: no such file or folder\n$/);
  });
});
