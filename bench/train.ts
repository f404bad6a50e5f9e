// Training throughput (images/s) per backend: the class-conditional diffusion trainer on MNIST batches with the
// shipped model's UNet2DModel config, and the digit classifier CNN (conv + GroupNorm + SiLU blocks, AdamW on
// cross-entropy). The reference backend runs fewer steps and no warm-up (it is the slow oracle); the ratio column
// is against it.
import { readFileSync } from "node:fs";
import { listBackends, withBackend } from "../src/backend/index.js";
import { DigitClassifier } from "../src/models/classifier/digit-classifier.js";
import { UNet2DModel } from "../src/models/unet/unet-2d.js";
import { AdamW } from "../src/nn/optim/index.js";
import { cross_entropy } from "../src/ops/index.js";
import { DDPMScheduler } from "../src/schedulers/ddpm.js";
import { tensor } from "../src/tensor/create.js";
import { Generator } from "../src/tensor/generator.js";
import { loadMnist, subsetPerClass } from "../src/train/data/mnist.js";
import { DiffusionTrainer } from "../src/train/diffusion-trainer.js";
import { fmt, printTable } from "./util.js";

/** The benchmarked UNet: the shipped MNIST model's config (16 / 32 / 64 channels, attention at 8x8). */
export const TRAIN_BENCH_UNET = JSON.parse(
  readFileSync(new URL("../models/mnist/unet/config.json", import.meta.url), "utf8"),
) as Record<string, unknown>;

/** One row of the result. */
export interface TrainBenchRow {
  model: "unet" | "classifier";
  backend: string;
  batch: number;
  steps: number;
  seconds: number;
  imagesPerSecond: number;
}

/** Times `steps` training steps (after a warm-up step unless `warmup` is false) of a fresh trainer. */
function timeTraining(batch: number, steps: number, warmup: boolean): number {
  const data = subsetPerClass(loadMnist().train, 20);
  const unet = new UNet2DModel(TRAIN_BENCH_UNET, { generator: new Generator(0) });
  const trainer = new DiffusionTrainer(unet, new DDPMScheduler({}), data, {
    steps: steps + 1,
    batchSize: batch,
  });
  if (warmup) trainer.trainStep();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) trainer.trainStep();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Times `steps` AdamW steps of the digit classifier on batches of real digits (after a warm-up step). */
function timeClassifier(batch: number, steps: number, warmup: boolean): number {
  const data = subsetPerClass(loadMnist().train, 20);
  const g = new Generator(0);
  const model = new DigitClassifier(undefined, { generator: g });
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  const n = batch * 32 * 32;
  const x = tensor(data.images.subarray(0, n), [batch, 1, 32, 32]);
  const y = tensor(data.labels.slice(0, batch), [batch]);
  const step = () => {
    opt.zeroGrad();
    cross_entropy(model.call(x), y).backward();
    opt.step();
  };
  if (warmup) step();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) step();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * Measures training images/s on every backend (`steps` on the fast ones, `referenceSteps` on the reference
 * backend), prints a markdown table and returns the rows.
 */
export function runTrainBench(
  opts: { batch?: number; steps?: number; referenceSteps?: number } = {},
): TrainBenchRow[] {
  const batch = opts.batch ?? 16;
  const rows: TrainBenchRow[] = [];
  for (const model of ["unet", "classifier"] as const) {
    for (const backend of listBackends()) {
      const ref = backend === "reference";
      const steps = ref ? (opts.referenceSteps ?? 1) : (opts.steps ?? 5) * (model === "classifier" ? 4 : 1);
      const time = model === "unet" ? timeTraining : timeClassifier;
      const seconds = withBackend(backend, () => time(batch, steps, !ref));
      rows.push({ model, backend, batch, steps, seconds, imagesPerSecond: (batch * steps) / seconds });
    }
  }
  const names = {
    unet: "diffusion UNet (models/mnist config, 32x32, AdamW + EMA)",
    classifier: "digit classifier CNN (AdamW, cross-entropy)",
  };
  console.log("\n## Training throughput\n");
  printTable(
    ["model", "backend", "batch", "steps", "s", "images/s", "vs reference"],
    rows.map((r) => {
      const ref = rows.find((q) => q.model === r.model && q.backend === "reference")?.imagesPerSecond;
      return [
        names[r.model],
        r.backend,
        r.batch,
        r.steps,
        fmt(r.seconds, 2),
        fmt(r.imagesPerSecond, 1),
        ref ? `${fmt(r.imagesPerSecond / ref, 1)}x` : "-",
      ];
    }),
  );
  return rows;
}
