// LoRA through the pipeline: pipe.loadLora applies a fixture LoRA (UNet outputs equal diffusers' lora_io),
// unloadLoras restores the base outputs exactly, the LoRA's A1111 hash and scale reach the generation parameters,
// and a LoRA that does not fit surfaces as LoraMismatchError with nothing applied.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadSafetensors, noGrad, randn, serializeSafetensors, type Tensor } from "../../src/index.js";
import { formatParameters, type StableDiffusionPipeline } from "../../src/pipelines/index.js";
import { LoraMismatchError } from "../../src/pipelines/lora.js";
import { assertClose, fixturesDir, skipWithoutFixtures } from "../helpers.js";
import { tinyParts, tinyPipeline } from "./tiny-pipeline.js";

describe("StableDiffusionPipeline.loadLora", { skip: skipWithoutFixtures() }, () => {
  let pipe: StableDiffusionPipeline;
  let unetIo: Map<string, Tensor>;
  let loraIo: Map<string, Tensor>;
  let tmp: string;
  const loraFile = () => join(fixturesDir()!, "lora", "lora_peft.safetensors");
  const unetOut = () =>
    noGrad(() => pipe.unet.call(unetIo.get("sample")!, 500, unetIo.get("ehs1")!)).toFloat32Array();

  before(async () => {
    pipe = tinyPipeline(await tinyParts());
    unetIo = (await loadSafetensors(join(fixturesDir()!, "models", "unet_io.safetensors"))).tensors;
    loraIo = (await loadSafetensors(join(fixturesDir()!, "lora", "lora_io.safetensors"))).tensors;
    tmp = mkdtempSync(join(tmpdir(), "diffuse-sd-lora-"));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("applies, records name / hash / scale, and unloads exactly", async () => {
    const base = unetOut();
    assertClose(base, loraIo.get("out_base")!.toFloat32Array(), 1e-4, "base");
    const handle = await pipe.loadLora(loraFile(), { scale: 0.5 });
    assertClose(unetOut(), loraIo.get("out_scale_0p5")!.toFloat32Array(), 1e-4, "scale 0.5");
    handle.setScale(1);
    assertClose(unetOut(), loraIo.get("out_scale_1")!.toFloat32Array(), 1e-4, "scale 1");
    // A1111's LoRA hash: sha256 of the bytes after the safetensors header, first 12 hex digits
    const bytes = readFileSync(loraFile());
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const hash = createHash("sha256")
      .update(bytes.subarray(8 + headerLength))
      .digest("hex")
      .slice(0, 12);
    assert.deepEqual(pipe.activeLoras, [{ name: "lora_peft", hash, scale: 1 }]);
    const r = await pipe.generate({ prompt: "a cat", steps: 2, seed: 1 });
    assert.deepEqual(r.settings.loras, [{ name: "lora_peft", hash, scale: 1 }]);
    assert.match(formatParameters(r.settings), new RegExp(`Lora hashes: "lora_peft: ${hash}"`));
    pipe.unloadLoras();
    assert.deepEqual(Array.from(unetOut()), Array.from(base), "exact removal");
    assert.deepEqual(pipe.activeLoras, []);
    assert.equal((await pipe.generate({ prompt: "a cat", steps: 2, seed: 1 })).settings.loras, undefined);
  });

  it("a LoRA that does not fit the UNet is refused with LoraMismatchError; nothing changes", async () => {
    const base = unetOut();
    const bad = join(tmp, "bad.safetensors");
    const prefix = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
    writeFileSync(
      bad,
      serializeSafetensors({
        [`${prefix}.lora_A.weight`]: randn([4, 768]),
        [`${prefix}.lora_B.weight`]: randn([32, 4]),
      }),
    );
    await assert.rejects(pipe.loadLora(bad), (e: Error) => {
      assert.ok(e instanceof LoraMismatchError, `${e.name}: ${e.message}`);
      assert.match(e.message, /does not fit/);
      return true;
    });
    assert.deepEqual(pipe.activeLoras, []);
    assert.deepEqual(Array.from(unetOut()), Array.from(base));
  });
});
