// AutoencoderKL.fromPretrained on older layouts (1x1-conv attention kernels, deprecated attention names) and
// config validation.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadSafetensors, noGrad, saveSafetensors, type Tensor } from "../../../src/index.js";
import { AutoencoderKL, AutoencoderKLConfig, ModelConfigError } from "../../../src/models/index.js";
import { assertClose, fixturesDir, skipWithoutFixtures } from "../../helpers.js";

describe("AutoencoderKL.fromPretrained", { skip: skipWithoutFixtures() }, () => {
  let src: string;
  let tmp: string;
  let weights: Map<string, Tensor>;
  let io: Map<string, Tensor>;

  before(async () => {
    const models = join(fixturesDir()!, "models");
    src = join(models, "tiny_vae");
    tmp = mkdtempSync(join(tmpdir(), "diffuse-vae-"));
    weights = (await loadSafetensors(join(src, "diffusion_pytorch_model.safetensors"))).tensors;
    io = (await loadSafetensors(join(models, "vae_io.safetensors"))).tensors;
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("accepts [C, C, 1, 1] attention kernels and the old query/key/value/proj_attn names", async () => {
    const old = new Map<string, Tensor>();
    const names: Record<string, string> = {
      to_q: "query",
      to_k: "key",
      to_v: "value",
      "to_out.0": "proj_attn",
    };
    let converted = 0;
    for (const [k, t] of weights) {
      const m = /^(.*\.attentions\.0\.)(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/.exec(k);
      if (!m) {
        old.set(k, t);
        continue;
      }
      converted++;
      old.set(`${m[1]}${names[m[2]!]}.${m[3]}`, m[3] === "weight" ? t.reshape([...t.shape, 1, 1]) : t);
    }
    assert.equal(converted, 16, "encoder and decoder mid-block attention: 4 projections x weight/bias x 2");
    const dir = join(tmp, "ldm-layout");
    mkdirSync(dir);
    copyFileSync(join(src, "config.json"), join(dir, "config.json"));
    await saveSafetensors(join(dir, "diffusion_pytorch_model.safetensors"), old);
    const vae = await AutoencoderKL.fromPretrained(dir);
    const q = vae.encoder.mid_block.attentions.at(0).to_q.weight;
    assert.deepEqual(q.shape, [64, 64]);
    const decoded = noGrad(() => vae.decode(io.get("latent_mean")!));
    assertClose(decoded.toFloat32Array(), io.get("decoded_mean")!.toFloat32Array(), 1e-4, "decoded_mean");
  });

  it("keeps a float16 checkpoint float16 unless dtype is given", async () => {
    const dir = join(tmp, "fp16");
    mkdirSync(dir);
    copyFileSync(join(src, "config.json"), join(dir, "config.json"));
    const half = new Map([...weights].map(([k, t]) => [k, t.half()]));
    await saveSafetensors(join(dir, "diffusion_pytorch_model.fp16.safetensors"), half);
    const keep = await AutoencoderKL.fromPretrained(dir);
    assert.ok(keep.parameters().every((p) => p.dtype === "float16"));
    const f32 = await AutoencoderKL.fromPretrained(dir, { dtype: "float32" });
    assert.ok(f32.parameters().every((p) => p.dtype === "float32"));
    const want = io.get("decoded_mean")!.toFloat32Array();
    const a = noGrad(() => keep.decode(io.get("latent_mean")!).toFloat32Array());
    assert.deepEqual(
      a,
      noGrad(() => f32.decode(io.get("latent_mean")!).toFloat32Array()),
    );
    assertClose(a, want, 1e-2, "fp16 weights vs the float32 reference");
  });

  it("rejects a bad config with a clear message", () => {
    const bad = (raw: Record<string, unknown>, message: RegExp) =>
      assert.throws(
        () => new AutoencoderKL(raw, { skipInit: true }),
        (err: unknown) => err instanceof ModelConfigError && message.test(err.message),
      );
    const cfg = {
      block_out_channels: [32, 64],
      down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D"],
      up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D"],
    };
    bad(
      { ...cfg, down_block_types: ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"] },
      /down_block_types\[1\] must be "DownEncoderBlock2D", got "AttnDownEncoderBlock2D"/,
    );
    bad(
      { ...cfg, block_out_channels: [32, 48] },
      /block_out_channels\[1\] = 48 is not divisible by norm_num_groups = 32/,
    );
    bad({ ...cfg, up_block_types: ["UpDecoderBlock2D"] }, /up_block_types must be a list of 2/);
    // without mid-block attention there are no attention weights
    const noAttn = new AutoencoderKL(
      { ...AutoencoderKLConfig.from(cfg), mid_block_add_attention: false },
      { skipInit: true },
    );
    assert.equal(
      [...noAttn.stateDict().keys()].some((k) => k.includes("attentions")),
      false,
    );
    const img = noGrad(() => noAttn.call(io.get("image")!));
    assert.deepEqual(img.shape, [1, 3, 16, 16]);
  });
});
