// model_index.json: the one reader's parsed index and its errors (file path, what was expected, what was found).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CheckpointError } from "../../src/io/errors.js";
import { parseModelIndex, readModelIndex } from "../../src/pipelines/model-index.js";

const tmp = mkdtempSync(join(tmpdir(), "diffuse-model-index-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe("model_index.json", () => {
  it("parses the class, components, absent components and the options this library reads", () => {
    const index = parseModelIndex(
      {
        _class_name: "StableDiffusionXLPipeline",
        _diffusers_version: "0.30.0",
        unet: ["diffusers", "UNet2DConditionModel"],
        text_encoder: [null, null],
        force_zeros_for_empty_prompt: false,
        guidance_interval: [0.5, null],
        requires_safety_checker: true,
      },
      "x/model_index.json",
    );
    assert.equal(index.className, "StableDiffusionXLPipeline");
    assert.equal(index.diffusersVersion, "0.30.0");
    assert.deepEqual(index.components, { unet: ["diffusers", "UNet2DConditionModel"], text_encoder: null });
    assert.equal(index.forceZerosForEmptyPrompt, false);
    assert.deepEqual(index.guidanceInterval, { sigmaMin: 0.5, sigmaMax: Infinity });
    assert.deepEqual(index.options, { requires_safety_checker: true });
    const plain = parseModelIndex({ _class_name: "P" }, "p");
    assert.equal(plain.forceZerosForEmptyPrompt, undefined);
    assert.equal(plain.guidanceInterval, undefined);
  });

  it("names the file, what was expected and what was found", async () => {
    const bad = (raw: Record<string, unknown>, re: RegExp) =>
      assert.throws(
        () => parseModelIndex(raw, "dir/model_index.json"),
        (e: unknown) => e instanceof CheckpointError && re.test(e.message),
      );
    bad({}, /dir\/model_index\.json: expected "_class_name" .* string, found undefined/);
    bad(
      { _class_name: "P", unet: ["diffusers"] },
      /expected component unet to be \[library, class\] .*found \["diffusers"\]/,
    );
    bad(
      { _class_name: "P", force_zeros_for_empty_prompt: "yes" },
      /force_zeros_for_empty_prompt to be true or false, found "yes"/,
    );
    bad({ _class_name: "P", guidance_interval: [2, 1] }, /guidance_interval: .*sigmaMin < sigmaMax/);
    bad(
      { _class_name: "P", guidance_interval: "0,2" },
      /expected guidance_interval to be \[sigma_min, sigma_max or null\], found "0,2"/,
    );
    await assert.rejects(
      readModelIndex(join(tmp, "nowhere")),
      /nowhere\/model_index\.json: model_index\.json not found/,
    );
    writeFileSync(join(tmp, "model_index.json"), "[1]");
    await assert.rejects(
      readModelIndex(tmp),
      /model_index\.json is not a valid JSON object \(found an array\)/,
    );
  });
});
