// The README's TypeScript examples must run as written (with "diffuse" resolved to this checkout's source).
// Blocks fenced as "```ts needs-a-model" use a checkpoint the user has and are only typechecked by eye.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const readme = readFileSync(join(root, "README.md"), "utf8");
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe("README examples", () => {
  it("has TypeScript examples", () => assert.ok(blocks.length >= 2));
  blocks.forEach((code, i) => {
    it(`example ${i + 1} runs`, (t) => {
      const entry = pathToFileURL(join(root, "src", "index.ts")).href;
      const source = code.replaceAll('from "diffuse"', `from ${JSON.stringify(entry)}`);
      const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", source], {
        cwd: root,
        encoding: "utf8",
      });
      // an example on the WebGPU device needs an adapter (a GPU, or lavapipe / SwiftShader as .ci/run installs)
      const noAdapter = /webgpu: no adapter found[^\n]*/.exec(r.stderr);
      if (r.status !== 0 && code.includes("webgpu") && noAdapter) return t.skip(noAdapter[0]);
      assert.equal(r.status, 0, `example ${i + 1} failed:\n${r.stderr}`);
    });
  });
});
