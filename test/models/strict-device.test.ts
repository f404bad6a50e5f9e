// The models and every sampler on the strict test device: the same numbers as the reference backend on the CPU,
// and nothing read back on the way.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { resetStrictCounters, setBackend, strictCounters } from "../../src/backend/index.js";
import * as F from "../../src/ops/index.js";
import { SAMPLERS, samplerFromName } from "../../src/schedulers/index.js";
import { noGrad } from "../../src/tensor/autograd.js";
import { randn, tensor } from "../../src/tensor/create.js";
import { Generator } from "../../src/tensor/generator.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { skipWithoutFixtures } from "../helpers.js";
import { tinyParts } from "../pipelines/tiny-pipeline.js";
import { SD15_CONFIG } from "../schedulers/toy.js";

/** The reference backend on the CPU for the comparison runs (the strict device runs the reference kernels). */
function onReference<T>(fn: () => T): T {
  const previous = setBackend("reference");
  try {
    return fn();
  } finally {
    setBackend(previous);
  }
}

async function same(strict: Tensor, cpu: Tensor): Promise<void> {
  assert.equal(strict.device, "strict");
  assert.deepEqual(strict.shape, cpu.shape);
  assert.deepEqual(await strict.toFloat32ArrayAsync(), cpu.toFloat32Array());
}

describe("models on the strict device", { skip: skipWithoutFixtures() }, () => {
  let cpuParts: Awaited<ReturnType<typeof tinyParts>>;
  let strictParts: Awaited<ReturnType<typeof tinyParts>>;
  before(async () => {
    cpuParts = await tinyParts();
    strictParts = await tinyParts();
    strictParts.unet.toDevice("strict");
    strictParts.vae.toDevice("strict");
    strictParts.textEncoder.toDevice("strict");
  });

  it("the UNet, the VAE (whole and tiled) and the text encoder give the CPU's numbers without readbacks", async () => {
    const g = new Generator(5);
    const latents = randn([1, 4, 8, 8], { generator: g });
    const context = randn([1, 7, 32], { generator: g });
    const ids = tensor([[1, 320, 129, 2, 2, 2, 2]], [1, 7], { dtype: "int64" });
    const cpu = onReference(() =>
      noGrad(() => ({
        unet: cpuParts.unet.call(latents, 500, context),
        decoded: cpuParts.vae.decode(latents),
        tiled: cpuParts.vae.decode(latents, { tiled: true, tileSize: 32, tileOverlap: 0.25 }),
        text: cpuParts.textEncoder.call(ids).lastHiddenState,
      })),
    );
    resetStrictCounters();
    const dev = noGrad(() => ({
      unet: strictParts.unet.call(F.toDevice(latents, "strict"), 500, F.toDevice(context, "strict")),
      decoded: strictParts.vae.decode(F.toDevice(latents, "strict")),
      tiled: strictParts.vae.decode(F.toDevice(latents, "strict"), {
        tiled: true,
        tileSize: 32,
        tileOverlap: 0.25,
      }),
      text: strictParts.textEncoder.call(ids).lastHiddenState,
    }));
    assert.equal(strictCounters().readbacks, 0);
    await same(dev.unet, cpu.unet);
    await same(dev.decoded, cpu.decoded);
    await same(dev.tiled, cpu.tiled);
    await same(dev.text, cpu.text);
  });
});

describe("samplers on the strict device", () => {
  it("every sampler's steps give the CPU's latents without readbacks", async () => {
    for (const spec of SAMPLERS) {
      const run = (device: string) => {
        const sampler = samplerFromName(spec.name, SD15_CONFIG);
        sampler.setTimesteps(4);
        const g = new Generator(11);
        let x = F.mul(F.toDevice(randn([1, 2, 4, 4], { generator: g }), device), sampler.initNoiseSigma);
        for (const t of sampler.timesteps) {
          // a stand-in model: a fixed function of the scaled input
          const eps = F.mul(F.tanh(sampler.scaleModelInput(x, t)), 0.5);
          x = sampler.step(eps, t, x, { generator: g }).prevSample;
        }
        return x;
      };
      const cpu = onReference(() => noGrad(() => run("cpu")));
      resetStrictCounters();
      const dev = noGrad(() => run("strict"));
      assert.equal(strictCounters().readbacks, 0, `${spec.name} read back`);
      assert.deepEqual(await dev.toFloat32ArrayAsync(), cpu.toFloat32Array(), spec.name);
    }
  });
});
