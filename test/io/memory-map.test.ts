// Checkpoint tensors as views of a memory-mapped file (native addon's mapFile), and the module adopting them.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { nativeAddon } from "../../src/backend/native/index.js";
import { setFileMapper } from "../../src/io/node-files.js";
import { openSafetensors } from "../../src/io/safetensors-read.js";
import { serializeSafetensors } from "../../src/io/safetensors-write.js";
import { openSource } from "../../src/io/source.js";
import { loadPretrained } from "../../src/models/blocks/weights.js";
import { Linear } from "../../src/nn/linear.js";
import { tensor } from "../../src/tensor/create.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { randomTensor } from "../helpers.js";

/** The ArrayBuffer behind a CPU tensor's storage. */
const bufferOf = (t: Tensor): ArrayBufferLike => (t.storage.buffer as unknown as Uint8Array).buffer;
const mapFile = nativeAddon?.mapFile?.bind(nativeAddon);
const skip = mapFile ? false : "the native addon (with mapFile) is not built: files are read, not mapped";
const dir = mkdtempSync(join(tmpdir(), "diffuse-mmap-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const weights = {
  a: tensor([1, 2, 3, 4, 5, 6], [2, 3]),
  b: tensor([7.5, -1, 0.25], [3]).to("float16"),
  c: tensor([9, 10], [2]).to("int32"),
};
const path = join(dir, "w.safetensors");
writeFileSync(path, serializeSafetensors(weights));

/** Runs `fn` with files read into their own buffers (no mapper), then puts the addon's mapper back. */
async function unmapped<T>(fn: () => Promise<T>): Promise<T> {
  setFileMapper(null);
  try {
    return await fn();
  } finally {
    setFileMapper(mapFile ?? null);
  }
}

describe("memory-mapped checkpoints", { skip }, () => {
  it("tensors of one file are views of one mapping, with the values a plain read gives", async () => {
    const file = await openSafetensors(path);
    const [a, b, c] = [await file.getAsync("a"), file.get("b"), await file.getAsync("c")];
    file.close();
    const buffers = new Set([a, b, c].map(bufferOf));
    assert.equal(buffers.size, 1, "one buffer: the file's mapping");
    assert.equal(bufferOf(a).byteLength, readFileSync(path).length);
    const plain = await unmapped(async () => {
      const f = await openSafetensors(path);
      const out = [await f.getAsync("a"), await f.getAsync("b"), await f.getAsync("c")];
      f.close();
      return out;
    });
    assert.equal(new Set(plain.map(bufferOf)).size, 3, "unmapped: a buffer each");
    for (const [i, t] of [a, b, c].entries()) {
      assert.deepEqual(t.shape, plain[i]!.shape);
      assert.equal(t.dtype, plain[i]!.dtype);
      assert.deepEqual(Array.from(t.toFloat32Array()), Array.from(plain[i]!.toFloat32Array()));
    }
  });

  it("writing to a mapped tensor never reaches the file, nor another opening of it", async () => {
    const before = readFileSync(path);
    const file = await openSafetensors(path);
    const a = await file.getAsync("a");
    (a.storage.buffer as unknown as Float32Array)[a.offset] = 42;
    assert.equal((await file.getAsync("a")).toFloat32Array()[0], 42, "views of one opening share memory");
    file.close();
    assert.deepEqual(readFileSync(path), before);
    const again = await openSafetensors(path);
    assert.equal((await again.getAsync("a")).toFloat32Array()[0], 1);
    again.close();
  });

  it("a tensor whose bytes are not aligned for its element size is read into its own buffer", async () => {
    // a hand-made header of odd length (the writer pads to 8; other writers may not): F32 data at an offset of 1 mod 4
    let header = JSON.stringify({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] } });
    while (header.length % 4 !== 1) header += " ";
    const bytes = new Uint8Array(8 + header.length + 8);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(new TextEncoder().encode(header), 8);
    new DataView(bytes.buffer).setFloat32(8 + header.length, 1.5, true);
    new DataView(bytes.buffer).setFloat32(8 + header.length + 4, -2, true);
    const odd = join(dir, "odd.safetensors");
    writeFileSync(odd, bytes);
    const file = await openSafetensors(odd);
    const x = await file.getAsync("x");
    file.close();
    assert.deepEqual(Array.from(x.toFloat32Array()), [1.5, -2]);
    assert.equal(bufferOf(x).byteLength, 8, "a copy of its 8 bytes, not the mapping");
  });

  it("a source's view checks its range; an empty file has no mapping", async () => {
    const source = await openSource(path);
    assert.throws(() => source.view!(source.size - 2, 4), /end of file/);
    source.close();
    const empty = join(dir, "empty.bin");
    writeFileSync(empty, new Uint8Array(0));
    const e = await openSource(empty);
    assert.equal(e.view!(0, 0), null);
    e.close();
  });

  it("fromPretrained adopts the mapped tensors (no copy) and computes what a copied load computes", async () => {
    const folder = join(dir, "linear");
    const w = randomTensor([5, 7], 3).to("float16");
    const bias = randomTensor([5], 4).to("float16");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, "config.json"), JSON.stringify({ in: 7, out: 5 }));
    writeFileSync(
      join(folder, "diffusion_pytorch_model.safetensors"),
      serializeSafetensors({ weight: w, bias }),
    );
    const load = () =>
      loadPretrained(
        folder,
        {},
        {
          who: "Linear",
          config: (raw) => raw as { in: number; out: number },
          build: (c, layer) => new Linear(c.in, c.out, { ...layer }),
        },
      );
    const mapped = await load();
    const copied = await unmapped(load);
    assert.equal(mapped.weight.dtype, "float16");
    const buffer = bufferOf(mapped.weight);
    assert.equal(buffer, bufferOf(mapped.bias!), "weight and bias: views of one mapping");
    assert.notEqual(bufferOf(copied.weight), bufferOf(copied.bias!));
    const x = randomTensor([3, 7], 5);
    assert.deepEqual(
      Array.from(mapped.forward(x).toFloat32Array()),
      Array.from(copied.forward(x).toFloat32Array()),
    );
  });
});

describe("Module.loadStateDict adopt", () => {
  it("takes tensors of the parameter's dtype as they are, converts the others into the existing storage", () => {
    const layer = new Linear(3, 2, { dtype: "float16" });
    const weight = randomTensor([2, 3], 1).to("float16");
    const bias = randomTensor([2], 2); // float32: converted, copied
    const oldBias = layer.bias!;
    layer.loadStateDict({ weight, bias }, { adopt: true });
    assert.equal(layer.weight.storage, weight.storage, "same dtype: adopted");
    assert.equal(layer.bias, oldBias, "other dtype: copied into the parameter");
    assert.equal(layer.bias!.dtype, "float16");
    assert.ok(layer.weight.requiresGrad);
    const plain = new Linear(3, 2, { dtype: "float16" });
    plain.loadStateDict({ weight, bias });
    assert.notEqual(plain.weight.storage, weight.storage, "without adopt: copied");
  });
});
