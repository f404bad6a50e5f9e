// The WebGPU side of the GPU bench (bench/gpu/run.sh): times the SD 1.5 UNet step (batch 2, 64x64 latent, float16
// weights), the SD VAE decode at 512x512 (float16) and MNIST diffusion training throughput (the shipped model's
// UNet, batch 64) on the `webgpu` device, and prints one JSON object. Weights are random (a timing needs no
// trained values); the outputs are checked to be finite.
//   node --import tsx bench/gpu/time.ts [--allow-software] [--reps=N] [--cases=unet,vae,mnist] [--train-steps=N]
import { initWebGpu } from "../../src/backend/webgpu/index.js";
import {
  AutoencoderKL,
  AutoencoderKLConfig,
  UNet2DConditionConfig,
  UNet2DConditionModel,
} from "../../src/models/index.js";
import { UNet2DModel } from "../../src/models/unet/unet-2d.js";
import * as F from "../../src/ops/index.js";
import { DDPMScheduler } from "../../src/schedulers/ddpm.js";
import { noGrad } from "../../src/tensor/autograd.js";
import { randn } from "../../src/tensor/create.js";
import { Generator } from "../../src/tensor/generator.js";
import { tidy } from "../../src/tensor/scope.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { loadMnist, subsetPerClass } from "../../src/train/data/mnist.js";
import { DiffusionTrainer } from "../../src/train/diffusion-trainer.js";
import { randomizeWeights } from "../sd15-worker.js";
import { TRAIN_BENCH_UNET } from "../train.js";

const args = process.argv.slice(2);
const reps = Number(args.find((a) => a.startsWith("--reps="))?.slice(7) ?? 5);
const cases = new Set((args.find((a) => a.startsWith("--cases="))?.slice(8) ?? "unet,vae,mnist").split(","));
const trainSteps = Number(args.find((a) => a.startsWith("--train-steps="))?.slice(14) ?? 20);
const gpu = await initWebGpu();
if (gpu.info.software && !args.includes("--allow-software")) {
  console.error(
    `bench/gpu: ${gpu.info.description} is a software adapter; pass --allow-software to time it anyway`,
  );
  process.exit(2);
}

async function finite(t: Tensor, what: string): Promise<void> {
  const v = await t.toFloat32ArrayAsync();
  if (!v.every(Number.isFinite)) throw new Error(`bench/gpu: ${what} is not finite`);
}

/** Best and median seconds of `reps` runs of `fn` (each ended by a GPU sync) after `warmup` runs. */
async function time(fn: () => unknown, warmup: number): Promise<{ best: number; median: number }> {
  for (let i = 0; i < warmup; i++) {
    fn();
    await gpu.sync();
  }
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    tidy(() => {
      fn();
    });
    await gpu.sync();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return { best: times[0]!, median: times[Math.floor(times.length / 2)]! };
}

const result: Record<string, unknown> = { adapter: gpu.info.description, features: gpu.info.features };

if (cases.has("unet")) {
  const unet = new UNet2DConditionModel(UNet2DConditionConfig.sd15(), {
    skipInit: true,
    dtype: "float16",
  }).eval();
  randomizeWeights(unet, 11);
  unet.toDevice("webgpu");
  const g = new Generator(0);
  const sample = F.toDevice(randn([2, 4, 64, 64], { generator: g }), "webgpu");
  const text = F.toDevice(randn([2, 77, 768], { generator: g }), "webgpu");
  await finite(
    noGrad(() => unet.call(sample, 999, text)),
    "UNet output",
  );
  result.unetStep = await time(() => noGrad(() => unet.call(sample, 999, text)), 1);
}
if (cases.has("vae")) {
  const vae = new AutoencoderKL(AutoencoderKLConfig.sd(), { skipInit: true, dtype: "float16" }).eval();
  randomizeWeights(vae, 12);
  vae.toDevice("webgpu");
  const z = F.toDevice(randn([1, 4, 64, 64], { generator: new Generator(1) }), "webgpu");
  await finite(
    noGrad(() => vae.decode(z)),
    "VAE output",
  );
  result.vaeDecode512 = await time(() => noGrad(() => vae.decode(z)), 1);
}
if (cases.has("mnist")) {
  const batch = 64;
  const steps = trainSteps;
  const unet = new UNet2DModel(TRAIN_BENCH_UNET, { generator: new Generator(0) }).toDevice("webgpu");
  const data = subsetPerClass(loadMnist().train, 20);
  const trainer = new DiffusionTrainer(unet, new DDPMScheduler({}), data, {
    steps: steps + 3,
    batchSize: batch,
  });
  for (let i = 0; i < 3; i++) trainer.trainStep();
  await trainer.readLosses();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) trainer.trainStep();
  const losses = await trainer.readLosses();
  const seconds = (performance.now() - t0) / 1000;
  if (!losses.every(Number.isFinite)) throw new Error("bench/gpu: a training loss is not finite");
  result.mnistTrain = { batch, steps, seconds, imagesPerSecond: (batch * steps) / seconds };
}
console.log(JSON.stringify(result));
process.exit(0);
