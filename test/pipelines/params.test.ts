// A1111 `parameters` text: exact output for known settings, parsing A1111's own infotexts (current and old
// sampler naming, quoted values, multi-line prompts), and format -> parse round trips.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  a1111SamplerName,
  formatParameters,
  type GenerationSettings,
  PipelineError,
  parseParameters,
  parseParametersText,
  samplerFromA1111,
} from "../../src/pipelines/index.js";

describe("A1111 generation parameters", () => {
  it("formats the fields in A1111's order and quoting", () => {
    const text = formatParameters({
      prompt: "a photo of a cat",
      negativePrompt: "blurry, low quality",
      steps: 20,
      sampler: "dpmpp-2m-karras",
      guidanceScale: 7.5,
      seed: 42,
      width: 512,
      height: 768,
      modelHash: "db5966f94e",
      modelName: "v1-5",
      strength: 0.75,
      clipSkip: 1,
      guidanceRescale: 0.7,
      loras: [
        { name: "detail", hash: "7c6bad76eb54", scale: 0.8 },
        { name: "style", scale: 1 },
      ],
      extra: { Version: "diffuse 0.1.0" },
    });
    assert.equal(
      text,
      "a photo of a cat\nNegative prompt: blurry, low quality\n" +
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 512x768, " +
        "Model hash: db5966f94e, Model: v1-5, Denoising strength: 0.75, Clip skip: 2, RNG: CPU, " +
        'CFG Rescale phi: 0.7, Lora hashes: "detail: 7c6bad76eb54", Lora scales: "detail: 0.8, style: 1", ' +
        "Version: diffuse 0.1.0",
    );
  });

  it("omits an empty negative prompt and optional fields", () => {
    const text = formatParameters({
      prompt: "x",
      negativePrompt: "",
      steps: 4,
      sampler: "euler-a",
      guidanceScale: 7,
      width: 16,
      height: 16,
    });
    assert.equal(text, "x\nSteps: 4, Sampler: Euler a, CFG scale: 7, Size: 16x16, RNG: CPU");
  });

  it("parses an infotext written by A1111 (schedule type, quoted list, unknown fields kept)", () => {
    const s = parseParameters(
      "masterpiece, best quality, (blue eyes:1.2)\nsecond line\n" +
        "Negative prompt: lowres, bad anatomy\nworst quality\n" +
        "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, Size: 512x768, " +
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.55, Clip skip: 2, " +
        'Hires upscale: 2, Hires upscaler: Latent, Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.9.4',
    );
    assert.deepEqual(s, {
      prompt: "masterpiece, best quality, (blue eyes:1.2)\nsecond line",
      negativePrompt: "lowres, bad anatomy\nworst quality",
      steps: 28,
      sampler: "dpmpp-2m-karras",
      guidanceScale: 7,
      seed: 1234567890,
      width: 512,
      height: 768,
      modelHash: "6ce0161689",
      modelName: "v1-5-pruned-emaonly",
      strength: 0.55,
      clipSkip: 1,
      loras: [{ name: "add_detail", hash: "7c6bad76eb54", scale: 1 }],
      extra: { "Hires upscale": "2", "Hires upscaler": "Latent", Version: "v1.9.4" },
    });
  });

  it("maps A1111 sampler names both ways (old 'X Karras' names too)", () => {
    assert.equal(samplerFromA1111("Euler a"), "euler-a");
    assert.equal(samplerFromA1111("DPM++ 2M Karras"), "dpmpp-2m-karras");
    assert.equal(samplerFromA1111("DPM++ 2M", "Karras"), "dpmpp-2m-karras");
    assert.equal(samplerFromA1111("DPM++ 2M SDE", "Karras"), "dpmpp-2m-sde-karras");
    assert.equal(samplerFromA1111("PLMS"), "pndm");
    assert.equal(samplerFromA1111("DDIM"), "ddim");
    assert.equal(samplerFromA1111("PNDMScheduler"), "PNDMScheduler", "unknown names pass through");
    assert.deepEqual(a1111SamplerName("dpmpp-2m-sde-karras"), { name: "DPM++ 2M SDE", schedule: "Karras" });
    assert.deepEqual(a1111SamplerName("euler"), { name: "Euler" });
    assert.deepEqual(a1111SamplerName("lcm"), { name: "LCM" });
  });

  it("round-trips settings with commas, colons, quotes, newlines and 64-bit seeds", () => {
    const settings: GenerationSettings = {
      prompt: 'a "quoted" word, then: a colon\nand a second line',
      negativePrompt: "bad: hands, extra fingers",
      steps: 31,
      sampler: "euler",
      guidanceScale: 6.25,
      seed: 18446744073709551615n,
      width: 640,
      height: 384,
      modelHash: "0123456789",
      modelName: "my model, v2",
      batchSize: 4,
      batchPos: 3,
      loras: [{ name: "a", hash: "000000000001", scale: -0.5 }],
      guidanceInterval: { sigmaMin: 0.28, sigmaMax: 5.42 },
      extra: { Note: 'x, "y": z' },
    };
    assert.deepEqual(parseParameters(formatParameters(settings)), settings);
    assert.match(formatParameters(settings), /Guidance interval: "0\.28,5\.42"/);
    const small: GenerationSettings = { ...settings, seed: 7, batchSize: undefined, batchPos: undefined };
    delete small.batchSize;
    delete small.batchPos;
    assert.deepEqual(parseParameters(formatParameters(small)), small);
  });

  it("a prompt-only text is all prompt; missing fields are refused", () => {
    const raw = parseParametersText("just a prompt, with: one colon");
    assert.equal(raw.prompt, "just a prompt, with: one colon");
    assert.equal(raw.fields.size, 0);
    assert.throws(
      () => parseParameters("just a prompt"),
      (e: Error) => {
        assert.ok(e instanceof PipelineError);
        assert.match(e.message, /no "Steps" field/);
        return true;
      },
    );
    assert.throws(
      () => parseParameters("p\nSteps: x, Sampler: Euler, CFG scale: 7, Size: 8x8"),
      /"Steps: x" is not an integer/,
    );
    assert.throws(
      () => parseParameters("p\nSteps: 3, Sampler: Euler, CFG scale: 7, Size: 8 by 8"),
      /not WIDTHxHEIGHT/,
    );
  });
});
