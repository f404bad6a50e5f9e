// Inpainting: masks binarised in pixel space and moved to the latent grid with PyTorch's nearest sampling (a
// 512x512 mask becomes 64x64), mask size checks, the known region pasted back after every step for 4-channel
// UNets, and the [latents, mask, masked-image latents] input of 9-channel inpainting UNets, with the random draws
// rebuilt by hand in diffusers' order.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { Generator, noGrad, randn, type Tensor } from "../../src/index.js";
import type { Image } from "../../src/io/image.js";
import { UNet2DConditionModel } from "../../src/models/index.js";
import { mul, narrow } from "../../src/ops/index.js";
import {
  type GenerateOptions,
  maskedImage,
  maskToLatentGrid,
  PipelineError,
  preprocessImage,
  preprocessMask,
  type StableDiffusionComponents,
} from "../../src/pipelines/index.js";
import { schedulerFromConfig } from "../../src/schedulers/index.js";
import { assertClose, skipWithoutFixtures } from "../helpers.js";
import { modelsDir, SD15_SCHEDULER, testImage, tinyParts, tinyPipeline } from "./tiny-pipeline.js";

/** A gray mask image: white where `white(x, y)`. */
function maskImage(width: number, height: number, white: (x: number, y: number) => boolean): Image {
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) data[y * width + x] = white(x, y) ? 255 : 0;
  return { width, height, channels: 1, data };
}

/** Values of channel `c` of sample `b` of [B, C, H, W] at (x, y). */
function at(t: Tensor, b: number, c: number, y: number, x: number): number {
  const [, C, H, W] = t.shape as number[];
  return t.toFloat32Array()[((b * C! + c) * H! + y) * W! + x]!;
}

describe("inpainting masks", () => {
  it("binarises at 0.5 after gray conversion (white = repaint)", () => {
    const gray: Image = { width: 2, height: 1, channels: 1, data: Uint8Array.from([127, 128]) };
    assert.deepEqual(Array.from(preprocessMask(gray, 2, 1).toFloat32Array()), [0, 1]);
    const rgb: Image = { width: 2, height: 1, channels: 3, data: Uint8Array.from([255, 0, 0, 255, 255, 0]) };
    assert.deepEqual(
      Array.from(preprocessMask(rgb, 2, 1).toFloat32Array()),
      [0, 1],
      "0.299 red < 0.5 < yellow",
    );
  });

  it("a 512x512 mask becomes 64x64 on the latent grid of an SD VAE (factor 8)", () => {
    const mask = preprocessMask(
      maskImage(512, 512, (x, y) => x >= 128 && x < 384 && y >= 200),
      512,
      512,
    );
    const grid = maskToLatentGrid(mask, 8);
    assert.deepEqual(grid.shape, [1, 1, 64, 64]);
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        const want = x >= 16 && x < 48 && y * 8 >= 200 ? 1 : 0;
        assert.equal(at(grid, 0, 0, y, x), want, `(${x}, ${y})`);
      }
    }
  });

  it("nearest sampling reads the top-left pixel of each cell (PyTorch's legacy nearest)", () => {
    const odd = preprocessMask(
      maskImage(16, 16, (x, y) => x % 2 === 1 || y % 2 === 1),
      16,
      16,
    );
    assert.ok(
      maskToLatentGrid(odd, 2)
        .toFloat32Array()
        .every((v) => v === 0),
    );
    const even = preprocessMask(
      maskImage(16, 16, (x, y) => x % 2 === 0 && y % 2 === 0),
      16,
      16,
    );
    assert.ok(
      maskToLatentGrid(even, 2)
        .toFloat32Array()
        .every((v) => v === 1),
    );
  });

  it("mask tensors must have the image size", () => {
    assert.throws(
      () => preprocessMask(randn([1, 1, 8, 8]), 16, 16),
      /mask tensor is 8x8 but the image size is 16x16/,
    );
    assert.throws(() => preprocessMask(randn([1, 3, 16, 16]), 16, 16), /mask tensor must be \[1, 1, H, W\]/);
  });
});

describe("inpainting pipelines", { skip: skipWithoutFixtures() }, () => {
  let parts: Omit<StableDiffusionComponents, "scheduler">;
  before(async () => {
    parts = await tinyParts();
  });
  const leftHalf = () => maskImage(16, 16, (x) => x < 8);

  it("refuses a mask whose size differs from the init image's, and a mask without an image", async () => {
    const pipe = tinyPipeline(parts);
    await assert.rejects(
      pipe.generate({
        prompt: "x",
        initImage: testImage(16, 16),
        mask: maskImage(12, 12, () => true),
        steps: 2,
      }),
      (e: Error) => {
        assert.ok(e instanceof PipelineError);
        assert.match(e.message, /mask is 12x12 but the init image is 16x16/);
        return true;
      },
    );
    await assert.rejects(
      pipe.generate({ prompt: "x", mask: leftHalf(), steps: 2 }),
      /a mask needs an initImage/,
    );
  });

  it("4-channel UNet: the known region is re-noised each step and equals the image latents at the end", async () => {
    const pipe = tinyPipeline(parts);
    const image = testImage(16, 16, 4);
    const seen: Tensor[] = [];
    const r = await pipe.generate({
      prompt: "a cat",
      initImage: image,
      mask: leftHalf(),
      steps: 4,
      seed: 21,
      onProgress: (e) => {
        if (e.sample) seen.push(e.sample);
      },
    });
    assert.equal(r.settings.strength, 1, "inpainting defaults to strength 1 (diffusers)");
    // draws: posterior sample of the init image, then the noise
    const g = new Generator(21);
    const { imageLatents, noise } = noGrad(() => {
      const dist = parts.vae.encode(preprocessImage(image, 16, 16)).latentDist;
      return { imageLatents: mul(dist.sample(g), 0.18215), noise: randn([1, 4, 8, 8], { generator: g }) };
    });
    const s = schedulerFromConfig({ ...SD15_SCHEDULER, _class_name: "DDIMScheduler" });
    s.setTimesteps(4);
    const known1 = s.addNoise(imageLatents, noise, s.timesteps[1]!);
    let repainted = 0;
    for (let c = 0; c < 4; c++) {
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          if (x >= 4) {
            assert.ok(
              Math.abs(at(seen[0]!, 0, c, y, x) - at(known1, 0, c, y, x)) < 1e-5,
              "step 0, kept region",
            );
            assert.equal(at(r.latents, 0, c, y, x), at(imageLatents, 0, c, y, x), "final, kept region");
          } else if (Math.abs(at(r.latents, 0, c, y, x) - at(imageLatents, 0, c, y, x)) > 1e-3) {
            repainted++;
          }
        }
      }
    }
    assert.ok(repainted > 100, `the masked region was repainted (${repainted} of 128 values changed)`);
  });

  it("9-channel UNet: input = [latents, mask, masked-image latents], drawn after the noise", async () => {
    const config = JSON.parse(readFileSync(join(modelsDir(), "tiny_unet", "config.json"), "utf8"));
    const unet = new UNet2DConditionModel(
      { ...config, in_channels: 9 },
      { generator: new Generator(3) },
    ).eval();
    const pipe = tinyPipeline({ ...parts, unet });
    assert.equal(pipe.isInpaintingUNet, true);
    await assert.rejects(pipe.generate({ prompt: "x", steps: 2 }), /inpainting UNet \(9 input channels\)/);
    const image = testImage(16, 16, 5);
    let first: Tensor | null = null;
    const forward = unet.forward.bind(unet);
    unet.forward = (...args) => {
      first ??= args[0];
      return forward(...args);
    };
    await pipe.generate({ prompt: "a cat", initImage: image, mask: leftHalf(), steps: 3, seed: 8 });
    const input = first! as Tensor;
    assert.deepEqual(input.shape, [2, 9, 8, 8]);
    const g = new Generator(8);
    const noise = randn([1, 4, 8, 8], { generator: g });
    const maskPx = preprocessMask(leftHalf(), 16, 16);
    const masked = noGrad(() =>
      mul(
        parts.vae.encode(maskedImage(preprocessImage(image, 16, 16), maskPx)).latentDist.sample(g),
        0.18215,
      ),
    );
    const grid = maskToLatentGrid(maskPx, 2);
    for (let b = 0; b < 2; b++) {
      const row = narrow(input, 0, b, 1);
      assertClose(
        narrow(row, 1, 0, 4).toFloat32Array(),
        noise.toFloat32Array(),
        1e-6,
        "latents (DDIM sigma 1)",
      );
      assert.deepEqual(Array.from(narrow(row, 1, 4, 1).toFloat32Array()), Array.from(grid.toFloat32Array()));
      assertClose(
        narrow(row, 1, 5, 4).toFloat32Array(),
        masked.toFloat32Array(),
        1e-5,
        "masked image latents",
      );
    }
    // outside a guidance interval the extra channels go in as their conditional half alongside the latents
    const run = (opts: Partial<GenerateOptions>) =>
      pipe.generate({ prompt: "a cat", initImage: image, mask: leftHalf(), steps: 3, seed: 8, ...opts });
    const outside = await run({ guidanceScale: 7.5, guidanceInterval: { sigmaMin: 1e6, sigmaMax: 2e6 } });
    const condOnly = await run({ guidanceScale: 1 });
    assertClose(outside.latents.toFloat32Array(), condOnly.latents.toFloat32Array(), 1e-5, "no step guided");
  });
});
