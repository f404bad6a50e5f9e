// The three stages of a text-to-image model trained by the package (VAE, contrastive text encoder, UNet), each on a
// few emoji with tiny models: outputs in the diffusers / transformers layouts that the loaders read, resumed runs
// equal to unbroken ones, and the assembled folder generating through StableDiffusionPipeline.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { DigitClassifier, DigitClassifierConfig } from "../../src/models/classifier/digit-classifier.js";
import { CLIPTextModel } from "../../src/models/clip/text-model.js";
import { CLIPTokenizer } from "../../src/models/clip/tokenizer.js";
import { AutoencoderKL } from "../../src/models/vae/autoencoder-kl.js";
import { copyPipelineFolder } from "../../src/pipelines/copy-pipeline.js";
import { StableDiffusionPipeline } from "../../src/pipelines/stable-diffusion.js";
import { Generator } from "../../src/tensor/generator.js";
import { readTrainerState } from "../../src/train/checkpoint.js";
import { emojiSubset, loadEmoji } from "../../src/train/data/emoji.js";
import { evaluateTextToImage } from "../../src/train/eval-text-to-image.js";
import { trainClip } from "../../src/train/run-clip.js";
import { trainTextToImage } from "../../src/train/run-text-to-image.js";
import { trainVae } from "../../src/train/run-vae.js";

const all = loadEmoji(16);
const set = emojiSubset(
  all,
  Array.from({ length: 12 }, (_, i) => i * 311),
);
const TINY_VAE = {
  block_out_channels: [8, 8],
  down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D"],
  up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D"],
  latent_channels: 4,
  norm_num_groups: 4,
  sample_size: 16,
};
const TINY_CLIP = {
  merges: 60,
  maxLength: 16,
  hiddenSize: 16,
  layers: 1,
  heads: 2,
  projectionDim: 8,
  imageChannels: [8, 8],
};
const TINY_UNET = {
  block_out_channels: [16, 16],
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  up_block_types: ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  layers_per_block: 1,
  attention_head_dim: 2,
  norm_num_groups: 4,
};

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-t2i-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function weightsOf(path: string): Promise<Map<string, number[]>> {
  const { tensors } = await loadSafetensors(path);
  return new Map([...tensors].map(([k, t]) => [k, Array.from(t.toFloat32Array())]));
}

describe("text-to-image stages", () => {
  it("trainVae writes a diffusers vae/ with a measured scaling_factor; a resumed run equals an unbroken one", async () => {
    const train = { steps: 4, batchSize: 4, lr: 1e-3, seed: 1 };
    const full = await trainVae({ outDir: join(dir, "vae-full"), data: set, vaeConfig: TINY_VAE, train });
    assert.equal(full.stopped, false);
    assert.ok(full.scalingFactor! > 0 && Number.isFinite(full.scalingFactor!));
    assert.ok(full.reconstruction!.psnr > 0 && full.reconstruction!.images === 12);
    const config = JSON.parse(readFileSync(join(dir, "vae-full", "vae", "config.json"), "utf8"));
    assert.equal(config._class_name, "AutoencoderKL");
    assert.equal(config.scaling_factor, full.scalingFactor);
    const vae = await AutoencoderKL.fromPretrained(join(dir, "vae-full", "vae"));
    assert.equal(vae.config.latent_channels, 4);
    assert.ok(existsSync(join(dir, "vae-full", "samples", "step-000004.png")));

    const parts = join(dir, "vae-parts");
    const stop = new AbortController();
    const first = await trainVae({
      outDir: parts,
      data: set,
      vaeConfig: TINY_VAE,
      train,
      signal: stop.signal,
      onProgress: (e) => {
        if (e.stage === "train" && e.step === 2) stop.abort();
      },
    });
    assert.equal(first.stopped, true);
    assert.equal(readTrainerState(join(parts, "checkpoint")).step, 2);
    await trainVae({ outDir: parts, data: set, train, resumeFrom: parts });
    assert.deepEqual(
      await weightsOf(join(parts, "checkpoint", "model.safetensors")),
      await weightsOf(join(dir, "vae-full", "checkpoint", "model.safetensors")),
    );
  });

  it("trainClip learns a tokenizer and writes a CLIPTextModel the loaders read", async () => {
    const r = await trainClip({
      outDir: join(dir, "clip"),
      data: set,
      model: TINY_CLIP,
      train: { steps: 3, batchSize: 6, seed: 0 },
    });
    assert.ok(r.retrieval && r.retrieval.images === 12 && r.retrieval.top5 >= r.retrieval.top1);
    const tok = await CLIPTokenizer.fromPretrained(join(dir, "clip", "tokenizer"));
    assert.equal(tok.modelMaxLength, 16);
    const te = await CLIPTextModel.fromPretrained(join(dir, "clip", "text_encoder"));
    assert.equal(te.config.hidden_size, 16);
    assert.equal(te.config.vocab_size, tok.vocabSize);
    assert.equal(te.config.eos_token_id, tok.eosTokenId);
    const state = readTrainerState(join(dir, "clip", "checkpoint"));
    assert.equal(state.step, 3);
    assert.ok(state.clipConfig, "the checkpoint records the model config");
  });

  it("trainTextToImage assembles a Stable Diffusion folder that generates", async () => {
    const out = join(dir, "t2i");
    const r = await trainTextToImage({
      outDir: out,
      data: set,
      vaeFrom: join(dir, "vae-full"),
      textFrom: join(dir, "clip"),
      unetConfig: TINY_UNET,
      schedulerConfig: {
        prediction_type: "v_prediction",
        beta_schedule: "squaredcos_cap_v2",
        clip_sample: false,
      },
      train: { steps: 2, batchSize: 4 },
      sampling: { steps: 2 },
    });
    assert.equal(r.trainer.step, 2);
    const index = JSON.parse(readFileSync(join(out, "model_index.json"), "utf8"));
    assert.equal(index._class_name, "StableDiffusionPipeline");
    const pipe = await StableDiffusionPipeline.fromPretrained(out);
    assert.equal(pipe.unet.config.sample_size, 8);
    assert.equal(pipe.unet.config.cross_attention_dim, 16);
    const img = await pipe.generate({ prompt: "red heart", steps: 2, seed: 0 });
    assert.equal(img.images[0]!.width, 16);
    assert.ok(existsSync(join(out, "samples", "step-000002.png")));

    // shipped as float16: the training leftovers stay behind, the weights halve, the folder still generates
    const shipped = join(dir, "shipped");
    const copied = await copyPipelineFolder(out, shipped, { dtype: "float16" });
    assert.deepEqual(copied.components.sort(), ["scheduler", "text_encoder", "tokenizer", "unet", "vae"]);
    assert.ok(!existsSync(join(shipped, "checkpoint")) && !existsSync(join(shipped, "samples")));
    const unetWeights = await loadSafetensors(join(shipped, "unet", "diffusion_pytorch_model.safetensors"));
    assert.ok([...unetWeights.tensors.values()].every((t) => t.dtype === "float16"));
    const half = await StableDiffusionPipeline.fromPretrained(shipped);
    const again = await half.generate({ prompt: "red heart", steps: 2, seed: 0 });
    assert.equal(again.images[0]!.width, 16);
  });

  it("evaluateTextToImage prompts one image per name and scores it with a classifier of all names", async () => {
    const pipeline = await StableDiffusionPipeline.fromPretrained(join(dir, "shipped"));
    const classifier = new DigitClassifier(
      DigitClassifierConfig.from({
        in_channels: 3,
        sample_size: 16,
        block_out_channels: [4],
        norm_num_groups: 2,
        feature_dim: 6,
        num_classes: set.classNames.length,
      }),
      { generator: new Generator(0) },
    );
    const classes = set.entries.slice(0, 3).map((e) => e.classIndex);
    const r = await evaluateTextToImage({
      pipeline,
      classifier,
      set,
      classes,
      sampler: "dpmpp-2m",
      steps: 2,
      guidance: 3,
    });
    assert.equal(r.count, 3);
    assert.ok(r.top1 >= 0 && r.top1 <= r.top5 && r.top5 <= 1);
    assert.ok(Number.isFinite(r.fd) && r.fd >= 0 && Number.isFinite(r.referenceFd));
    assert.equal(r.fdRatio, r.fd / r.referenceFd);
    await assert.rejects(
      evaluateTextToImage({
        pipeline,
        classifier,
        set,
        classes: [0],
        sampler: "dpmpp-2m",
        steps: 2,
        guidance: 3,
      }),
      /need 2\+ names to prompt, got 1/,
    );
  });
});
