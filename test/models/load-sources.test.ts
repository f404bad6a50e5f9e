// Every model loader reads a folder given as a path, a base URL (fetch, here from 127.0.0.1) or a map of files
// (Blobs / ArrayBuffers, as a browser's file picker gives): the same weights, configs and tokens each way, through
// the one checkpoint loader (models/blocks/weights.ts). A sharded checkpoint is read over HTTP through its index.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, sep } from "node:path";
import { after, before, describe, it } from "node:test";
import type { FileMap } from "../../src/io/folder.js";
import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import {
  AutoencoderKL,
  CLIPTextModel,
  CLIPTokenizer,
  UNet2DConditionModel,
  UNet2DModel,
} from "../../src/models/index.js";
import type { Module } from "../../src/nn/index.js";
import { loadScheduler } from "../../src/schedulers/registry.js";
import { fixturesDir, skipWithoutFixtures } from "../helpers.js";

/** The files of a folder (one level of sub-folders) as a map, Blobs and ArrayBuffers alternating. */
function fileMap(dir: string): FileMap {
  const files = new Map<string, Blob | ArrayBuffer>();
  const add = (rel: string) => {
    const data = readFileSync(join(dir, rel));
    files.set(
      rel,
      files.size % 2 ? new Blob([data]) : data.buffer.slice(data.byteOffset, data.byteOffset + data.length),
    );
  };
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile()) add(entry.name);
    else for (const name of readdirSync(join(dir, entry.name))) add(`${entry.name}/${name}`);
  }
  return files;
}

async function assertSameWeights(a: Module, b: Module): Promise<void> {
  const sa = a.stateDict();
  const sb = b.stateDict();
  assert.deepEqual([...sa.keys()], [...sb.keys()]);
  for (const [k, t] of sa) {
    assert.equal(t.dtype, sb.get(k)!.dtype, k);
    assert.deepEqual(await t.data(), await sb.get(k)!.data(), k);
  }
}

describe("model loaders read a path, a base URL or a map of files", { skip: skipWithoutFixtures() }, () => {
  let models: string;
  let tmp: string;
  let server: Server;
  let base: URL;
  const requests: string[] = [];

  before(async () => {
    models = join(fixturesDir()!, "models");
    tmp = mkdtempSync(join(tmpdir(), "diffuse-load-sources-"));
    // serves /fixtures/<models folder> and /tmp/<tmp folder>, GET and HEAD
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      const [, top, ...rest] = path.split("/");
      const root = top === "fixtures" ? models : top === "tmp" ? tmp : null;
      const file = root && resolve(root, rest.join("/"));
      try {
        if (!file?.startsWith(root + sep)) throw new Error("outside");
        const body = readFileSync(file);
        res.writeHead(200, { "content-length": body.length });
        res.end(req.method === "HEAD" ? undefined : body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  });

  after(() => {
    server?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("UNet2DConditionModel, AutoencoderKL and CLIPTextModel: the same weights from a URL and from a file map", async () => {
    const cases = [
      [
        "tiny_unet",
        (d: Parameters<typeof UNet2DConditionModel.fromPretrained>[0]) =>
          UNet2DConditionModel.fromPretrained(d),
      ],
      [
        "tiny_vae",
        (d: Parameters<typeof AutoencoderKL.fromPretrained>[0]) => AutoencoderKL.fromPretrained(d),
      ],
      [
        "tiny_text_encoder",
        (d: Parameters<typeof CLIPTextModel.fromPretrained>[0]) => CLIPTextModel.fromPretrained(d),
      ],
    ] as const;
    for (const [name, load] of cases) {
      const fromPath = await load(join(models, name));
      await assertSameWeights(await load(new URL(`fixtures/${name}/`, base)), fromPath);
      await assertSameWeights(await load(fileMap(join(models, name))), fromPath);
    }
  });

  it("CLIPTokenizer: the same tokens from a URL folder and a file map; a missing folder is named", async () => {
    const text = "a photo of a cat, <|endoftext|> painted";
    const fromPath = await CLIPTokenizer.fromPretrained(join(models, "tiny_tokenizer"));
    const want = fromPath.encode(text);
    const fromUrl = await CLIPTokenizer.fromPretrained(new URL("fixtures/tiny_tokenizer/", base));
    const fromMap = await CLIPTokenizer.fromPretrained(fileMap(join(models, "tiny_tokenizer")));
    assert.deepEqual(fromUrl.encode(text), want);
    assert.deepEqual(fromMap.encode(text), want);
    await assert.rejects(
      CLIPTokenizer.fromPretrained({ "vae/config.json": new Uint8Array() }),
      /no tokenizer files/,
    );
  });

  it("a sharded UNet2DModel and its scheduler over HTTP: read through the index, shard by shard", async () => {
    const mnist = join(import.meta.dirname, "..", "..", "models", "mnist");
    const dir = join(tmp, "sharded");
    mkdirSync(join(dir, "unet"), { recursive: true });
    mkdirSync(join(dir, "scheduler"), { recursive: true });
    writeFileSync(join(dir, "unet", "config.json"), readFileSync(join(mnist, "unet", "config.json")));
    writeFileSync(
      join(dir, "scheduler", "scheduler_config.json"),
      readFileSync(join(mnist, "scheduler", "scheduler_config.json")),
    );
    const { tensors } = await loadSafetensors(join(mnist, "unet", "diffusion_pytorch_model.safetensors"));
    const keys = [...tensors.keys()];
    const shards = [keys.slice(0, keys.length >> 1), keys.slice(keys.length >> 1)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const file = `diffusion_pytorch_model-0000${i + 1}-of-00002.safetensors`;
      await saveSafetensors(join(dir, "unet", file), new Map(shard.map((k) => [k, tensors.get(k)!])));
      for (const k of shard) weightMap[k] = file;
    }
    writeFileSync(
      join(dir, "unet", "diffusion_pytorch_model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    requests.length = 0;
    const unet = await UNet2DModel.fromPretrained(new URL("tmp/sharded/unet/", base));
    await assertSameWeights(unet, await UNet2DModel.fromPretrained(join(mnist, "unet")));
    for (const i of [1, 2]) {
      const shard = `/tmp/sharded/unet/diffusion_pytorch_model-0000${i}-of-00002.safetensors`;
      assert.ok(requests.includes(`GET ${shard}`), requests.join(", "));
    }
    const scheduler = await loadScheduler(new URL("tmp/sharded/", base));
    assert.equal(scheduler.constructor, (await loadScheduler(mnist)).constructor);
  });
});
