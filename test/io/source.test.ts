import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { IoError, SafetensorsError } from "../../src/io/errors.js";
import { modelFolder } from "../../src/io/folder.js";
import { openSafetensors, openSafetensorsSync } from "../../src/io/safetensors-read.js";
import { serializeSafetensors } from "../../src/io/safetensors-write.js";
import {
  blobSource,
  bytesSource,
  type FileInput,
  getFileSystem,
  openSource,
  readText,
  setFileSystem,
} from "../../src/io/source.js";
import { loadClassConditionalPipeline } from "../../src/pipelines/class-conditional.js";
import { tensor } from "../../src/tensor/create.js";

const bytes = serializeSafetensors(
  {
    a: tensor([1, 2, 3, 4, 5, 6], [2, 3]),
    b: tensor([7.5, -1], [2]).to("float16"),
    c: tensor([9, 10], [2]).to("int32"),
  },
  { note: "hi" },
);
const expected: Record<string, number[]> = { a: [1, 2, 3, 4, 5, 6], b: [7.5, -1], c: [9, 10] };

/** A Blob that records every byte range read from it (to show reads go tensor by tensor). */
class RecordingBlob extends Blob {
  readonly ranges: [number, number][];
  constructor(parts: Uint8Array[], ranges: [number, number][] = []) {
    super(parts);
    this.ranges = ranges;
  }
  override slice(start?: number, end?: number): Blob {
    this.ranges.push([start ?? 0, end ?? this.size]);
    return super.slice(start, end);
  }
}

let dir: string;
let server: Server;
let base: URL;
const requests: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-source-"));
  writeFileSync(join(dir, "t.safetensors"), bytes);
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    try {
      const body = readFileSync(join(dir, decodeURIComponent(new URL(req.url!, "http://x").pathname)));
      res.writeHead(200, { "content-length": body.length });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
});

after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function readAll(input: FileInput): Promise<Record<string, number[]>> {
  const file = await openSafetensors(input);
  try {
    assert.deepEqual(file.metadata, { note: "hi" });
    const out: Record<string, number[]> = {};
    for (const name of file.keys())
      out[name] = Array.from((await file.getAsync(name)).to("float32").dataSync(), Number);
    return out;
  } finally {
    file.close();
  }
}

describe("byte sources: the safetensors reader reads every kind of input", () => {
  it("a file path (Node's file system), async and sync", async () => {
    assert.deepEqual(await readAll(join(dir, "t.safetensors")), expected);
    const file = openSafetensorsSync(join(dir, "t.safetensors"));
    assert.deepEqual([...file.get("a").dataSync()], expected.a);
    file.close();
  });

  it("an ArrayBuffer and a Uint8Array view into a larger buffer", async () => {
    assert.deepEqual(await readAll(bytes.slice().buffer), expected);
    const padded = new Uint8Array(bytes.length + 16);
    padded.set(bytes, 16);
    assert.deepEqual(await readAll(padded.subarray(16)), expected);
    assert.deepEqual([...openSafetensorsSync(padded.subarray(16)).get("c").dataSync()], expected.c);
  });

  it("a Blob is read slice by slice: the header, then one slice per tensor, never the whole blob", async () => {
    const blob = new RecordingBlob([bytes]);
    assert.deepEqual(await readAll(blob), expected);
    const file = await openSafetensors(blob);
    const ranges = blob.ranges.filter(([a, b]) => b - a === bytes.length);
    assert.deepEqual(ranges, [], "no read covers the whole file");
    const starts = file.entries.map((e) => file.header.dataStart + e.dataOffsets[0]);
    const tensorReads = blob.ranges.filter(([a]) => a >= file.header.dataStart).map(([a]) => a);
    assert.deepEqual(
      tensorReads.sort((x, y) => x - y),
      [...starts].sort((x, y) => x - y),
    );
    assert.throws(() => file.get("a"), /read asynchronously; use getAsync/);
    file.close();
  });

  it("a URL is fetched (HTTP on 127.0.0.1), and an HTTP 404 names the URL", async () => {
    assert.deepEqual(await readAll(new URL("t.safetensors", base)), expected);
    await assert.rejects(openSafetensors(new URL("none.safetensors", base)), (err: unknown) => {
      assert.ok(err instanceof SafetensorsError);
      assert.match(err.message, /none\.safetensors: HTTP 404/);
      return true;
    });
  });

  it("without a file system a string is a URL (as in a browser)", async () => {
    const fs = getFileSystem();
    setFileSystem(null);
    try {
      assert.deepEqual(await readAll(new URL("t.safetensors", base).href), expected);
    } finally {
      setFileSystem(fs);
    }
  });

  it("reads past the end and bad ranges are errors naming the source", async () => {
    const source = bytesSource(new Uint8Array([1, 2, 3]), "three");
    assert.deepEqual([...(await source.read(1, 2))], [2, 3]);
    await assert.rejects(source.read(2, 2), /three: unexpected end of data: bytes 2\.\.4 of 3/);
    await assert.rejects(blobSource(new Blob([new Uint8Array(3)]), "b").read(-1, 1), /b: bad byte range/);
    await assert.rejects(openSource(join(dir, "missing.bin")), (err: unknown) => {
      assert.ok(err instanceof IoError && err.notFound);
      return true;
    });
    assert.equal(await readText(new TextEncoder().encode("héllo")), "héllo");
  });
});

describe("model folders: a path, a base URL or a map of files", () => {
  const mnist = join(import.meta.dirname, "..", "..", "models", "mnist");
  const names = [
    "model_index.json",
    "scheduler/scheduler_config.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
  ];

  it("loads the shipped MNIST pipeline from a map of Blobs and ArrayBuffers: the same weights as from the folder", async () => {
    const files = new Map<string, Blob | ArrayBuffer>(
      names.map((n, i) => {
        const data = readFileSync(join(mnist, n));
        return [
          n,
          i % 2 ? new Blob([data]) : data.buffer.slice(data.byteOffset, data.byteOffset + data.length),
        ];
      }),
    );
    const fromMap = await loadClassConditionalPipeline(files);
    const fromPath = await loadClassConditionalPipeline(mnist);
    assert.deepEqual(fromMap.guidanceInterval, fromPath.guidanceInterval);
    assert.equal(fromMap.scheduler.constructor, fromPath.scheduler.constructor);
    const a = fromMap.unet.stateDict();
    const b = fromPath.unet.stateDict();
    assert.deepEqual([...a.keys()], [...b.keys()]);
    for (const [k, t] of a) assert.deepEqual(t.dataSync(), b.get(k)!.dataSync(), k);
  });

  it("a URL folder fetches each file; a missing file is reported by name", async () => {
    const folder = modelFolder(base);
    assert.equal(await folder.readText("nope.json"), null);
    assert.equal(await folder.exists("t.safetensors"), true);
    assert.equal(await folder.exists("nope.json"), false);
    assert.equal(await folder.list(), undefined);
    requests.length = 0;
    await assert.rejects(loadClassConditionalPipeline(base), /unet\/config\.json: config\.json not found/);
    assert.ok(requests.includes("HEAD /model_index.json"), requests.join(", "));
    const map = modelFolder({ "./unet/config.json": new Uint8Array([123, 125]) });
    assert.deepEqual(await map.list(), ["unet"]);
    assert.deepEqual(await map.sub("unet").list(), ["config.json"]);
    assert.equal(await map.sub("unet").readText("config.json"), "{}");
    await assert.rejects(map.sub("vae").list(), /vae not among the given files/);
  });
});
