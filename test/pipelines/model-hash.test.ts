// A1111's short hashes, computed by streaming: AutoV2 (sha256 of the file, 10 hex) of a single file or of a
// folder's UNet weights, and the LoRA hash (sha256 of the safetensors data section, 12 hex); checked against
// node:crypto over the whole file read at once, on files larger than one read chunk.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { serializeSafetensors, tensor } from "../../src/index.js";
import {
  autoV2Hash,
  loraHash,
  modelHash,
  modelHashFile,
  PipelineError,
  safetensorsDataSha256,
} from "../../src/pipelines/index.js";
import { testRng } from "../helpers.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("model and LoRA hashes", () => {
  let dir: string;
  let big: Uint8Array;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "diffuse-hash-"));
    const rng = testRng(3);
    big = new Uint8Array(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = Math.floor(rng() * 256);
    writeFileSync(join(dir, "model.safetensors"), big);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("AutoV2 = first 10 hex digits of the file's sha256 (streamed over several chunks)", async () => {
    const file = join(dir, "model.safetensors");
    assert.equal(await autoV2Hash(file), sha(big).slice(0, 10));
    assert.equal(await modelHash(file), sha(big).slice(0, 10));
  });

  it("a diffusers folder is identified by its UNet weights", async () => {
    const folder = join(dir, "pipe");
    mkdirSync(join(folder, "unet"), { recursive: true });
    const weights = Uint8Array.from([1, 2, 3, 4, 5]);
    writeFileSync(join(folder, "unet", "diffusion_pytorch_model.fp16.safetensors"), weights);
    assert.equal(
      await modelHashFile(folder),
      join(folder, "unet", "diffusion_pytorch_model.fp16.safetensors"),
    );
    assert.equal(await modelHash(folder), sha(weights).slice(0, 10));
    await assert.rejects(modelHash(join(dir, "missing")), PipelineError);
    mkdirSync(join(dir, "empty"));
    await assert.rejects(modelHash(join(dir, "empty")), /no unet\/diffusion_pytorch_model\*\.safetensors/);
  });

  it("LoRA hash = sha256 of the bytes after the safetensors header, 12 hex digits", async () => {
    const bytes = serializeSafetensors(
      { w: tensor([1, 2, 3, 4], [2, 2]) },
      { note: "metadata is not hashed" },
    );
    const file = join(dir, "lora.safetensors");
    writeFileSync(file, bytes);
    const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
    const data = bytes.subarray(8 + n);
    assert.equal(data.length, 16);
    assert.equal(await safetensorsDataSha256(file), sha(data));
    assert.equal(await loraHash(file), sha(data).slice(0, 12));
  });
});
