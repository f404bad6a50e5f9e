// StableDiffusionXLPipeline on a tiny SDXL-shaped model set (the fixture CLIP as both encoders' shape, a seeded
// random second encoder with projection and a text_time UNet): the UNet receives both encoders' penultimate
// states side by side, the second encoder's projected pooled output and the size/crop time ids; an empty negative
// prompt is all zeros when force_zeros_for_empty_prompt (diffusers), else encoded.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { Generator, noGrad, type Tensor } from "../../src/index.js";
import {
  type AddedCondKwargs,
  CLIPTextModelWithProjection,
  textEmbeddings,
  UNet2DConditionModel,
} from "../../src/models/index.js";
import { cat, narrow } from "../../src/ops/index.js";
import {
  PipelineError,
  type StableDiffusionComponents,
  StableDiffusionXLPipeline,
  sdxlTimeIds,
} from "../../src/pipelines/index.js";
import { schedulerFromConfig } from "../../src/schedulers/index.js";
import { assertClose, skipWithoutFixtures } from "../helpers.js";
import { modelsDir, SD15_SCHEDULER, tinyParts } from "./tiny-pipeline.js";

describe("StableDiffusionXLPipeline (tiny)", { skip: skipWithoutFixtures() }, () => {
  let parts: Omit<StableDiffusionComponents, "scheduler">;
  let unet: UNet2DConditionModel;
  let te2: CLIPTextModelWithProjection;
  before(async () => {
    parts = await tinyParts();
    const config = JSON.parse(readFileSync(join(modelsDir(), "tiny_unet", "config.json"), "utf8"));
    unet = new UNet2DConditionModel(
      {
        ...config,
        cross_attention_dim: 64,
        addition_embed_type: "text_time",
        addition_time_embed_dim: 8,
        projection_class_embeddings_input_dim: 8 * 6 + 16,
      },
      { generator: new Generator(1) },
    ).eval();
    te2 = new CLIPTextModelWithProjection(
      { ...parts.textEncoder.config, projection_dim: 16 },
      { generator: new Generator(2) },
    ).eval();
  });

  function pipeline(forceZeros = true): StableDiffusionXLPipeline {
    return new StableDiffusionXLPipeline({
      ...parts,
      unet,
      textEncoder2: te2,
      tokenizer2: parts.tokenizer,
      forceZerosForEmptyPrompt: forceZeros,
      scheduler: schedulerFromConfig({ ...SD15_SCHEDULER, _class_name: "EulerDiscreteScheduler" }),
    });
  }

  /** The UNet's first call: encoder states and added conditioning. */
  async function firstCall(
    pipe: StableDiffusionXLPipeline,
    opts: { prompt: string; negativePrompt?: string },
  ): Promise<{ ehs: Tensor; added: AddedCondKwargs }> {
    let seen: { ehs: Tensor; added: AddedCondKwargs } | null = null;
    const forward = unet.forward.bind(unet);
    unet.forward = (sample, t, ehs, o) => {
      seen ??= { ehs: ehs!, added: o!.addedCondKwargs! };
      return forward(sample, t, ehs, o);
    };
    try {
      const r = await pipe.generate({ ...opts, steps: 2, seed: 3, width: 16, height: 24 });
      assert.deepEqual([r.images[0]!.width, r.images[0]!.height], [16, 24]);
    } finally {
      unet.forward = forward;
    }
    return seen!;
  }

  /** Both encoders' conditioning of one prompt, computed directly. */
  function expected(text: string): { embeds: Tensor; pooled: Tensor } {
    const ids = parts.tokenizer.encodeBatch([text]).inputIds;
    return noGrad(() => {
      const a = textEmbeddings(parts.textEncoder, ids, { style: "sdxl" });
      const b = textEmbeddings(te2, ids, { style: "sdxl" });
      return { embeds: cat([a.embeds, b.embeds], -1), pooled: b.pooled };
    });
  }

  it("conditioning: [zeros; prompt] states and pooled outputs, time ids (h, w, 0, 0, h, w)", async () => {
    const { ehs, added } = await firstCall(pipeline(), { prompt: "a photo of a cat" });
    assert.deepEqual(ehs.shape, [2, 77, 64]);
    assert.deepEqual(added.textEmbeds.shape, [2, 16]);
    assert.deepEqual(Array.from(added.timeIds.toFloat32Array()), [
      ...sdxlTimeIds(24, 16),
      ...sdxlTimeIds(24, 16),
    ]);
    assert.deepEqual(sdxlTimeIds(24, 16), [24, 16, 0, 0, 24, 16]);
    assert.ok(
      narrow(ehs, 0, 0, 1)
        .toFloat32Array()
        .every((v) => v === 0),
      "zero negative states",
    );
    assert.ok(
      narrow(added.textEmbeds, 0, 0, 1)
        .toFloat32Array()
        .every((v) => v === 0),
      "zero negative pooled",
    );
    const want = expected("a photo of a cat");
    assertClose(narrow(ehs, 0, 1, 1).toFloat32Array(), want.embeds.toFloat32Array(), 1e-5);
    assertClose(narrow(added.textEmbeds, 0, 1, 1).toFloat32Array(), want.pooled.toFloat32Array(), 1e-5);
  });

  it("a negative prompt (or force_zeros off) is encoded like the prompt", async () => {
    const neg = await firstCall(pipeline(), { prompt: "a cat", negativePrompt: "blurry photo" });
    const want = expected("blurry photo");
    assertClose(narrow(neg.ehs, 0, 0, 1).toFloat32Array(), want.embeds.toFloat32Array(), 1e-5);
    assertClose(narrow(neg.added.textEmbeds, 0, 0, 1).toFloat32Array(), want.pooled.toFloat32Array(), 1e-5);
    const empty = await firstCall(pipeline(false), { prompt: "a cat" });
    assertClose(narrow(empty.ehs, 0, 0, 1).toFloat32Array(), expected("").embeds.toFloat32Array(), 1e-5);
  });

  it("outside a guidance interval the conditional halves of states, pooled embeddings and time ids run alone", async () => {
    const opts = { prompt: "a cat", negativePrompt: "a dog", steps: 2, seed: 4, width: 16, height: 16 };
    const outside = await pipeline().generate({
      ...opts,
      guidanceScale: 6,
      guidanceInterval: { sigmaMin: 1e6, sigmaMax: 2e6 },
    });
    const condOnly = await pipeline().generate({ ...opts, guidanceScale: 1 });
    assertClose(outside.latents.toFloat32Array(), condOnly.latents.toFloat32Array(), 1e-5);
  });

  it("refuses parts that do not fit together", () => {
    const base = {
      ...parts,
      unet,
      tokenizer2: parts.tokenizer,
      scheduler: schedulerFromConfig(SD15_SCHEDULER),
    };
    const wrongProjection = new CLIPTextModelWithProjection({
      ...parts.textEncoder.config,
      projection_dim: 8,
    });
    assert.throws(
      () => new StableDiffusionXLPipeline({ ...base, textEncoder2: wrongProjection }),
      (e: Error) => e instanceof PipelineError && /add_embedding takes 64 features/.test(e.message),
    );
    assert.throws(
      () => new StableDiffusionXLPipeline({ ...base, textEncoder2: te2, tokenizer2: undefined as never }),
      /no tokenizer2/,
    );
    assert.throws(
      () => new StableDiffusionXLPipeline({ ...base, textEncoder2: te2, unet: parts.unet }),
      /cross_attention_dim is 32 but the two text encoders' hidden sizes 32 \+ 32 = 64/,
    );
  });
});
