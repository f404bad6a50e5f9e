// A Stable Diffusion model from anywhere (what the browser entry needs): loadPipelineComponents takes a folder as a
// path, a URL or a map of Blobs, and a single file as a path, URL, Blob or bytes; all give the same models. The
// model hash and LoRAs read Blobs too.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, relative, resolve, sep } from "node:path";
import { after, before, describe, it } from "node:test";
import { CheckpointError } from "../../src/io/errors.js";
import { serializeSafetensors } from "../../src/io/safetensors-write.js";
import { loadPipelineComponents } from "../../src/pipelines/load.js";
import { LoraFormatError, loadLora } from "../../src/pipelines/lora.js";
import { autoV2Hash, canHash } from "../../src/pipelines/model-hash.js";
import { baseName, resolveSource, stem } from "../../src/pipelines/pipeline-source.js";
import { tensor } from "../../src/tensor/create.js";

const emoji = resolve(import.meta.dirname, "..", "..", "models", "emoji");

function blobsOf(dir: string): Map<string, Blob> {
  const out = new Map<string, Blob>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path).split(sep).join("/"), new Blob([readFileSync(path)]));
    }
  };
  walk(dir);
  return out;
}

describe("loading a pipeline from paths, URLs, maps of files and Blobs", () => {
  let server: Server;
  let url: string;
  before(async () => {
    server = createServer((req, res) => {
      const file = resolve(emoji, `.${decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)}`);
      if (!file.startsWith(emoji + sep) || !statSync(file, { throwIfNoEntry: false })?.isFile())
        return void res.writeHead(404).end();
      const body = readFileSync(file);
      res.writeHead(200, { "content-length": body.length }).end(req.method === "HEAD" ? undefined : body);
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => server.close());

  it("sorts sources into single files and folders", async () => {
    const blob = new Blob([Uint8Array.of(1)]);
    assert.deepEqual(await resolveSource(blob), { file: blob });
    const bytes = Uint8Array.of(1);
    assert.deepEqual(await resolveSource(bytes), { file: bytes });
    const file = await resolveSource(new URL("http://h/models/sd15.safetensors"));
    assert.equal(String((file as { file: URL }).file), "http://h/models/sd15.safetensors");
    assert.equal(
      ((await resolveSource(new URL("http://h/models/sd15/"))) as { folder: { label: string } }).folder.label,
      "http://h/models/sd15/",
    );
    assert.ok("folder" in (await resolveSource(new Map([["model_index.json", blob]]))));
    assert.ok("folder" in (await resolveSource(emoji)));
    assert.deepEqual(await resolveSource(join(emoji, "model_index.json")), {
      file: join(emoji, "model_index.json"),
    });
    await assert.rejects(
      resolveSource(join(emoji, "nowhere")),
      (e: unknown) => e instanceof CheckpointError && /nowhere: not found/.test(e.message),
    );
    assert.equal(baseName("/a/b/sd15.safetensors"), "sd15.safetensors");
    assert.equal(baseName("http://h/models/emoji/"), "emoji");
    assert.equal(baseName("C:\\models\\x.safetensors"), "x.safetensors");
    assert.equal(stem("x.fp16.safetensors"), "x.fp16");
  });

  it("a folder as a path, a URL and a map of Blobs gives the same models", async () => {
    const fromPath = await loadPipelineComponents(emoji);
    const fromUrl = await loadPipelineComponents(new URL(url));
    const fromMap = await loadPipelineComponents(blobsOf(emoji));
    const named = await loadPipelineComponents(blobsOf(emoji), { name: "mine" });
    assert.equal(fromPath.modelName, "emoji");
    assert.equal(fromMap.modelName, "model");
    assert.equal(named.modelName, "mine");
    assert.equal(fromUrl.path, url);
    assert.ok(fromUrl.hashPath instanceof URL);
    assert.ok(fromMap.hashPath instanceof Blob);
    for (const c of [fromUrl, fromMap]) {
      assert.equal(c.family, "sd1");
      assert.equal(c.scheduler.className, fromPath.scheduler.className);
      assert.equal(c.tokenizer!.encode("red heart").join(), fromPath.tokenizer!.encode("red heart").join());
      for (const [key, t] of fromPath.unet.stateDict())
        assert.deepEqual(c.unet.stateDict().get(key)!.toFloat32Array(), t.toFloat32Array(), key);
    }
    // the model hash of the UNet weights is the same read from a path, a Blob or a URL
    const want = await autoV2Hash(fromPath.hashPath);
    assert.equal(await autoV2Hash(fromMap.hashPath), want);
    assert.equal(await autoV2Hash(fromUrl.hashPath), want);
    assert.ok(canHash(fromMap.hashPath));
  });

  it("errors name what is missing in a map of files", async () => {
    const files = blobsOf(emoji);
    files.delete("vae/config.json");
    files.delete("vae/diffusion_pytorch_model.safetensors");
    await assert.rejects(
      loadPipelineComponents(files),
      /component folder vae\/ is missing \(model_index\.json lists vae: AutoencoderKL\)/,
    );
    await assert.rejects(loadPipelineComponents(new Map()), /model_index\.json not found/);
  });

  it("LoRAs from Blobs and bytes: named by the File, or as given; only .safetensors names", async () => {
    const bytes = serializeSafetensors({
      "unet.a.b.lora_A.weight": tensor([1, 2], [1, 2]),
      "unet.a.b.lora_B.weight": tensor([3, 4], [2, 1]),
    });
    const lora = await loadLora(new File([bytes as Uint8Array<ArrayBuffer>], "style.safetensors"));
    assert.equal(lora.name, "style");
    assert.equal((await loadLora(bytes, "given")).name, "given");
    await assert.rejects(
      loadLora(new File([bytes as Uint8Array<ArrayBuffer>], "style.ckpt")),
      LoraFormatError,
    );
  });
});
