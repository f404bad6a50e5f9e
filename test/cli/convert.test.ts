// `diffuse convert` on the shipped emoji model: folder -> one LDM-named .safetensors -> folder gives back the same
// weights and configs; the single file generates the same pixels as the folder; a file without the package's
// metadata loads with configs inferred from its shapes (and says what it assumed); wrong uses are refused.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readImage } from "../../src/io/image.js";
import { loadSafetensors, openSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import { loadPipelineComponents } from "../../src/pipelines/load.js";
import { diffuse, repoRoot } from "./run-cli.js";

const emoji = join(repoRoot, "models", "emoji");

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-convert-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("diffuse convert", () => {
  it("folder -> single file -> folder keeps every weight and config; the file generates the folder's pixels", async () => {
    const file = join(dir, "emoji.safetensors");
    let r = diffuse("convert", emoji, "--out", file, "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).tensors, 506);
    const f = await openSafetensors(file);
    const names = f.entries.map((e) => e.name);
    f.close();
    assert.ok(
      names.includes("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"),
    );
    assert.ok(names.includes("first_stage_model.decoder.mid.attn_1.q.weight"));
    assert.ok(names.includes("cond_stage_model.transformer.text_model.final_layer_norm.weight"));

    const back = join(dir, "back");
    r = diffuse("convert", file, "--out", back);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /configs: unet file metadata, vae file metadata, textEncoder file metadata, scheduler file metadata/,
    );
    for (const [part, weights] of [
      ["unet", "diffusion_pytorch_model.safetensors"],
      ["vae", "diffusion_pytorch_model.safetensors"],
      ["text_encoder", "model.safetensors"],
    ]) {
      const a = (await loadSafetensors(join(emoji, part!, weights!))).tensors;
      const b = (await loadSafetensors(join(back, part!, weights!))).tensors;
      assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort(), part);
      for (const [k, t] of a) {
        assert.equal(b.get(k)!.dtype, t.dtype, k);
        assert.deepEqual(b.get(k)!.toFloat32Array(), t.toFloat32Array(), `${part} ${k}`);
      }
      const cfg = (d: string) => JSON.parse(readFileSync(join(d, part!, "config.json"), "utf8"));
      for (const [k, v] of Object.entries(cfg(emoji)))
        if (k !== "_diffusers_version") assert.deepEqual(cfg(back)[k], v, `${part} ${k}`);
    }
    assert.equal(
      readFileSync(join(back, "tokenizer", "vocab.json"), "utf8"),
      readFileSync(join(emoji, "tokenizer", "vocab.json"), "utf8"),
    );

    const gen = (model: string, out: string) =>
      diffuse("generate", "red heart", "--model", model, "--steps", "6", "--seed", "5", "-o", out);
    r = gen(emoji, join(dir, "folder.png"));
    assert.equal(r.code, 0, r.stderr);
    r = gen(file, join(dir, "file.png"));
    assert.equal(r.code, 0, r.stderr);
    // the PNG text differs (model name and hash): compare the decoded pixels
    assert.deepEqual(readImage(join(dir, "file.png")).data, readImage(join(dir, "folder.png")).data);
  });

  it("a file from another tool (no configs in its metadata) loads with configs inferred from its shapes", async () => {
    const file = join(dir, "emoji.safetensors");
    const plain = join(dir, "plain.safetensors");
    const { tensors } = await loadSafetensors(file);
    await saveSafetensors(plain, tensors, { format: "pt" });
    await assert.rejects(loadPipelineComponents(plain), /carries no tokenizer; pass a tokenizer folder/);
    const c = await loadPipelineComponents(plain, { tokenizer: join(emoji, "tokenizer") });
    assert.equal(c.configSources.unet, "inferred from shapes");
    assert.deepEqual(c.unet.config.block_out_channels, [64, 128]);
    assert.equal(c.vae.config.latent_channels, 4);
    assert.equal(c.textEncoder!.config.vocab_size, 2014);
    assert.equal(c.textEncoder!.config.eos_token_id, 2013);
    assert.ok(
      c.assumed.some((a) => /UNet: 32 GroupNorm groups/.test(a)),
      c.assumed.join("; "),
    );
    const r = diffuse("convert", plain, "--out", join(dir, "plain-folder"), "--tokenizer", emoji);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configs: unet inferred from shapes/);
    assert.match(r.stdout, /assumed \(not in the file\): .*VAE: scaling_factor 0\.18215/);
  });

  it("refuses what does not apply", () => {
    let r = diffuse("convert", emoji, "--out", join(dir, "x.safetensors"), "--tokenizer", emoji);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--tokenizer applies to converting a single file/);
    r = diffuse("convert", join(dir, "emoji.safetensors"), "--out", join(dir, "y.safetensors"));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /a single file converts to a pipeline folder, not to another file/);
    r = diffuse("convert", join(emoji, "model_index.json"), "--out", join(dir, "z"));
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /expected a pipeline folder \(model_index\.json\) or a single-file \.safetensors checkpoint/,
    );
    r = diffuse("convert", emoji, "--out", join(dir, "w"), "--dtype", "int8");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--dtype must be one of float32, float16, bfloat16, got "int8"/);
  });
});
