// The real fixture files (written by PyTorch/diffusers): names and shapes as models.json lists them, known values,
// and the same byte layout when written back.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  loadSafetensors,
  openSafetensors,
  openSafetensorsSync,
  parseSafetensors,
  serializeSafetensors,
  type Tensor,
} from "../../src/index.js";
import type { DType } from "../../src/tensor/dtype.js";
import { fixturesDir, skipWithoutFixtures } from "../helpers.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-safetensors-fx-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function assertSameTensors(got: ReadonlyMap<string, Tensor>, want: ReadonlyMap<string, Tensor>): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [name, w] of want) {
    const g = got.get(name)!;
    assert.equal(g.dtype, w.dtype, `${name} dtype`);
    assert.deepEqual(g.shape, w.shape, `${name} shape`);
    assert.deepEqual(g.dataSync(), w.dataSync(), `${name} data`);
  }
}

describe("safetensors fixtures", { skip: skipWithoutFixtures() }, () => {
  const fx = () => fixturesDir()!;
  const models = () => JSON.parse(readFileSync(join(fx(), "models", "models.json"), "utf8"));

  it("tiny UNet: 304 float32 tensors, 1,106,212 parameters, format metadata", async () => {
    const file = await openSafetensors(
      join(fx(), "models", "tiny_unet", "diffusion_pytorch_model.safetensors"),
    );
    try {
      assert.deepEqual(file.metadata, { format: "pt" });
      assert.equal(
        file.entries.length,
        models().ldm_single_file.roundtrip_through_diffusers_single_file_utils.unet.keys,
      );
      assert.equal(
        file.entries.reduce((s, e) => s + e.numel, 0),
        1106212,
      );
      assert.deepEqual(file.entry("conv_in.weight").shape, [32, 4, 3, 3]);
      const w = file.get("conv_in.weight");
      assert.equal(w.dtype, "float32");
      assert.equal(w.size, 1152);
      assert.ok(Array.from(w.dataSync() as Float32Array).every(Number.isFinite));
    } finally {
      file.close();
    }
  });

  it("unet_io, vae_io and clip_io hold the names and shapes listed in models.json", async () => {
    const m = models();
    for (const [section, fileName] of [
      ["unet", "unet_io.safetensors"],
      ["vae", "vae_io.safetensors"],
      ["text_encoder", "clip_io.safetensors"],
    ] as const) {
      const { tensors } = await loadSafetensors(join(fx(), "models", fileName));
      const want = m[section].tensors as Record<string, number[]>;
      assert.deepEqual([...tensors.keys()].sort(), Object.keys(want).sort(), fileName);
      for (const [name, shape] of Object.entries(want))
        assert.deepEqual(tensors.get(name)!.shape, shape, name);
    }
    const ids = (await loadSafetensors(join(fx(), "models", "clip_io.safetensors"))).tensors.get(
      "input_ids",
    )!;
    assert.equal(ids.dtype, "int64" satisfies DType);
    const wantIds = (m.tokenizer.cases as { input_ids: number[] }[]).flatMap((c) => c.input_ids);
    assert.deepEqual(Array.from(ids.dataSync() as BigInt64Array, Number), wantIds);
  });

  it("rng/randn: every case of index.json, torch.randn(5) with seed 0 as PyTorch prints it", async () => {
    const index = JSON.parse(readFileSync(join(fx(), "rng", "index.json"), "utf8"));
    const file = openSafetensorsSync(join(fx(), "rng", "randn.safetensors"));
    try {
      const cases = index.cases as { name: string; shape: number[] }[];
      assert.deepEqual(file.keys().sort(), cases.map((c) => c.name).sort());
      for (const c of cases) assert.deepEqual(file.entry(c.name).shape, c.shape, c.name);
      // torch.manual_seed(0); torch.randn(5) -> [1.5410, -0.2934, -2.1788, 0.5684, -1.0845]
      const got = Array.from(
        file.get("seed0_shape1").dataSync() as Float32Array,
        (v) => Math.round(v * 1e4) / 1e4,
      );
      assert.deepEqual(got, [1.541, -0.2934, -2.1788, 0.5684, -1.0845]);
    } finally {
      file.close();
    }
  });

  it("re-serializing the diffusers-written single-dtype fixtures reproduces them byte for byte", () => {
    const files = [
      "models/tiny_unet/diffusion_pytorch_model.safetensors",
      "models/tiny_vae/diffusion_pytorch_model.safetensors",
      "models/tiny_text_encoder/model.safetensors",
      "models/tiny_sd_ldm.safetensors",
      "schedulers/trajectories.safetensors",
      "lora/lora_kohya.safetensors",
    ];
    for (const f of files) {
      const bytes = new Uint8Array(readFileSync(join(fx(), f)));
      const { tensors, metadata } = parseSafetensors(bytes, f);
      assert.ok(Buffer.from(serializeSafetensors(tensors, metadata)).equals(Buffer.from(bytes)), f);
    }
  });

  it("mixed-dtype fixtures (I64, F32, U8) round-trip with every tensor aligned to its element size", () => {
    for (const f of ["models/clip_io.safetensors", "pipeline/cfg.safetensors"]) {
      const original = parseSafetensors(new Uint8Array(readFileSync(join(fx(), f))), f);
      const bytes = serializeSafetensors(original.tensors, original.metadata);
      const again = parseSafetensors(bytes);
      assertSameTensors(again.tensors, original.tensors);
      const file = join(dir, "mixed.safetensors");
      writeFileSync(file, bytes);
      const reader = openSafetensorsSync(file);
      for (const e of reader.entries) {
        const size = { I64: 8, F32: 4, U8: 1 }[e.dtype as "I64" | "F32" | "U8"];
        assert.equal((reader.header.dataStart + e.dataOffsets[0]) % size, 0, `${f} ${e.name} aligned`);
      }
      reader.close();
    }
  });
});
