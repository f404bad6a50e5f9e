// A list of prompts is one batch: each image is the one its prompt alone gives from the same initial noise, the
// result names each image's prompt, and a bad list is refused.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Generator, randn } from "../../src/index.js";
import { narrow } from "../../src/ops/index.js";
import { assertClose, skipWithoutFixtures } from "../helpers.js";
import { tinyParts, tinyPipeline } from "./tiny-pipeline.js";

describe("generate with a list of prompts", { skip: skipWithoutFixtures() }, () => {
  it("batches the prompts; each image matches its prompt drawn alone", async () => {
    const pipe = tinyPipeline(await tinyParts());
    const noise = randn([4, 4, 8, 8], { generator: new Generator(3) });
    const opts = { steps: 3, guidanceScale: 5, width: 16, height: 16 };
    const r = await pipe.generate({
      prompt: ["a red car", "a blue sky"],
      numImages: 2,
      latents: noise,
      ...opts,
    });
    assert.equal(r.images.length, 4);
    assert.deepEqual(r.prompts, ["a red car", "a red car", "a blue sky", "a blue sky"]);
    assert.equal(r.settings.batchSize, 4);
    for (let i = 0; i < 4; i++) {
      const alone = await pipe.generate({ prompt: r.prompts[i]!, latents: narrow(noise, 0, i, 1), ...opts });
      assertClose(
        alone.latents.toFloat32Array(),
        narrow(r.latents, 0, i, 1).toFloat32Array(),
        1e-4,
        `image ${i}`,
      );
    }
    await assert.rejects(
      pipe.generate({ prompt: [] }),
      /prompt must be a string or a non-empty array of strings/,
    );
    await assert.rejects(
      pipe.generate({ prompt: ["x", 3 as unknown as string] }),
      /prompt must be a string or a non-empty array of strings/,
    );
  });
});
