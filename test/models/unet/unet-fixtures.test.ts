// UNet2DConditionModel against diffusers: the tiny UNet of ../shared/fixtures/models, loaded with fromPretrained,
// on the four unet_io cases and every recorded intermediate of case a (max-normalized error <= 1e-4).
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { loadSafetensors, noGrad, type Tensor, tensor } from "../../../src/index.js";
import { type Transformer2DModel, UNet2DConditionModel } from "../../../src/models/index.js";
import type { ModuleList } from "../../../src/nn/index.js";
import { assertClose, fixturesDir, skipWithoutFixtures } from "../../helpers.js";

const TOL = 1e-4;

describe("UNet2DConditionModel (tiny fixture model)", { skip: skipWithoutFixtures() }, () => {
  let unet: UNet2DConditionModel;
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
    unet = await UNet2DConditionModel.fromPretrained(join(dir, "tiny_unet"));
    io = (await loadSafetensors(join(dir, "unet_io.safetensors"))).tensors;
  });

  it("loads config.json as-is and builds the diffusers layout", () => {
    assert.equal(unet.config.attention_head_dim, 8);
    assert.equal(unet.config._class_name, "UNet2DConditionModel", "unknown keys are kept");
    assert.equal(unet.training, false, "fromPretrained returns the model in eval mode");
    // legacy attention_head_dim = number of heads: 8 heads of 4 (down 0), of 8 (mid), of 4 (up 1)
    const attn1 = (b: { attentions: ModuleList<Transformer2DModel> | null }) =>
      b.attentions!.at(0).transformer_blocks.at(0).attn1;
    for (const [a, dim] of [
      [attn1(unet.down_blocks.at(0)), 4],
      [attn1(unet.mid_block!), 8],
      [attn1(unet.up_blocks.at(1)), 4],
    ] as const) {
      assert.deepEqual([a.heads, a.innerDim / a.heads], [8, dim]);
    }
    assert.equal(unet.numParameters(), 1106212);
  });

  it("case a (int timestep 500): output and every intermediate", () => {
    const stages = new Map<string, Tensor>();
    const out = noGrad(() =>
      unet.call(get("sample"), 500, get("ehs1"), { onStage: (name, v) => stages.set(name, v) }),
    );
    check(out, "out_a");
    const expected = [
      "time_proj",
      "time_embedding",
      "conv_in",
      "down_blocks.0",
      "down_blocks.1",
      "mid_block",
      "up_blocks.0",
      "up_blocks.1",
      "conv_norm_out",
      "conv_out",
    ];
    assert.deepEqual([...stages.keys()], expected);
    for (const name of expected) check(stages.get(name)!, `a.${name}`);
  });

  it("case b: one timestep per sample, as numbers and as an int64 tensor", () => {
    noGrad(() => {
      check(unet.call(get("sample"), [10, 981], get("ehs1")), "out_b");
      const t = tensor(BigInt64Array.from([10n, 981n]), [2], { dtype: "int64" });
      check(unet.call(get("sample"), t, get("ehs1")), "out_b");
    });
  });

  it("case c: other encoder hidden states (cross-attention)", () => {
    check(
      noGrad(() => unet.call(get("sample"), 500, get("ehs2"))),
      "out_c",
    );
  });

  it("case d: a float timestep is rounded to float32 first", () => {
    noGrad(() => {
      check(unet.call(get("sample"), 623.4567, get("ehs1")), "out_d");
      check(unet.call(get("sample"), tensor([623.4567], [1]), get("ehs1")), "out_d");
    });
  });

  it("timestep and input shape errors are clear", () => {
    noGrad(() => {
      assert.throws(() => unet.call(get("sample"), [1, 2, 3], get("ehs1")), /3 timesteps for a batch of 2/);
      assert.throws(
        () => unet.call(get("ehs1"), 1, get("ehs1")),
        /sample must be \[B, 4, H, W\], got \[2, 77, 32\]/,
      );
    });
  });
});
