// fromPretrained on diffusers folders: fp16 variants, the dtype policy, sharded checkpoints and strict key checking.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadSafetensors, nn, noGrad, saveSafetensors, type Tensor } from "../../../src/index.js";
import { CheckpointError, UNet2DConditionModel } from "../../../src/models/index.js";
import { assertClose, fixturesDir, skipWithoutFixtures } from "../../helpers.js";

describe("UNet2DConditionModel.fromPretrained", { skip: skipWithoutFixtures() }, () => {
  let src: string;
  let tmp: string;
  let weights: Map<string, Tensor>;
  let io: Map<string, Tensor>;

  /** A model folder with the fixture's config.json and the given weight files. */
  const folder = async (name: string, files: Record<string, Map<string, Tensor>>): Promise<string> => {
    const dir = join(tmp, name);
    mkdirSync(dir);
    copyFileSync(join(src, "config.json"), join(dir, "config.json"));
    for (const [file, tensors] of Object.entries(files)) await saveSafetensors(join(dir, file), tensors);
    return dir;
  };
  const runA = (unet: UNet2DConditionModel): Float32Array =>
    noGrad(() => unet.call(io.get("sample")!, 500, io.get("ehs1")!).toFloat32Array());

  before(async () => {
    const models = join(fixturesDir()!, "models");
    src = join(models, "tiny_unet");
    tmp = mkdtempSync(join(tmpdir(), "diffuse-unet-"));
    weights = (await loadSafetensors(join(src, "diffusion_pytorch_model.safetensors"))).tensors;
    io = (await loadSafetensors(join(models, "unet_io.safetensors"))).tensors;
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("reads a .fp16.safetensors file when it is the only one and keeps it half unless dtype is given", async () => {
    const half = new Map([...weights].map(([k, t]) => [k, t.half()]));
    const dir = await folder("fp16", { "diffusion_pytorch_model.fp16.safetensors": half });
    const want = io.get("out_a")!.toFloat32Array();

    const keep = await UNet2DConditionModel.fromPretrained(dir);
    assert.ok(keep.parameters().every((p) => p.dtype === "float16"));
    const f32 = await UNet2DConditionModel.fromPretrained(dir, { dtype: "float32" });
    assert.ok(f32.parameters().every((p) => p.dtype === "float32"));
    // the float32 fixture folder loads as float32
    const single = await UNet2DConditionModel.fromPretrained(src);
    assert.ok(single.parameters().every((p) => p.dtype === "float32"));
    const explicit = await UNet2DConditionModel.fromPretrained(dir, { variant: "fp16", dtype: "bfloat16" });
    assert.ok(explicit.parameters().every((p) => p.dtype === "bfloat16"));

    // the same half-rounded weights either way: identical outputs, close to the float32 reference
    const a = runA(f32);
    assert.deepEqual(runA(keep), a);
    assertClose(a, want, 5e-3, "fp16 weights vs the float32 reference");
    assertClose(runA(explicit), want, 3e-2, "bf16 weights vs the float32 reference");
  });

  it("reads sharded checkpoints through the .index.json", async () => {
    const keys = [...weights.keys()];
    const shards = [new Map<string, Tensor>(), new Map<string, Tensor>()];
    const weightMap: Record<string, string> = {};
    keys.forEach((k, i) => {
      const s = i % 2;
      shards[s]!.set(k, weights.get(k)!);
      weightMap[k] = `diffusion_pytorch_model-0000${s + 1}-of-00002.safetensors`;
    });
    const dir = await folder("sharded", {
      "diffusion_pytorch_model-00001-of-00002.safetensors": shards[0]!,
      "diffusion_pytorch_model-00002-of-00002.safetensors": shards[1]!,
    });
    writeFileSync(
      join(dir, "diffusion_pytorch_model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const sharded = await UNet2DConditionModel.fromPretrained(dir);
    const single = await UNet2DConditionModel.fromPretrained(src);
    assert.deepEqual(runA(sharded), runA(single));
  });

  it("reports every missing, unexpected and mismatched key in one error", async () => {
    const broken = new Map(weights);
    broken.delete("conv_in.bias");
    broken.delete("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight");
    broken.set("not_a_layer.weight", weights.get("conv_in.bias")!);
    broken.set("conv_out.bias", weights.get("conv_in.bias")!); // [32] where [4] belongs
    const dir = await folder("broken", { "diffusion_pytorch_model.safetensors": broken });
    await assert.rejects(UNet2DConditionModel.fromPretrained(dir), (err: unknown) => {
      assert.ok(err instanceof nn.StateDictError);
      assert.deepEqual([...err.missingKeys].sort(), [
        "conv_in.bias",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
      ]);
      assert.deepEqual(err.unexpectedKeys, ["not_a_layer.weight"]);
      assert.deepEqual(err.mismatchedKeys, [{ key: "conv_out.bias", expected: [4], found: [32] }]);
      assert.match(err.message, /conv_out\.bias: expected \[4\], found \[32\]/);
      return true;
    });
    // non-strict loads ignore missing/unexpected keys, never shape mismatches
    broken.set("conv_out.bias", weights.get("conv_out.bias")!);
    const lenient = await folder("lenient", { "diffusion_pytorch_model.safetensors": broken });
    const unet = await UNet2DConditionModel.fromPretrained(lenient, { strict: false });
    assert.deepEqual(unet.conv_out.bias!.toFloat32Array(), weights.get("conv_out.bias")!.toFloat32Array());
  });

  it("says what is missing from a folder", async () => {
    await assert.rejects(UNet2DConditionModel.fromPretrained(join(tmp, "nowhere")), (err: unknown) => {
      assert.ok(err instanceof CheckpointError);
      assert.match(err.message, /config\.json not found/);
      return true;
    });
    const dir = join(tmp, "config-only");
    mkdirSync(dir);
    copyFileSync(join(src, "config.json"), join(dir, "config.json"));
    await assert.rejects(
      UNet2DConditionModel.fromPretrained(dir),
      /no weights in .*diffusion_pytorch_model\.safetensors/,
    );
    await assert.rejects(
      UNet2DConditionModel.fromPretrained(src, { variant: "bf16" }),
      /looked for diffusion_pytorch_model\.bf16\.safetensors/,
    );
  });
});
