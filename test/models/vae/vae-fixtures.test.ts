// AutoencoderKL against diffusers: the tiny VAE of ../shared/fixtures/models loaded with fromPretrained, on
// vae_io (latent distribution, decoded images, every recorded intermediate; max-normalized error <= 1e-4).
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { Generator, loadSafetensors, noGrad, randn, type Tensor } from "../../../src/index.js";
import { AutoencoderKL, AutoencoderKLConfig } from "../../../src/models/index.js";
import { assertClose, fixturesDir, skipWithoutFixtures } from "../../helpers.js";

const TOL = 1e-4;

describe("AutoencoderKL (tiny fixture model)", { skip: skipWithoutFixtures() }, () => {
  let vae: AutoencoderKL;
  let io: Map<string, Tensor>;
  const get = (name: string): Tensor => {
    const t = io.get(name);
    assert.ok(t, `fixture tensor ${name} missing`);
    return t;
  };
  const check = (got: Tensor, name: string): void => {
    assert.deepEqual(got.shape, get(name).shape, `${name} shape`);
    assertClose(got.toFloat32Array(), get(name).toFloat32Array(), TOL, name);
  };

  before(async () => {
    const dir = join(fixturesDir()!, "models");
    vae = await AutoencoderKL.fromPretrained(join(dir, "tiny_vae"));
    io = (await loadSafetensors(join(dir, "vae_io.safetensors"))).tensors;
  });

  it("reads the config (scaling_factor is kept, not applied)", () => {
    assert.equal(vae.config.scaling_factor, 0.18215);
    assert.equal(vae.downscaleFactor, 2);
    assert.equal(vae.training, false);
  });

  it("encode: mean, clamped logvar, std; sample = mean + std * noise", () => {
    const stages = new Map<string, Tensor>();
    const dist = noGrad(() => vae.encode(get("image"), { onStage: (n, v) => stages.set(n, v) }).latentDist);
    check(dist.mean, "latent_mean");
    check(dist.mode(), "latent_mean");
    check(dist.logvar, "latent_logvar");
    check(dist.std, "latent_std");
    check(dist.mean.add(dist.std.mul(get("latent_noise"))), "latent_sample");
    const names = [
      "encoder.conv_in",
      "encoder.down_blocks.0",
      "encoder.down_blocks.1",
      "encoder.mid_block",
      "encoder.conv_out",
      "quant_conv",
    ];
    assert.deepEqual([...stages.keys()], names);
    for (const n of names) check(stages.get(n)!, `i.${n}`);
    // sample(generator) draws the noise as torch.randn(shape, generator=g)
    const noise = randn([1, 4, 8, 8], { generator: new Generator().manualSeed(3) });
    const drawn = dist.sample(new Generator().manualSeed(3));
    assert.deepEqual(drawn.toFloat32Array(), dist.mean.add(dist.std.mul(noise)).toFloat32Array());
  });

  it("decode: the sampled and the mean latent, with every intermediate", () => {
    const stages = new Map<string, Tensor>();
    const decoded = noGrad(() => vae.decode(get("latent_sample"), { onStage: (n, v) => stages.set(n, v) }));
    check(decoded, "decoded_sample");
    const names = [
      "post_quant_conv",
      "decoder.conv_in",
      "decoder.mid_block",
      "decoder.up_blocks.0",
      "decoder.up_blocks.1",
      "decoder.conv_out",
    ];
    assert.deepEqual([...stages.keys()], names);
    for (const n of names) check(stages.get(n)!, `i.${n}`);
    check(
      noGrad(() => vae.decode(get("latent_mean"))),
      "decoded_mean",
    );
    check(
      noGrad(() => vae.call(get("image"))),
      "forward_mode",
    );
  });

  it("input shapes are checked", () => {
    assert.throws(
      () => vae.encode(get("latent_mean")),
      /encode: expected \[B, 3, H, W\], got \[1, 4, 8, 8\]/,
    );
    assert.throws(() => vae.decode(get("image")), /decode: expected \[B, 4, h, w\], got \[1, 3, 16, 16\]/);
  });

  it("the Stable Diffusion VAE config builds the released model's 83,653,863 parameters", () => {
    const sd = new AutoencoderKL(AutoencoderKLConfig.sd(), { skipInit: true });
    assert.equal(sd.numParameters(), 83_653_863);
    assert.equal(sd.stateDict().size, 248);
    assert.equal(sd.downscaleFactor, 8);
    assert.equal(AutoencoderKLConfig.sdxl().scaling_factor, 0.13025);
  });
});
