// diffusers -> LDM names (the single-file export) is the exact inverse of the loading plans: converting the
// names and shapes of a whole SD 1.5-sized checkpoint (and of a layout with attention-free levels and deeper
// transformers) to diffusers keys and back gives every original name and shape; keys no layout has are refused.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ldmExportPlan, ldmUNetKey, ldmVAEKey } from "../../../src/io/ldm/export.js";
import {
  type ConversionPlan,
  inferUNetLayout,
  LDM_VAE_PREFIX,
  ldmCLIPPlan,
  ldmUNetPlan,
  ldmVAEPlan,
  type ShapeMap,
} from "../../../src/io/ldm/index.js";
import { clipShapes, familyShapes, ldmUNetShapes, ldmVAEShapes } from "./synthetic.js";

const targets = (plan: ConversionPlan): ShapeMap => new Map([...plan.tensors].map(([k, m]) => [k, m.shape]));

function roundTrip(ldm: ShapeMap): void {
  const layout = inferUNetLayout(ldm);
  const vaeLevels = 4;
  const te = "cond_stage_model.transformer.";
  const exported = ldmExportPlan(
    {
      unet: targets(ldmUNetPlan(ldm, layout)),
      vae: targets(ldmVAEPlan(ldm, LDM_VAE_PREFIX, vaeLevels)),
      textEncoder: targets(ldmCLIPPlan(ldm, te)),
    },
    layout,
    vaeLevels,
  );
  const expected = [...ldm.keys()].filter((k) => !k.endsWith("position_ids")).sort();
  assert.deepEqual([...exported.keys()].sort(), expected);
  for (const [name, m] of exported) assert.deepEqual(m.shape, ldm.get(name), name);
}

describe("diffusers -> LDM names", () => {
  it("a whole SD 1.5-sized checkpoint converts back to every original name and shape", () => {
    roundTrip(familyShapes("sd1"));
  });

  it("attention-free first level, 2 and 3 transformer blocks, one ResBlock per level", () => {
    const ldm = new Map([
      ...ldmUNetShapes({
        channels: [32, 64, 64],
        layersPerBlock: 1,
        depth: [0, 2, 3],
        midDepth: 3,
        context: 48,
      }),
      ...ldmVAEShapes([32, 64, 64, 64], 1),
      ...clipShapes("cond_stage_model.transformer.", { layers: 2, hidden: 48, intermediate: 96 }),
    ]);
    roundTrip(ldm);
  });

  it("single keys: ResBlocks, samplers, VAE attention as 1x1 convs; unknown keys are null", () => {
    const layout = { levels: 2, layersPerBlock: 1, attention: [true, true] };
    assert.equal(
      ldmUNetKey("down_blocks.0.resnets.0.conv1.weight", layout),
      "input_blocks.1.0.in_layers.2.weight",
    );
    assert.equal(ldmUNetKey("down_blocks.0.downsamplers.0.conv.bias", layout), "input_blocks.2.0.op.bias");
    assert.equal(ldmUNetKey("up_blocks.0.upsamplers.0.conv.weight", layout), "output_blocks.1.2.conv.weight");
    assert.equal(
      ldmUNetKey("up_blocks.1.resnets.1.conv_shortcut.weight", layout),
      "output_blocks.3.0.skip_connection.weight",
    );
    assert.equal(
      ldmUNetKey("mid_block.resnets.1.time_emb_proj.bias", layout),
      "middle_block.2.emb_layers.1.bias",
    );
    assert.equal(ldmUNetKey("class_embedding.linear_1.weight", layout), null);
    assert.equal(
      ldmUNetKey("down_blocks.1.downsamplers.0.conv.weight", layout),
      null,
      "no downsampler on the last level",
    );
    assert.deepEqual(ldmVAEKey("decoder.up_blocks.0.resnets.1.conv1.weight", 3), {
      key: "decoder.up.2.block.1.conv1.weight",
      conv: false,
    });
    assert.deepEqual(ldmVAEKey("encoder.mid_block.attentions.0.to_out.0.weight", 3), {
      key: "encoder.mid.attn_1.proj_out.weight",
      conv: true,
    });
    assert.equal(ldmVAEKey("encoder.down_blocks.5.resnets.0.conv1.weight", 3), null);
  });

  it("a UNet tensor no LDM layout has is an error naming it", () => {
    assert.throws(
      () =>
        ldmExportPlan(
          {
            unet: new Map([["class_embedding.linear_1.weight", [4, 4]]]),
            vae: new Map(),
            textEncoder: new Map(),
          },
          { levels: 1, layersPerBlock: 1, attention: [false] },
          1,
        ),
      /1 tensor\(s\) have no name in the original Stable Diffusion layout: unet: class_embedding\.linear_1\.weight/,
    );
  });
});
