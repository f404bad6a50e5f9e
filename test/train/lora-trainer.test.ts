// The LoRA trainer on the shipped emoji model: only the factors are optimised (the base weights get no gradients
// and stay bit-identical through steps), and the training step's gradients of adapted UNet and text encoder layers
// match central finite differences of the same loss (same batch, same noise and timesteps).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { CLIPTextModel, CLIPTokenizer, UNet2DConditionModel } from "../../src/models/index.js";
import { AutoencoderKL } from "../../src/models/vae/autoencoder-kl.js";
import { copy_ } from "../../src/ops/index.js";
import { DDPMScheduler } from "../../src/schedulers/ddpm.js";
import { Generator } from "../../src/tensor/generator.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import type { LabeledBatch } from "../../src/train/data/loader.js";
import { LoraSet, LoraTrainer, type LoraTrainerParts } from "../../src/train/lora-trainer.js";
import { encodeLatents } from "../../src/train/text-to-image-trainer.js";
import { gradcheck, randomTensor } from "../helpers.js";

const MODEL = "models/emoji";

/** Exposes one batch's loss. */
class ProbeTrainer extends LoraTrainer {
  lossOf(batch: LabeledBatch): Tensor {
    return this.batchLoss(batch).loss;
  }
}

async function parts(): Promise<LoraTrainerParts> {
  const vae = await AutoencoderKL.fromPretrained(`${MODEL}/vae`);
  const images = randomTensor([3, 3, 32, 32], 1).toFloat32Array();
  const scheduler = JSON.parse(readFileSync(`${MODEL}/scheduler/scheduler_config.json`, "utf8"));
  return {
    unet: await UNet2DConditionModel.fromPretrained(`${MODEL}/unet`),
    textEncoder: await CLIPTextModel.fromPretrained(`${MODEL}/text_encoder`),
    tokenizer: await CLIPTokenizer.fromPretrained(`${MODEL}/tokenizer`),
    noiseScheduler: new DDPMScheduler(scheduler),
    latents: encodeLatents(vae, { count: 3, size: 32, images }),
    captions: ["red heart", "grinning cat", "handwritten digit seven"],
  };
}

describe("LoraTrainer (shipped emoji model)", () => {
  it("steps change only the factors; the base weights stay bit-identical and get no gradients", async () => {
    const p = await parts();
    const before = [...p.unet.stateDict()].map(([n, t]) => [n, Array.from(t.toFloat32Array())] as const);
    const lora = new LoraSet(p, { targets: "attn+ff", rank: 4 }, new Generator(2));
    const trainer = new LoraTrainer(p, lora, { steps: 3, batchSize: 2, lr: 1e-2, warmupSteps: 0 });
    assert.deepEqual(
      trainer.optimizer.paramGroups.flatMap((g) => g.params),
      lora.parameters(),
      "only the factors are optimised",
    );
    const up0 = Array.from(lora.unet.layers[0]!.factors.up.toFloat32Array());
    for (let i = 0; i < 3; i++) trainer.trainStep();
    assert.ok((await trainer.readLosses()).every(Number.isFinite));
    assert.notDeepEqual(Array.from(lora.unet.layers[0]!.factors.up.toFloat32Array()), up0);
    for (const [name, values] of before) {
      const t = p.unet.stateDict().get(name)!;
      assert.deepEqual(Array.from(t.toFloat32Array()), values, `${name} changed`);
      assert.equal(p.unet.namedParameters().find(([n]) => n === name)?.[1].grad ?? null, null);
    }
  });

  it("training-step gradients of adapted UNet and text encoder layers match finite differences", async () => {
    const p = await parts();
    const lora = new LoraSet(
      p,
      { targets: "all-linear+conv", rank: 2, alpha: 3, textEncoder: true },
      new Generator(4),
    );
    // non-zero up factors, so both factors of every layer have a gradient
    lora.parameters().forEach((t, i) => {
      copy_(t, randomTensor([...t.shape], 100 + i, -0.2, 0.2));
    });
    const trainer = new ProbeTrainer(p, lora, { steps: 1, batchSize: 2 });
    const batch = trainer.loader.next();
    const state = trainer.generator.getState();
    const loss = () => {
      trainer.generator.setState(state);
      return trainer.lossOf(batch);
    };
    const pick = (net: typeof lora.unet, path: string) => {
      const layer = net.layers.find((l) => l.path === path);
      assert.ok(layer, path);
      return [layer.factors.down, layer.factors.up];
    };
    const inputs = [
      ...pick(lora.unet, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k"),
      ...pick(lora.unet, "up_blocks.1.resnets.1.conv1"),
      ...pick(lora.text_encoder!, "text_model.encoder.layers.3.mlp.fc2"),
    ];
    gradcheck(loss, inputs, { maxElements: 6, eps: 5e-3, atol: 1e-4, rtol: 2e-2 });
  });
});
