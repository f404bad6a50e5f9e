// Writing LoRA files (src/io/lora-write.ts): every key written in kohya or PEFT layout reads back through the
// package's reader (parseLora, and the kohya name resolution against the model's modules) to the same module,
// factors and α; the metadata records the base model and is what the reader's family hint uses.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kohyaNameIndex, loraFamilyHint, parseLora, resolveKohyaName } from "../../src/io/lora-format.js";
import {
  kohyaModuleName,
  type LoraSaveEntry,
  loraFileMetadata,
  loraStateDict,
  peftAdapterMetadata,
  peftModuleName,
} from "../../src/io/lora-write.js";
import { CLIPTextModel, UNet2DConditionModel } from "../../src/models/index.js";
import { Conv2d, type Module } from "../../src/nn/index.js";
import { isLoraLayer } from "../../src/nn/lora.js";
import { ArgumentError } from "../../src/tensor/errors.js";
import { randomTensor } from "../helpers.js";

/** One entry per Linear / Conv2d of `model` (rank 2 or 3, α varying), with random factors of the right shapes. */
function entriesFor(model: Module, target: LoraSaveEntry["target"], seed: number): LoraSaveEntry[] {
  return model
    .namedModules()
    .flatMap(([path, m]) => (isLoraLayer(m) ? [{ path, m }] : []))
    .map(({ path, m }, i): LoraSaveEntry => {
      const r = 2 + (i % 2);
      const conv = m instanceof Conv2d;
      const w = m.weight.shape;
      const down = conv ? [r, w[1]!, w[2]!, w[3]!] : [r, w[1]!];
      const up = conv ? [w[0]!, r, 1, 1] : [w[0]!, r];
      return {
        target,
        modulePath: path,
        down: randomTensor(down, seed + 2 * i),
        up: randomTensor(up, seed + 2 * i + 1),
        alpha: i % 3 === 0 ? r : r / 2,
      };
    });
}

describe("LoRA files written in kohya and PEFT layout", async () => {
  const unet = await UNet2DConditionModel.fromPretrained("models/emoji/unet");
  const textEncoder = await CLIPTextModel.fromPretrained("models/emoji/text_encoder");
  const entries = [...entriesFor(unet, "unet", 1), ...entriesFor(textEncoder, "text_encoder", 5000)];
  const indexes = {
    unet: kohyaNameIndex(unet.namedModules().map(([n]) => n)),
    text_encoder: kohyaNameIndex(textEncoder.namedModules().map(([n]) => n)),
  };

  for (const format of ["kohya", "peft"] as const) {
    it(`${format}: every written key reads back to its module, factors and alpha`, () => {
      const tensors = loraStateDict(entries, format);
      assert.equal(tensors.size, entries.length * (format === "kohya" ? 3 : 2));
      const metadata = format === "peft" ? { lora_adapter_metadata: peftAdapterMetadata(entries) } : null;
      const parsed = parseLora(tensors, metadata);
      assert.equal(parsed.format, format);
      assert.equal(parsed.entries.length, entries.length);
      const byPath = new Map(parsed.entries.map((e) => [`${e.target}:${e.modulePath}`, e]));
      for (const want of entries) {
        const name =
          format === "kohya"
            ? kohyaModuleName(want.target, want.modulePath).replace(/^lora_(unet|te)_/, "")
            : want.modulePath;
        const got = byPath.get(`${want.target}:${name}`);
        assert.ok(got, `${format}: ${want.target} ${want.modulePath} not read back`);
        if (format === "kohya") {
          const index = indexes[want.target as "unet" | "text_encoder"];
          assert.deepEqual(resolveKohyaName(got.modulePath, got.target, index, 1), { path: want.modulePath });
        }
        assert.equal(got.alpha, want.alpha, `${want.modulePath} alpha`);
        assert.deepEqual(got.down.shape, want.down.shape);
        assert.deepEqual(got.up.shape, want.up.shape);
        assert.deepEqual(got.down.toFloat32Array(), want.down.toFloat32Array());
        assert.deepEqual(got.up.toFloat32Array(), want.up.toFloat32Array());
      }
    });
  }

  it("key names: kohya's lora_unet_ / lora_te_ (lora_te1_ with a second encoder), PEFT's model prefixes", () => {
    const path = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0";
    assert.equal(
      kohyaModuleName("unet", path),
      "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0",
    );
    assert.equal(
      kohyaModuleName("text_encoder", "text_model.encoder.layers.0.mlp.fc1", true),
      "lora_te1_text_model_encoder_layers_0_mlp_fc1",
    );
    assert.equal(
      kohyaModuleName("text_encoder_2", "text_model.encoder.layers.0.mlp.fc1"),
      "lora_te2_text_model_encoder_layers_0_mlp_fc1",
    );
    assert.equal(peftModuleName("unet", path), `unet.${path}`);
    const kohya = loraStateDict(entries.slice(0, 1), "kohya");
    const alpha = kohya.get(`${kohyaModuleName("unet", entries[0]!.modulePath)}.alpha`)!;
    assert.deepEqual([alpha.shape, alpha.dtype, alpha.item()], [[], "float32", entries[0]!.alpha]);
  });

  it("PEFT metadata: r and lora_alpha per model, the other alphas in alpha_pattern", () => {
    const cfg = JSON.parse(peftAdapterMetadata(entries)) as Record<string, unknown>;
    const alphas = cfg["unet.alpha_pattern"] as Record<string, number>;
    const ranks = cfg["unet.rank_pattern"] as Record<string, number>;
    for (const e of entries.filter((x) => x.target === "unet")) {
      assert.equal(alphas[e.modulePath] ?? cfg["unet.lora_alpha"], e.alpha, e.modulePath);
      assert.equal(ranks[e.modulePath] ?? cfg["unet.r"], e.down.shape[0], e.modulePath);
    }
    const uniform = entries.slice(0, 1);
    const one = JSON.parse(peftAdapterMetadata(uniform)) as Record<string, unknown>;
    assert.deepEqual([one["unet.r"], one["unet.lora_alpha"], one["unet.alpha_pattern"]], [2, 2, {}]);
    assert.ok(
      (cfg["text_encoder.target_modules"] as string[]).includes("text_model.encoder.layers.0.mlp.fc1"),
    );
  });

  it("refuses entries that cannot be written", () => {
    const e = entries[0]!;
    assert.throws(() => loraStateDict([], "kohya"), ArgumentError);
    assert.throws(() => loraStateDict([e], "lycoris" as "kohya"), /kohya or peft/);
    assert.throws(() => loraStateDict([e, e], "peft"), /distinct/);
    assert.throws(() => loraStateDict([{ ...e, up: e.down }], "kohya"), ArgumentError);
    assert.throws(() => loraStateDict([{ ...e, modulePath: "a b" }], "kohya"), /dotted names/);
  });
});

describe("loraFileMetadata", () => {
  const entries: LoraSaveEntry[] = [
    {
      target: "unet",
      modulePath: "mid_block.attentions.0.transformer_blocks.0.attn2.to_k",
      down: randomTensor([4, 768], 1),
      up: randomTensor([320, 4], 2),
      alpha: 4,
    },
    {
      target: "unet",
      modulePath: "mid_block.resnets.0.conv1",
      down: randomTensor([4, 8, 3, 3], 3),
      up: randomTensor([8, 4, 1, 1], 4),
      alpha: 2,
    },
  ];
  const training = { steps: 100, learningRate: 1e-4, images: 30, targets: "all-linear+conv" };

  it("records the base model's name, family and hash in kohya's keys and the package's", () => {
    const sha = "ab".repeat(32);
    const meta = loraFileMetadata(
      entries,
      "kohya",
      { name: "sd15", family: "sd1", familyLabel: "SD 1.x", sha256: sha },
      training,
    );
    assert.equal(meta.ss_base_model_version, "sd_v1");
    assert.equal(meta["modelspec.architecture"], "stable-diffusion-v1/lora");
    assert.equal(meta.ss_new_sd_model_hash, sha);
    assert.equal(meta.diffuse_base_hash, sha.slice(0, 10));
    assert.equal(meta.diffuse_base_family, "sd1");
    assert.equal(meta.ss_network_dim, "4");
    assert.deepEqual(JSON.parse(meta.ss_network_args!), { conv_dim: "4", conv_alpha: "2" });
    assert.equal(meta.lora_adapter_metadata, undefined);
    assert.equal(loraFamilyHint([], meta)?.family, "sd1");
    const sd2 = loraFileMetadata(
      entries,
      "peft",
      { name: "x", family: "sd2", familyLabel: "", sha256: sha },
      training,
    );
    assert.equal(loraFamilyHint([], sd2)?.family, "sd2");
    assert.equal(sd2.ss_v2, "True");
    assert.ok(sd2.lora_adapter_metadata);
  });

  it("a UNet of no known family: no family keys, its description instead", () => {
    const meta = loraFileMetadata(
      entries,
      "peft",
      {
        name: "emoji",
        family: null,
        familyLabel: "a UNet with cross_attention_dim 256",
        sha256: "cd".repeat(32),
      },
      training,
    );
    assert.equal(meta.ss_base_model_version, undefined);
    assert.equal(meta["modelspec.architecture"], undefined);
    assert.equal(meta.diffuse_base_family, "other");
    assert.equal(meta.diffuse_base_family_label, "a UNet with cross_attention_dim 256");
    assert.equal(loraFamilyHint([], meta), null);
  });
});
