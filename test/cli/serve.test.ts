// `diffuse serve` as a process: --json prints the address, an A1111 txt2img request and a ComfyUI workflow are
// answered with images of the shipped emoji model, job events come as JSON lines, SIGTERM stops it cleanly; bad
// options are one-line errors.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { decodeImage } from "../../src/io/image.js";

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
      assert.deepEqual(first.models, ["emoji", "mnist"]);
      const res = await fetch(`${first.url}/sdapi/v1/txt2img`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "red heart", steps: 8, seed: 3 }),
      });
      assert.equal(res.status, 200);
      const a1111 = (await res.json()) as { images: string[]; info: string };
      assert.equal(a1111.images.length, 1);
      assert.equal(JSON.parse(a1111.info).sd_model_name, "emoji");
      const heart = decodeImage(Buffer.from(a1111.images[0]!, "base64"));
      assert.equal(heart.width, 32);
      const centre = (16 * 32 + 16) * heart.channels;
      assert.ok(
        heart.data[centre]! > 150 && heart.data[centre + 1]! < 110,
        "a red heart: the centre pixel is red",
      );
      const events: string[] = [];
      for (;;) {
        const line = JSON.parse((await lines.next()).value as string);
        assert.equal(line.type, "job");
        events.push(line.event.type);
        if (line.event.type === "done") break;
      }
      assert.deepEqual([events[0], events[1], events.at(-1)], ["queued", "started", "done"]);

      // a ComfyUI workflow on the same model
      const workflow = {
        "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "emoji" } },
        "2": { class_type: "CLIPTextEncode", inputs: { text: "red heart", clip: ["1", 1] } },
        "3": { class_type: "CLIPTextEncode", inputs: { text: "", clip: ["1", 1] } },
        "4": { class_type: "EmptyLatentImage", inputs: { width: 32, height: 32, batch_size: 1 } },
        "5": {
          class_type: "KSampler",
          inputs: {
            model: ["1", 0],
            positive: ["2", 0],
            negative: ["3", 0],
            latent_image: ["4", 0],
            seed: 3,
            steps: 8,
            cfg: 7.5,
            sampler_name: "dpmpp_2m",
            scheduler: "normal",
            denoise: 1,
          },
        },
        "6": { class_type: "VAEDecode", inputs: { samples: ["5", 0], vae: ["1", 2] } },
        "7": { class_type: "SaveImage", inputs: { images: ["6", 0], filename_prefix: "heart" } },
      };
      const queued = await fetch(`${first.url}/prompt`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: workflow }),
      });
      assert.equal(queued.status, 200);
      const { prompt_id } = (await queued.json()) as { prompt_id: string };
      for (;;) {
        const line = JSON.parse((await lines.next()).value as string);
        if (line.event.type === "done") break;
      }
      const history = (await (await fetch(`${first.url}/history/${prompt_id}`)).json()) as Record<
        string,
        { outputs: Record<string, { images: { filename: string; subfolder: string; type: string }[] }> }
      >;
      const saved = history[prompt_id]!.outputs["7"]!.images[0]!;
      const view = await fetch(
        `${first.url}/view?${new URLSearchParams({ filename: saved.filename, subfolder: saved.subfolder, type: saved.type })}`,
      );
      assert.equal(view.status, 200);
      const comfy = decodeImage(Buffer.from(await view.arrayBuffer()));
      assert.deepEqual([comfy.width, comfy.height], [32, 32]);
      assert.ok(
        comfy.data[centre]! > 150 && comfy.data[centre + 1]! < 110,
        "the workflow's heart is red too",
      );
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
