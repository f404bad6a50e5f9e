// What the pipeline refuses, and how: missing tokenizer, components from different models, NaN/Inf latents
// (given, produced by the UNet, or decoded by the VAE), image-only options without an image, guidance warnings,
// and an AbortSignal that stops between steps.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Generator, randn } from "../../src/index.js";
import { CLIPTextModel } from "../../src/models/index.js";
import { PipelineError, StableDiffusionPipeline } from "../../src/pipelines/index.js";
import { schedulerFromConfig } from "../../src/schedulers/index.js";
import { skipWithoutFixtures } from "../helpers.js";
import { SD15_SCHEDULER, tinyParts, tinyPipeline } from "./tiny-pipeline.js";

const scheduler = () => schedulerFromConfig({ ...SD15_SCHEDULER, _class_name: "DDIMScheduler" });

describe("pipeline errors", { skip: skipWithoutFixtures() }, () => {
  it("a missing tokenizer is named, with what to pass", async () => {
    const parts = await tinyParts();
    assert.throws(
      () => new StableDiffusionPipeline({ ...parts, tokenizer: undefined as never, scheduler: scheduler() }),
      (e: Error) => {
        assert.ok(e instanceof PipelineError);
        assert.match(e.message, /no tokenizer/);
        assert.match(e.message, /--tokenizer DIR/);
        return true;
      },
    );
    assert.throws(
      () => new StableDiffusionPipeline({ ...parts, vae: undefined as never, scheduler: scheduler() }),
      /the "vae" component is missing/,
    );
  });

  it("components of different models are refused (text width vs cross_attention_dim)", async () => {
    const parts = await tinyParts();
    const wide = new CLIPTextModel({ ...parts.textEncoder.config, hidden_size: 48, intermediate_size: 64 });
    assert.throws(
      () => new StableDiffusionPipeline({ ...parts, textEncoder: wide, scheduler: scheduler() }),
      /cross_attention_dim is 32 but the text encoder's hidden_size = 48/,
    );
  });

  it("NaN in given latents, in the UNet's output, or in the decoded image gives a clear error", async () => {
    const parts = await tinyParts();
    const pipe = tinyPipeline(parts);
    const nan = randn([1, 4, 8, 8], { generator: new Generator(1) });
    nan.dataSync()[5] = Number.NaN;
    await assert.rejects(
      pipe.generate({ prompt: "x", latents: nan, steps: 2 }),
      /the given latents contain NaN \(element 5 of \[1, 4, 8, 8\]\)/,
    );

    const broken = await tinyParts();
    (broken.unet.conv_out.bias!.dataSync() as Float32Array)[0] = Number.NaN;
    await assert.rejects(tinyPipeline(broken).generate({ prompt: "x", steps: 3, seed: 1 }), (e: Error) => {
      assert.ok(e instanceof PipelineError);
      assert.match(e.message, /latents after step 1 of 3 \(timestep 667\) contain NaN/);
      assert.match(e.message, /UNet produced NaN/);
      return true;
    });

    const badVae = await tinyParts();
    (badVae.vae.decoder.conv_out.bias!.dataSync() as Float32Array)[1] = Number.POSITIVE_INFINITY;
    await assert.rejects(tinyPipeline(badVae).generate({ prompt: "x", steps: 2, seed: 1 }), (e: Error) => {
      assert.ok(e instanceof PipelineError);
      assert.match(e.message, /the decoded images contain Infinity/);
      assert.match(e.message, /VAE/);
      return true;
    });
  });

  it("image-only options need an init image; invalid counts are refused", async () => {
    const pipe = tinyPipeline(await tinyParts());
    await assert.rejects(pipe.generate({ prompt: "x", strength: 0.5 }), /strength applies to image-to-image/);
    await assert.rejects(pipe.generate({ prompt: "x", steps: 0 }), /steps must be a positive integer/);
    await assert.rejects(
      pipe.generate({ prompt: "x", numImages: 0 }),
      /numImages must be a positive integer/,
    );
    await assert.rejects(
      pipe.generate({ prompt: "x", width: 15 }),
      /width 15 is not a multiple of 2 \(the VAE's downscale factor\); nearest valid widths: 14 or 16/,
    );
    await assert.rejects(
      pipe.generate({ prompt: "x", latents: randn([1, 4, 4, 4]), steps: 1 }),
      /latents must have shape \[1, 4, 8, 8\]/,
    );
  });

  it("warns (callback and result) above guidance 15", async () => {
    const pipe = tinyPipeline(await tinyParts());
    const seen: string[] = [];
    const r = await pipe.generate({
      prompt: "x",
      guidanceScale: 20,
      steps: 1,
      seed: 0,
      onWarning: (m) => seen.push(m),
    });
    assert.equal(seen.length, 1);
    assert.match(seen[0]!, /guidance scale 20 is above 15.*7-10/);
    assert.deepEqual(r.warnings, seen);
    const quiet = await pipe.generate({ prompt: "x", guidanceScale: 7.5, steps: 1, seed: 0 });
    assert.deepEqual(quiet.warnings, []);
  });

  it("warns when CLIP drops the end of a long prompt, naming the dropped part", async () => {
    const pipe = tinyPipeline(await tinyParts());
    const ids = pipe.tokenizer.encode("a", { padding: false });
    assert.equal(ids.length, 3, "one token per 'a'");
    const prompt = `${"a ".repeat(75)}zebra`;
    const r = await pipe.generate({ prompt, steps: 1, seed: 0 });
    assert.equal(r.warnings.length, 1);
    assert.match(
      r.warnings[0]!,
      /the prompt has \d+ tokens and CLIP reads 75; this part was dropped: "zebra"/,
    );
  });

  it("an AbortSignal stops between steps", async () => {
    const pipe = tinyPipeline(await tinyParts());
    const controller = new AbortController();
    let steps = 0;
    const progress: number[] = [];
    await assert.rejects(
      pipe.generate({
        prompt: "x",
        steps: 10,
        seed: 0,
        signal: controller.signal,
        onProgress: (e) => {
          progress.push(e.step);
          if (e.stage !== "sample") return;
          steps++;
          if (e.step === 3) setImmediate(() => controller.abort(new Error("stop requested")));
        },
      }),
      /stop requested/,
    );
    assert.equal(steps, 3, "the abort lands between step 3 and step 4");
    assert.deepEqual(progress, [1, 2, 3]);
  });
});
