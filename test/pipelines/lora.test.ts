// LoRA application on the tiny fixture UNet against diffusers (../shared/fixtures/lora): PEFT, diffusers and kohya
// files at scale 1 and 0.5 and kohya alpha = r/2, merged and on the fly, within 1e-4 (max-normalized); exact
// removal; several LoRAs at once; text encoder LoRAs; and refusals (LoraMismatchError) that touch nothing.
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { Generator, loadSafetensors, noGrad, type Tensor, tensor } from "../../src/index.js";
import { parseLora } from "../../src/io/lora-format.js";
import { CLIPTextModel } from "../../src/models/clip/text-model.js";
import { UNet2DConditionConfig } from "../../src/models/unet/config.js";
import { UNet2DConditionModel } from "../../src/models/unet/unet-2d-condition.js";
import type { Module } from "../../src/nn/module.js";
import { Parameter } from "../../src/nn/parameter.js";
import {
  applyLora,
  type LoadedLora,
  LoraMismatchError,
  type LoraMode,
  loadLora,
  modelFamily,
} from "../../src/pipelines/lora.js";
import { assertClose, fixturesDir, randomTensor, skipWithoutFixtures } from "../helpers.js";

const TOL = 1e-4;
const MODES: LoraMode[] = ["merge", "adapter"];

/** Parameter objects and patched forwards of a model, to check that nothing was touched. */
function snapshot(m: Module): { params: Map<string, Tensor>; patched: string[] } {
  return {
    params: new Map(m.namedParameters()),
    patched: m
      .namedModules()
      .filter(([, x]) => Object.hasOwn(x, "forward"))
      .map(([n]) => n),
  };
}

function assertUntouched(m: Module, snap: ReturnType<typeof snapshot>): void {
  const now = snapshot(m);
  assert.deepEqual(now.patched, snap.patched, "forward patches");
  for (const [name, p] of snap.params) assert.equal(now.params.get(name), p, `parameter ${name} replaced`);
}

/** The same tensors under other keys. */
function renamed(src: ReadonlyMap<string, Tensor>, fn: (k: string) => string): Map<string, Tensor> {
  return new Map([...src].map(([k, v]) => [fn(k), v]));
}

describe("LoRA on the tiny UNet (fixtures)", { skip: skipWithoutFixtures() }, () => {
  let unet: UNet2DConditionModel;
  let io: Map<string, Tensor>;
  let want: Map<string, Tensor>;
  let base: Float32Array;
  const files: Record<string, LoadedLora> = {};
  const forward = (): Float32Array =>
    noGrad(() => unet.call(io.get("sample")!, 500, io.get("ehs1")!)).toFloat32Array();
  const check = (name: string, what: string): void =>
    assertClose(forward(), want.get(name)!.toFloat32Array(), TOL, what);

  before(async () => {
    const dir = fixturesDir()!;
    unet = await UNet2DConditionModel.fromPretrained(join(dir, "models", "tiny_unet"));
    io = (await loadSafetensors(join(dir, "models", "unet_io.safetensors"))).tensors;
    want = (await loadSafetensors(join(dir, "lora", "lora_io.safetensors"))).tensors;
    for (const f of ["lora_peft", "lora_diffusers", "lora_kohya", "lora_kohya_alpha_half"])
      files[f] = await loadLora(join(dir, "lora", `${f}.safetensors`));
    base = forward();
  });

  it("reads the three layouts into the same 48 entries", () => {
    assertClose(base, want.get("out_base")!.toFloat32Array(), TOL, "out_base");
    for (const [f, format, alpha] of [
      ["lora_peft", "peft", null],
      ["lora_diffusers", "diffusers", null],
      ["lora_kohya", "kohya", 4],
      ["lora_kohya_alpha_half", "kohya", 2],
    ] as const) {
      const l = files[f]!;
      assert.equal(l.format, format, f);
      assert.equal(l.name, f);
      assert.equal(l.entries.length, 48, f);
      assert.ok(
        l.entries.every((e) => e.target === "unet" && e.rank === 4 && e.alpha === alpha),
        f,
      );
      assert.equal(l.familyHint, null, `${f}: a 32-wide LoRA names no family`);
    }
  });

  for (const mode of MODES) {
    it(`${mode}: every file at scale 1 and 0.5 and kohya alpha r/2 match diffusers; remove() restores the model`, () => {
      const snap = snapshot(unet);
      const cases = [
        ["lora_peft", 1, "out_scale_1"],
        ["lora_diffusers", 1, "out_scale_1"],
        ["lora_kohya", 1, "out_scale_1"],
        ["lora_peft", 0.5, "out_scale_0p5"],
        ["lora_diffusers", 0.5, "out_scale_0p5"],
        ["lora_kohya", 0.5, "out_scale_0p5"],
        ["lora_kohya_alpha_half", 1, "out_kohya_alpha_half_scale_1"],
      ] as const;
      for (const [f, scale, out] of cases) {
        const h = applyLora({ unet }, files[f]!, { scale, mode });
        assert.equal(h.adapters.length, 48);
        check(out, `${f} scale ${scale} (${mode})`);
        h.remove();
        assert.equal(h.active, false);
        assertUntouched(unet, snap);
        assert.deepEqual(forward(), base, `${f} (${mode}): output after remove() is bit-exact`);
      }
    });
  }

  it("setScale changes the strength in place", () => {
    for (const mode of MODES) {
      const h = applyLora({ unet }, files.lora_peft!, { mode });
      h.setScale(0.5);
      assert.equal(h.scale, 0.5);
      check("out_scale_0p5", `setScale (${mode})`);
      h.remove();
    }
    assert.deepEqual(forward(), base);
  });

  it("two LoRAs at once add up (0.5 + kohya alpha r/2 at 1 = scale 1), merged, on the fly or mixed", () => {
    const snap = snapshot(unet);
    for (const [m1, m2] of [
      ["merge", "merge"],
      ["adapter", "adapter"],
      ["merge", "adapter"],
    ] as const) {
      const a = applyLora({ unet }, files.lora_peft!, { scale: 0.5, mode: m1 });
      const b = applyLora({ unet }, files.lora_kohya_alpha_half!, { scale: 1, mode: m2 });
      check("out_scale_1", `sum (${m1} + ${m2})`);
      a.remove();
      check("out_scale_0p5", `the second alone (${m2})`);
      b.remove();
      assertUntouched(unet, snap);
      assert.deepEqual(forward(), base);
    }
  });

  it("other key spellings: bare PEFT keys, PEFT α from metadata, attention-processor and LDM-style kohya names", async () => {
    const peft = (await loadSafetensors(join(fixturesDir()!, "lora", "lora_peft.safetensors"))).tensors;
    const bare = parseLora(renamed(peft, (k) => k.replace(/^unet\./, "")));
    const alphaMeta = parseLora(peft, {
      lora_adapter_metadata: JSON.stringify({ "unet.lora_alpha": 2, "unet.r": 4 }),
    });
    const diff = (await loadSafetensors(join(fixturesDir()!, "lora", "lora_diffusers.safetensors"))).tensors;
    const processor = parseLora(
      renamed(diff, (k) =>
        k.replace(
          /\.(to_q|to_k|to_v|to_out)(\.0)?\.lora\.(down|up)\.weight$/,
          ".processor.$1_lora.$3.weight",
        ),
      ),
    );
    assert.ok(processor.entries.some((e) => e.modulePath.endsWith("attn1.to_out.0")));
    // the tiny UNet (2 levels, 2 layers per block) in LDM numbering: down_blocks.0.attentions.j = input_blocks.(1+j).1,
    // mid_block.attentions.0 = middle_block.1, up_blocks.1.attentions.j = output_blocks.(3+j).1
    const kohya = (await loadSafetensors(join(fixturesDir()!, "lora", "lora_kohya.safetensors"))).tensors;
    const ldm = parseLora(
      renamed(kohya, (k) =>
        k
          .replace(
            /^lora_unet_down_blocks_0_attentions_(\d)_/,
            (_, j) => `lora_unet_input_blocks_${1 + Number(j)}_1_`,
          )
          .replace(/^lora_unet_mid_block_attentions_0_/, "lora_unet_middle_block_1_")
          .replace(
            /^lora_unet_up_blocks_1_attentions_(\d)_/,
            (_, j) => `lora_unet_output_blocks_${3 + Number(j)}_1_`,
          ),
      ),
    );
    assert.ok(ldm.entries.every((e) => /^(input|middle|output)_block/.test(e.modulePath)));
    for (const [lora, out, what] of [
      [bare, "out_scale_1", "bare PEFT keys"],
      [alphaMeta, "out_kohya_alpha_half_scale_1", "PEFT lora_alpha 2 in lora_adapter_metadata"],
      [processor, "out_scale_1", "attention-processor layout"],
      [ldm, "out_scale_1", "LDM-style kohya names"],
    ] as const) {
      const h = applyLora({ unet }, lora, { mode: "merge" });
      check(out, what);
      h.remove();
    }
    assert.deepEqual(forward(), base);
  });

  it("refuses a wrong shape or an unknown module, naming it and touching nothing", async () => {
    const peft = (await loadSafetensors(join(fixturesDir()!, "lora", "lora_peft.safetensors"))).tensors;
    const key = "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight";
    const wrongShape = new Map(peft).set(key, randomTensor([4, 48], 1));
    const unknown = renamed(peft, (k) => k.replace("up_blocks.1.", "up_blocks.2."));
    const kohya = (await loadSafetensors(join(fixturesDir()!, "lora", "lora_kohya.safetensors"))).tensors;
    const kohyaUnknown = renamed(kohya, (k) => k.replace("mid_block_attentions_0", "mid_block_attentions_7"));
    const snap = snapshot(unet);
    for (const mode of MODES) {
      assert.throws(
        () => applyLora({ unet }, parseLora(wrongShape), { mode, name: "bad" }),
        (e: Error) =>
          e instanceof LoraMismatchError &&
          e.problems.length === 1 &&
          e.message.includes('LoRA "bad" does not fit the loaded model (1 problem in 48 modules)') &&
          e.message.includes(
            "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k (mid_block.attentions.0.transformer_blocks.0.attn2.to_k): down [4, 48] does not fit Linear(32 -> 64): expected [r, 32]",
          ),
      );
      assert.throws(
        () => applyLora({ unet }, parseLora(unknown), { mode }),
        (e: Error) =>
          e instanceof LoraMismatchError &&
          e.problems.length === 24 &&
          /no module up_blocks\.2\.attentions\.0\.transformer_blocks\.0\.attn1\.to_k in the UNet/.test(
            e.message,
          ) &&
          /\.\.\. and 16 more/.test(e.message),
      );
      assert.throws(
        () => applyLora({ unet }, parseLora(kohyaUnknown), { mode }),
        /lora_unet_mid_block_attentions_7_transformer_blocks_0_attn1_to_k: no module named like mid_block_attentions_7_transformer_blocks_0_attn1_to_k in the UNet/,
      );
    }
    assertUntouched(unet, snap);
    assert.deepEqual(forward(), base);
  });

  it("names SDXL for an SDXL-looking LoRA on the tiny model", async () => {
    const te = await CLIPTextModel.fromPretrained(join(fixturesDir()!, "models", "tiny_text_encoder"));
    const sdxl = parseLora(sdxlLookingLora());
    assert.equal(sdxl.familyHint?.family, "sdxl");
    const snaps = [snapshot(unet), snapshot(te)];
    assert.throws(
      () => applyLora({ unet, textEncoder: te }, sdxl, { name: "xl-style" }),
      (e: Error) =>
        e instanceof LoraMismatchError &&
        e.loraFamily === "sdxl" &&
        e.modelFamily === null &&
        /This LoRA looks made for SDXL \(.*lora_te1_.*2048 inputs.*\), but the loaded model is a UNet with cross_attention_dim 32/.test(
          e.message,
        ) &&
        /lora_te2_text_model_encoder_layers_0_self_attn_q_proj: the LoRA adapts a second text encoder \(text_encoder_2\), but none is loaded/.test(
          e.message,
        ) &&
        /down \[4, 768\] does not fit Linear\(32 -> 32\)/.test(e.message),
    );
    assertUntouched(unet, snaps[0]!);
    assertUntouched(te, snaps[1]!);
  });

  it("text encoder LoRAs (kohya lora_te_ and PEFT text_encoder.) change exactly the adapted layers", async () => {
    const te = await CLIPTextModel.fromPretrained(join(fixturesDir()!, "models", "tiny_text_encoder"));
    const ids = tensor(BigInt64Array.from([672n, 5n, 17n, 300n, 673n]), [1, 5], { dtype: "int64" });
    const run = (): Float32Array => noGrad(() => te.call(ids).lastHiddenState).toFloat32Array();
    const teBase = run();
    const q = te.text_model.encoder.layers.at(1).self_attn.q_proj;
    const fc1 = te.text_model.encoder.layers.at(0).mlp.fc1;
    const f = {
      qDown: randomTensor([2, 32], 1),
      qUp: randomTensor([32, 2], 2),
      fDown: randomTensor([3, 32], 3),
      fUp: randomTensor([64, 3], 4),
    };
    // expected: the layers' weights replaced by hand with W + (α/r) B A (α = 1 for q, r = 3 for fc1)
    const [q0, fc0] = [q.weight, fc1.weight];
    q.weight = new Parameter(q0.add(f.qUp.matmul(f.qDown).mul(0.5)));
    fc1.weight = new Parameter(fc0.add(f.fUp.matmul(f.fDown)));
    const expected = run();
    [q.weight, fc1.weight] = [q0, fc0];
    const kohya = parseLora(
      new Map<string, Tensor>([
        ["lora_te_text_model_encoder_layers_1_self_attn_q_proj.lora_down.weight", f.qDown],
        ["lora_te_text_model_encoder_layers_1_self_attn_q_proj.lora_up.weight", f.qUp],
        ["lora_te_text_model_encoder_layers_1_self_attn_q_proj.alpha", tensor([1], [])],
        ["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", f.fDown],
        ["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", f.fUp],
      ]),
    );
    const peft = parseLora(
      new Map<string, Tensor>([
        ["text_encoder.text_model.encoder.layers.1.self_attn.q_proj.lora_A.weight", f.qDown],
        ["text_encoder.text_model.encoder.layers.1.self_attn.q_proj.lora_B.weight", f.qUp],
        ["text_encoder.text_model.encoder.layers.1.self_attn.q_proj.alpha", tensor([1], [1])],
        ["text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_A.weight", f.fDown],
        ["text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_B.weight", f.fUp],
      ]),
    );
    const twice = parseLora(
      new Map<string, Tensor>([
        ["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", f.fDown],
        ["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", f.fUp],
        ["lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", f.fDown],
        ["lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", f.fUp],
      ]),
    );
    assert.throws(
      () => applyLora({ unet, textEncoder: te }, twice),
      /lora_te1_text_model_encoder_layers_0_mlp_fc1: adapts text_model\.encoder\.layers\.0\.mlp\.fc1, which lora_te_text_model_encoder_layers_0_mlp_fc1 adapts already/,
    );
    for (const lora of [kohya, peft]) {
      for (const mode of MODES) {
        const h = applyLora({ unet, textEncoder: te }, lora, { mode });
        assertClose(run(), expected, 1e-5, `${lora.format} text encoder LoRA (${mode})`);
        h.remove();
        assert.deepEqual(run(), teBase);
      }
    }
  });
});

/** kohya keys of an SDXL LoRA: both text encoders (768 and 1280 wide) and a 2048-wide cross-attention to_k. */
function sdxlLookingLora(): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  const add = (name: string, inF: number, outF: number): void => {
    m.set(`${name}.lora_down.weight`, randomTensor([4, inF], inF));
    m.set(`${name}.lora_up.weight`, randomTensor([outF, 4], outF));
    m.set(`${name}.alpha`, tensor([4], []));
  };
  add("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768);
  add("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280);
  add("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 2048, 640);
  return m;
}

describe("LoRA family checks on an SD 1.5 block layout", () => {
  // SD 1.5's layout (4 levels, 2 layers per block, 768-wide cross-attention) with 32 channels
  const unet = new UNet2DConditionModel(
    UNet2DConditionConfig.sd15({ block_out_channels: [32, 32, 32, 32] }),
    { generator: new Generator().manualSeed(0) },
  );

  it("recognises the model as SD 1.x and refuses an SDXL LoRA, naming both", () => {
    assert.deepEqual(modelFamily(unet), { family: "sd1", label: "SD 1.x (cross_attention_dim 768)" });
    const snap = snapshot(unet);
    assert.throws(
      () => applyLora({ unet }, parseLora(sdxlLookingLora())),
      (e: Error) =>
        e instanceof LoraMismatchError &&
        e.modelFamily === "sd1" &&
        /looks made for SDXL .* but the loaded model is SD 1\.x \(cross_attention_dim 768\)/.test(
          e.message,
        ) &&
        /\(down_blocks\.1\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k\): down \[4, 2048\] does not fit Linear\(768 -> 32\)/.test(
          e.message,
        ),
    );
    assertUntouched(unet, snap);
  });

  it("applies an LDM-named kohya conv LoRA to resnets, samplers and attention projections", () => {
    const x = randomTensor([1, 4, 16, 16], 5);
    const ehs = randomTensor([1, 3, 768], 6);
    const run = (): Float32Array => noGrad(() => unet.call(x, 10, ehs)).toFloat32Array();
    const before = run();
    const m = new Map<string, Tensor>();
    const add = (name: string, down: number[], up: number[]): void => {
      m.set(`lora_unet_${name}.lora_down.weight`, randomTensor(down, m.size + 1, -0.05, 0.05));
      m.set(`lora_unet_${name}.lora_up.weight`, randomTensor(up, m.size + 1, -0.05, 0.05));
    };
    add("input_blocks_2_0_in_layers_2", [2, 32, 3, 3], [32, 2, 1, 1]);
    add("input_blocks_3_0_op", [2, 32, 3, 3], [32, 2, 1, 1]);
    add("middle_block_2_emb_layers_1", [2, 128], [32, 2]);
    add("output_blocks_8_2_conv", [2, 32, 3, 3], [32, 2, 1, 1]);
    add("output_blocks_11_1_proj_out", [2, 32, 1, 1], [32, 2, 1, 1]);
    const lora = parseLora(m);
    let merged: Float32Array | null = null;
    for (const mode of MODES) {
      const h = applyLora({ unet }, lora, { mode });
      assert.deepEqual(
        h.adapters.map((a) => a.name.replace(/^lora:/, "")),
        [
          "down_blocks.0.resnets.1.conv1",
          "down_blocks.0.downsamplers.0.conv",
          "mid_block.resnets.1.time_emb_proj",
          "up_blocks.2.upsamplers.0.conv",
          "up_blocks.3.attentions.2.proj_out",
        ],
      );
      // the 1x1-conv proj_out of a Transformer2DModel runs through its forward, so the adapter applies on the fly
      if (mode === "adapter") assert.equal(h.adapters.at(-1)!.mode, "adapter");
      const out = run();
      assert.ok(out.some((v, i) => v !== before[i]));
      if (mode === "merge") merged = out;
      else assertClose(out, merged!, 1e-5, "adapter = merge");
      h.remove();
      assert.deepEqual(run(), before);
    }
  });
});
