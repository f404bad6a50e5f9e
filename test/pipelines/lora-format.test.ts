// LoRA key layouts (src/io/lora-format.ts): PEFT / diffusers / kohya keys, targets, alphas, refusals of files that
// are not plain LoRAs, the family hints, and the LDM -> diffusers UNet name mapping (SD 1.5 block layout).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Tensor, tensor } from "../../src/index.js";
import {
  kohyaNameIndex,
  LoraFormatError,
  ldmToDiffusersUnetName,
  loraFamilyHint,
  parseLora,
  resolveKohyaName,
} from "../../src/io/lora-format.js";
import { UNet2DConditionConfig } from "../../src/models/unet/config.js";
import { UNet2DConditionModel } from "../../src/models/unet/unet-2d-condition.js";
import { loadLora } from "../../src/pipelines/lora.js";
import { randomTensor } from "../helpers.js";

/** down [r, in] / up [out, r] pairs under `name` + the two suffixes. */
function pair(
  name: string,
  [down, up]: readonly [string, string],
  inF = 8,
  outF = 8,
  r = 2,
): [string, Tensor][] {
  return [
    [`${name}${down}`, randomTensor([r, inF], inF + r)],
    [`${name}${up}`, randomTensor([outF, r], outF + r)],
  ];
}
const PEFT = [".lora_A.weight", ".lora_B.weight"] as const;
const DIFFUSERS = [".lora.down.weight", ".lora.up.weight"] as const;
const KOHYA = [".lora_down.weight", ".lora_up.weight"] as const;

describe("parseLora", () => {
  it("PEFT keys: targets from prefixes, bare keys and base_model.model.", () => {
    const l = parseLora(
      new Map([
        ...pair("unet.down_blocks.0.attentions.0.proj_in", PEFT),
        ...pair("text_encoder.text_model.encoder.layers.0.self_attn.q_proj", PEFT),
        ...pair("text_encoder_2.text_model.encoder.layers.3.mlp.fc2", PEFT),
        ...pair("mid_block.attentions.0.transformer_blocks.0.attn1.to_q", PEFT),
        ...pair("text_model.encoder.layers.1.self_attn.out_proj", PEFT),
        ...pair("base_model.model.up_blocks.1.attentions.0.proj_out", [
          ".lora_A.default.weight",
          ".lora_B.default.weight",
        ]),
      ]),
    );
    assert.equal(l.format, "peft");
    assert.deepEqual(
      l.entries.map((e) => [e.target, e.modulePath, e.pathStyle, e.rank, e.alpha]),
      [
        ["unet", "down_blocks.0.attentions.0.proj_in", "dotted", 2, null],
        ["text_encoder", "text_model.encoder.layers.0.self_attn.q_proj", "dotted", 2, null],
        ["text_encoder_2", "text_model.encoder.layers.3.mlp.fc2", "dotted", 2, null],
        ["unet", "mid_block.attentions.0.transformer_blocks.0.attn1.to_q", "dotted", 2, null],
        ["text_encoder", "text_model.encoder.layers.1.self_attn.out_proj", "dotted", 2, null],
        ["unet", "up_blocks.1.attentions.0.proj_out", "dotted", 2, null],
      ],
    );
  });

  it("diffusers keys (.lora.down, .lora_linear_layer., attention processors) and .alpha keys", () => {
    const l = parseLora(
      new Map([
        ...pair("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", DIFFUSERS),
        ["unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.alpha", tensor([1.5], [])],
        ...pair("text_encoder.text_model.encoder.layers.0.mlp.fc1", [
          ".lora_linear_layer.down.weight",
          ".lora_linear_layer.up.weight",
        ]),
        ...pair("unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora", [
          ".down.weight",
          ".up.weight",
        ]),
        ...pair("up_blocks.1.attentions.2.transformer_blocks.0.attn2.processor.to_v_lora", [
          ".down.weight",
          ".up.weight",
        ]),
      ]),
    );
    assert.equal(l.format, "diffusers");
    assert.deepEqual(
      l.entries.map((e) => [e.target, e.modulePath, e.alpha]),
      [
        ["unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 1.5],
        ["text_encoder", "text_model.encoder.layers.0.mlp.fc1", null],
        ["unet", "mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0", null],
        ["unet", "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_v", null],
      ],
    );
    assert.equal(
      l.entries[2]!.sourceName,
      "unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora",
    );
  });

  it("kohya keys: lora_unet_ / lora_te_ / lora_te1_ / lora_te2_ with alphas, names kept for resolution", () => {
    const l = parseLora(
      new Map([
        ...pair("lora_unet_down_blocks_0_attentions_0_proj_in", KOHYA),
        ["lora_unet_down_blocks_0_attentions_0_proj_in.alpha", tensor([1], [1])],
        ...pair("lora_te_text_model_encoder_layers_0_self_attn_k_proj", KOHYA),
        ...pair("lora_te1_text_model_encoder_layers_0_self_attn_k_proj", KOHYA),
        ...pair("lora_te2_text_model_encoder_layers_0_self_attn_k_proj", KOHYA),
      ]),
    );
    assert.equal(l.format, "kohya");
    assert.deepEqual(
      l.entries.map((e) => [e.target, e.modulePath, e.pathStyle, e.alpha]),
      [
        ["unet", "down_blocks_0_attentions_0_proj_in", "kohya", 1],
        ["text_encoder", "text_model_encoder_layers_0_self_attn_k_proj", "kohya", null],
        ["text_encoder", "text_model_encoder_layers_0_self_attn_k_proj", "kohya", null],
        ["text_encoder_2", "text_model_encoder_layers_0_self_attn_k_proj", "kohya", null],
      ],
    );
  });

  it("PEFT α from lora_adapter_metadata: lora_alpha, alpha_pattern, rsLoRA", () => {
    const sd = new Map([
      ...pair("unet.a.to_q", PEFT, 8, 8, 4),
      ...pair("unet.b.to_k", PEFT, 8, 8, 4),
      ...pair("text_encoder.text_model.q_proj", PEFT, 8, 8, 4),
    ]);
    const meta = {
      "unet.lora_alpha": 8,
      "unet.alpha_pattern": { "b.to_k": 2 },
      "text_encoder.lora_alpha": 3,
      "text_encoder.use_rslora": true,
    };
    const l = parseLora(sd, { lora_adapter_metadata: JSON.stringify(meta) });
    assert.deepEqual(
      l.entries.map((e) => e.alpha),
      [8, 2, 3 * 2], // rsLoRA scales by α/√r: α/√4 = (3·2)/4
    );
  });

  it("refuses unknown keys, unpaired factors, non-scalar alphas and other adapter types", () => {
    const bad = (m: Map<string, Tensor>, re: RegExp) =>
      assert.throws(
        () => parseLora(m),
        (e: Error) => e instanceof LoraFormatError && re.test(e.message),
      );
    bad(
      new Map([["down_blocks.0.resnets.0.conv1.weight", randomTensor([2, 2], 1)]]),
      /not a LoRA file.*conv1\.weight/,
    );
    bad(new Map([pair("unet.x.to_q", PEFT)[0]!]), /without both down and up weights: unet\.x\.to_q/);
    bad(
      new Map([...pair("lora_unet_x", KOHYA), ["lora_unet_x.alpha", tensor([1, 2], [2])]]),
      /alpha must hold one/,
    );
    bad(new Map([["lora_unet_x.hada_w1_a", randomTensor([2, 2], 1)]]), /unsupported adapter type: LoHa/);
    bad(new Map([["lora_unet_x.lokr_w1", randomTensor([2, 2], 1)]]), /LoKr/);
    bad(
      new Map([...pair("lora_unet_x", KOHYA), ["lora_unet_x.dora_scale", randomTensor([1, 8], 1)]]),
      /DoRA/,
    );
    bad(new Map(), /holds no LoRA weights/);
    bad(
      new Map([...pair("unet.x.to_q", PEFT), ["unet.y.to_q.alpha", tensor([1], [])]]),
      /alphas without weights: unet\.y\.to_q\.alpha/,
    );
  });
});

it("loadLora reads .safetensors only", async () => {
  await assert.rejects(loadLora("/nowhere/style.ckpt"), (e: Error) => {
    return e instanceof LoraFormatError && /\.safetensors only \(got "\.ckpt"\)/.test(e.message);
  });
});

describe("loraFamilyHint", () => {
  const entries = (keys: [string, Tensor][]) => parseLora(new Map(keys)).entries;
  it("SDXL from two text encoders, 2048-wide cross-attention and deep transformers", () => {
    const h = loraFamilyHint(
      entries([
        ...pair("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", KOHYA, 768, 768),
        ...pair("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", KOHYA, 1280, 1280),
        ...pair("lora_unet_input_blocks_7_1_transformer_blocks_5_attn2_to_k", KOHYA, 2048, 1280),
      ]),
    );
    assert.equal(h?.family, "sdxl");
    assert.equal(h?.reasons.length, 5);
    assert.match(h!.reasons.join("; "), /2048 inputs/);
  });
  it("SD 2.x from 1024-wide text / cross-attention, SD 1.x from 768", () => {
    assert.equal(loraFamilyHint(entries(pair("unet.x.attn2.to_v", PEFT, 1024, 320)))?.family, "sd2");
    assert.equal(
      loraFamilyHint(entries(pair("lora_te_text_model_encoder_layers_0_mlp_fc1", KOHYA, 768, 3072)))?.family,
      "sd1",
    );
    assert.equal(
      loraFamilyHint(entries(pair("lora_unet_input_blocks_1_1_proj_in", KOHYA, 320, 320)))?.family,
      "sd1",
    );
    assert.equal(loraFamilyHint(entries(pair("unet.x.attn1.to_q", PEFT, 320, 320))), null);
  });
  it("kohya metadata", () => {
    const e = entries(pair("unet.x.attn1.to_q", PEFT, 320, 320));
    assert.equal(loraFamilyHint(e, { ss_base_model_version: "sdxl_base_v1-0" })?.family, "sdxl");
    assert.equal(loraFamilyHint(e, { "modelspec.architecture": "stable-diffusion-v1/lora" })?.family, "sd1");
    assert.equal(loraFamilyHint(e, { ss_v2: "True" })?.family, "sd2");
  });
});

describe("LDM-style kohya UNet names (SD 1.5 block layout)", () => {
  // LDM numbering for 4 levels x 2 layers: input_blocks 1,2 | 3 (down) | 4,5 | 6 | 7,8 | 9 | 10,11;
  // output_blocks 0,1,2 (upsampler 2.1) | 3,4,5 (attentions, upsampler 5.2) | 6,7,8 (8.2) | 9,10,11
  const cases: [string, string][] = [
    ["input_blocks_0_0", "conv_in"],
    [
      "input_blocks_1_1_transformer_blocks_0_attn1_to_q",
      "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
    ],
    ["input_blocks_2_0_in_layers_2", "down_blocks.0.resnets.1.conv1"],
    ["input_blocks_2_1_proj_in", "down_blocks.0.attentions.1.proj_in"],
    ["input_blocks_3_0_op", "down_blocks.0.downsamplers.0.conv"],
    ["input_blocks_4_0_skip_connection", "down_blocks.1.resnets.0.conv_shortcut"],
    [
      "input_blocks_4_1_transformer_blocks_0_attn2_to_k",
      "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
    ],
    [
      "input_blocks_8_1_transformer_blocks_0_ff_net_0_proj",
      "down_blocks.2.attentions.1.transformer_blocks.0.ff.net.0.proj",
    ],
    ["input_blocks_9_0_op", "down_blocks.2.downsamplers.0.conv"],
    ["input_blocks_11_0_emb_layers_1", "down_blocks.3.resnets.1.time_emb_proj"],
    ["middle_block_0_in_layers_2", "mid_block.resnets.0.conv1"],
    [
      "middle_block_1_transformer_blocks_0_attn2_to_out_0",
      "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0",
    ],
    ["middle_block_2_out_layers_3", "mid_block.resnets.1.conv2"],
    ["output_blocks_0_0_out_layers_3", "up_blocks.0.resnets.0.conv2"],
    ["output_blocks_2_1_conv", "up_blocks.0.upsamplers.0.conv"],
    [
      "output_blocks_3_1_transformer_blocks_0_ff_net_2",
      "up_blocks.1.attentions.0.transformer_blocks.0.ff.net.2",
    ],
    ["output_blocks_5_1_proj_out", "up_blocks.1.attentions.2.proj_out"],
    ["output_blocks_5_2_conv", "up_blocks.1.upsamplers.0.conv"],
    ["output_blocks_6_0_skip_connection", "up_blocks.2.resnets.0.conv_shortcut"],
    ["output_blocks_8_2_conv", "up_blocks.2.upsamplers.0.conv"],
    [
      "output_blocks_11_1_transformer_blocks_0_attn1_to_v",
      "up_blocks.3.attentions.2.transformer_blocks.0.attn1.to_v",
    ],
    ["time_embed_0", "time_embedding.linear_1"],
    ["time_embed_2", "time_embedding.linear_2"],
    ["out_2", "conv_out"],
  ];

  it("maps names to diffusers' (pure)", () => {
    for (const [ldm, dotted] of cases)
      assert.equal(ldmToDiffusersUnetName(ldm, 2), dotted.replaceAll(".", "_"), ldm);
    assert.equal(
      ldmToDiffusersUnetName("input_blocks_1_1_transformer_blocks_0_attn1_to_q", [2, 2, 2, 2]),
      "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
    );
    assert.equal(
      ldmToDiffusersUnetName("down_blocks_0_attentions_0_proj_in"),
      null,
      "diffusers names are not LDM",
    );
    assert.equal(ldmToDiffusersUnetName("input_blocks_3_1_proj_in"), null, "a downsampler has no attention");
    assert.equal(ldmToDiffusersUnetName("middle_block_0_bogus"), null);
  });

  it("resolves against an SD 1.5-layout model's module names", () => {
    const unet = new UNet2DConditionModel(
      UNet2DConditionConfig.sd15({ block_out_channels: [32, 64, 96, 96] }),
      {
        skipInit: true,
      },
    );
    const modules = new Map(unet.namedModules());
    const index = kohyaNameIndex(modules.keys());
    for (const [ldm, dotted] of cases) {
      assert.deepEqual(
        resolveKohyaName(ldm, "unet", index, unet.config.layers_per_block),
        { path: dotted },
        ldm,
      );
      assert.ok(modules.has(dotted));
    }
    // diffusers-style kohya names resolve directly, underscores in module names included
    assert.deepEqual(
      resolveKohyaName("up_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0", "unet", index),
      {
        path: "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0",
      },
    );
    assert.deepEqual(resolveKohyaName("input_blocks_12_0_op", "unet", index), {
      problem:
        "no module named like input_blocks_12_0_op (LDM name, read as down_blocks_3_downsamplers_0_conv) in the model",
    });
  });

  it("an underscore name two modules share is reported, not guessed", () => {
    const index = kohyaNameIndex(["a_b.c", "a.b_c", "d"]);
    assert.deepEqual(resolveKohyaName("a_b_c", "text_encoder", index), {
      problem: "a_b_c matches more than one module of the model",
    });
    assert.deepEqual(resolveKohyaName("d", "text_encoder", index), { path: "d" });
  });
});
