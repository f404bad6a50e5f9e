// Loading transformers text-encoder folders: the fixture folder, fp16 / sharded / position_ids / full-CLIPConfig
// variants written from it, and the errors for missing files, bad configs and mismatched keys.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { arange, F, loadSafetensors, nn, noGrad, saveSafetensors, type Tensor } from "../../../src/index.js";
import { CLIPLoadError, CLIPTextModel, CLIPTextModelWithProjection } from "../../../src/models/clip/index.js";
import { CheckpointError, findWeightFiles } from "../../../src/models/index.js";
import { assertClose, fixturesDir, randomTensor, skipWithoutFixtures } from "../../helpers.js";

describe("CLIP text encoder fromPretrained", { skip: skipWithoutFixtures() }, () => {
  let tmp: string;
  let srcDir: string;
  let weights: Map<string, Tensor>;
  let config: Record<string, unknown>;
  let ids: Tensor;
  let want: { last: Float32Array; pooled: Float32Array };
  let n = 0;

  /** A fresh folder with `config.json` (optionally changed) and the given safetensors files. */
  async function folder(files: Record<string, Map<string, Tensor>>, cfg = config): Promise<string> {
    const dir = join(tmp, `case${n++}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    for (const [name, t] of Object.entries(files))
      await saveSafetensors(join(dir, name), t, { format: "pt" });
    return dir;
  }

  const half = (m: Map<string, Tensor>) => new Map([...m].map(([k, t]) => [k, t.to("float16")]));

  function checkOutputs(m: CLIPTextModel | CLIPTextModelWithProjection, tol: number): void {
    const out = noGrad(() => m.call(ids));
    assertClose(out.lastHiddenState.toFloat32Array(), want.last, tol, "last_hidden_state");
    assertClose(out.pooledOutput.toFloat32Array(), want.pooled, tol, "pooler_output");
  }

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "diffuse-clip-load-"));
    const models = join(fixturesDir()!, "models");
    srcDir = join(models, "tiny_text_encoder");
    weights = (await loadSafetensors(join(srcDir, "model.safetensors"))).tensors;
    config = JSON.parse(readFileSync(join(srcDir, "config.json"), "utf8"));
    const io = (await loadSafetensors(join(models, "clip_io.safetensors"))).tensors;
    ids = io.get("input_ids")!;
    want = {
      last: io.get("last_hidden_state")!.toFloat32Array(),
      pooled: io.get("pooler_output")!.toFloat32Array(),
    };
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("loads the fixture folder in float32, in eval mode, with the config of config.json", async () => {
    const m = await CLIPTextModel.fromPretrained(srcDir);
    assert.equal(m.training, false);
    assert.equal(m.config.hidden_act, "quick_gelu");
    assert.equal(m.config.eos_token_id, 673);
    assert.ok(m.parameters().every((p) => p.dtype === "float32"));
    checkOutputs(m, 1e-4);
  });

  it("falls back to model.fp16.safetensors, keeps float16 weights, and converts on request", async () => {
    const dir = await folder({ "model.fp16.safetensors": half(weights) });
    const m16 = await CLIPTextModel.fromPretrained(dir);
    assert.ok(m16.parameters().every((p) => p.dtype === "float16"));
    checkOutputs(m16, 1e-2);
    const m32 = await CLIPTextModel.fromPretrained(dir, { dtype: "float32" });
    assert.ok(m32.parameters().every((p) => p.dtype === "float32"));
    assertClose(
      m32.text_model.final_layer_norm.weight!.toFloat32Array(),
      m16.text_model.final_layer_norm.weight!.toFloat32Array(),
      0,
    );
    const viaVariant = await CLIPTextModel.fromPretrained(dir, { variant: "fp16" });
    assert.equal(viaVariant.text_model.embeddings.token_embedding.weight.dtype, "float16");
  });

  it("prefers model.safetensors over the fp16 file; variant picks the other", async () => {
    const dir = await folder({ "model.safetensors": weights, "model.fp16.safetensors": half(weights) });
    const find = (variant?: string) =>
      findWeightFiles(dir, { who: "CLIPTextModel", variant, naming: "transformers" });
    assert.deepEqual(await find(), [join(dir, "model.safetensors")]);
    assert.deepEqual(await find("fp16"), [join(dir, "model.fp16.safetensors")]);
    const m = await CLIPTextModel.fromPretrained(dir, { dtype: "float16" });
    assert.equal(m.text_model.encoder.layers[1]!.mlp.fc2.weight.dtype, "float16");
  });

  it("ignores a saved text_model.embeddings.position_ids buffer (int64 [1, 77])", async () => {
    const withIds = new Map(weights);
    withIds.set("text_model.embeddings.position_ids", arange(0, 77, 1, { dtype: "int64" }).reshape(1, 77));
    const dir = await folder({ "model.safetensors": withIds });
    checkOutputs(await CLIPTextModel.fromPretrained(dir), 1e-4);
    // loadStateDict ignores it too
    const m = new CLIPTextModel(config, { skipInit: true });
    m.loadStateDict(withIds);
    checkOutputs(m, 1e-4);
  });

  it("reads sharded checkpoints through model.safetensors.index.json", async () => {
    const entries = [...weights];
    const a = new Map(entries.slice(0, 10));
    const b = new Map(entries.slice(10));
    const dir = await folder({
      "model-00001-of-00002.safetensors": a,
      "model-00002-of-00002.safetensors": b,
    });
    const weightMap = Object.fromEntries([
      ...[...a.keys()].map((k) => [k, "model-00001-of-00002.safetensors"]),
      ...[...b.keys()].map((k) => [k, "model-00002-of-00002.safetensors"]),
    ]);
    writeFileSync(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    checkOutputs(await CLIPTextModel.fromPretrained(dir), 1e-4);
  });

  it("loads the text tower (and projection) out of a whole CLIPModel folder", async () => {
    const proj = randomTensor([32, 32], 9);
    const all = new Map(weights);
    all.set("text_projection.weight", proj);
    all.set("visual_projection.weight", randomTensor([32, 16], 10));
    all.set("vision_model.post_layernorm.weight", randomTensor([16], 11));
    all.set("logit_scale", randomTensor([], 12));
    const full = { architectures: ["CLIPModel"], projection_dim: 32, text_config: config, vision_config: {} };
    const dir = await folder({ "model.safetensors": all }, full);
    checkOutputs(await CLIPTextModel.fromPretrained(dir), 1e-4);
    const wp = await CLIPTextModelWithProjection.fromPretrained(dir);
    assert.deepEqual(wp.text_projection.weight.toFloat32Array(), proj.toFloat32Array());
    checkOutputs(wp, 1e-4);
  });

  it("loads CLIPTextModelWithProjection from a transformers folder with text_projection", async () => {
    const all = new Map(weights);
    const proj = randomTensor([32, 32], 4);
    all.set("text_projection.weight", proj);
    const dir = await folder(
      { "model.safetensors": all },
      { ...config, architectures: ["CLIPTextModelWithProjection"] },
    );
    const m = await CLIPTextModelWithProjection.fromPretrained(dir);
    const out = noGrad(() => m.call(ids));
    const expected = noGrad(() => F.linear(out.pooledOutput, proj));
    assert.deepEqual(out.textEmbeds.toFloat32Array(), expected.toFloat32Array());
    // but a plain CLIPTextModel refuses the unexpected key (strict), unless strict is off
    await assert.rejects(CLIPTextModel.fromPretrained(dir), /1 unexpected[\s\S]*text_projection\.weight/);
    checkOutputs(await CLIPTextModel.fromPretrained(dir, { strict: false }), 1e-4);
  });

  it("reports missing keys and shape mismatches with the file path", async () => {
    const partial = new Map(weights);
    partial.delete("text_model.encoder.layers.1.mlp.fc1.bias");
    const dir = await folder({ "model.safetensors": partial });
    await assert.rejects(CLIPTextModel.fromPretrained(dir), (e: Error) => {
      assert.ok(e instanceof nn.StateDictError);
      assert.match(
        e.message,
        new RegExp(
          `CLIPTextModel \\(${join(dir, "model.safetensors").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\)`,
        ),
      );
      assert.match(e.message, /1 missing[\s\S]*text_model\.encoder\.layers\.1\.mlp\.fc1\.bias/);
      return true;
    });
    const m = await CLIPTextModel.fromPretrained(dir, { strict: false });
    assert.deepEqual(
      [...m.text_model.encoder.layers[1]!.mlp.fc1.bias!.toFloat32Array()],
      new Array(64).fill(0),
    );
    const wrong = await folder({ "model.safetensors": weights }, { ...config, intermediate_size: 48 });
    await assert.rejects(
      CLIPTextModel.fromPretrained(wrong),
      /different shape[\s\S]*layers\.0\.mlp\.fc1\.weight: expected \[48, 32\], found \[64, 32\]/,
    );
    const moreLayers = await folder({ "model.safetensors": weights }, { ...config, num_hidden_layers: 3 });
    await assert.rejects(CLIPTextModel.fromPretrained(moreLayers), /16 missing[\s\S]*layers\.2\./);
  });

  it("says which file is missing or invalid", async () => {
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    await assert.rejects(CLIPTextModel.fromPretrained(empty), (e: Error) => {
      return e instanceof CLIPLoadError && /config\.json: config\.json not found/.test(e.message);
    });
    copyFileSync(join(srcDir, "config.json"), join(empty, "config.json"));
    writeFileSync(join(empty, "pytorch_model.bin"), "");
    await assert.rejects(
      CLIPTextModel.fromPretrained(empty),
      /no weights in .*; looked for model\.safetensors, [\s\S]*pytorch_model\.bin[\s\S]*not read/,
    );
    await assert.rejects(CLIPTextModel.fromPretrained(join(tmp, "nowhere")), CLIPLoadError);
    // one error type for every model's loading problems
    await assert.rejects(CLIPTextModel.fromPretrained(join(tmp, "nowhere")), CheckpointError);
    const bad = await folder({ "model.safetensors": weights }, { ...config, hidden_act: "swish" });
    await assert.rejects(
      CLIPTextModel.fromPretrained(bad),
      (e: Error) =>
        e instanceof CLIPLoadError && e.message.includes(join(bad, "config.json")) && /swish/.test(e.message),
    );
    const broken = join(tmp, "broken");
    mkdirSync(broken);
    writeFileSync(join(broken, "config.json"), "{ not json");
    await assert.rejects(CLIPTextModel.fromPretrained(broken), /not a valid JSON object/);
  });
});
