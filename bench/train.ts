// Training throughput (images/s) of the class-conditional diffusion trainer on MNIST batches, per backend, on one
// small UNet2DModel config. The reference backend runs fewer steps and no warm-up (it is the slow oracle); the ratio
// column is against it.
import { listBackends, withBackend } from "../src/backend/index.js";
import { UNet2DModel } from "../src/models/unet/unet-2d.js";
import { DDPMScheduler } from "../src/schedulers/ddpm.js";
import { Generator } from "../src/tensor/generator.js";
import { loadMnist, subsetPerClass } from "../src/train/data/mnist.js";
import { DiffusionTrainer } from "../src/train/diffusion-trainer.js";
import { fmt, printTable } from "./util.js";

/** The benchmarked UNet: 16 / 32 channels at 32x32 / 16x16, attention at 16x16, 11 class embeddings. */
export const TRAIN_BENCH_UNET = {
  sample_size: 32,
  in_channels: 1,
  out_channels: 1,
  block_out_channels: [16, 32],
  down_block_types: ["DownBlock2D", "AttnDownBlock2D"],
  up_block_types: ["AttnUpBlock2D", "UpBlock2D"],
  layers_per_block: 1,
  attention_head_dim: 16,
  norm_num_groups: 8,
  num_class_embeds: 11,
};

/** One row of the result. */
export interface TrainBenchRow {
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

/**
 * Measures training images/s on every backend (`steps` on the fast ones, `referenceSteps` on the reference
 * backend), prints a markdown table and returns the rows.
 */
export function runTrainBench(
  opts: { batch?: number; steps?: number; referenceSteps?: number } = {},
): TrainBenchRow[] {
  const batch = opts.batch ?? 16;
  const rows: TrainBenchRow[] = [];
  for (const backend of listBackends()) {
    const steps = backend === "reference" ? (opts.referenceSteps ?? 1) : (opts.steps ?? 5);
    const seconds = withBackend(backend, () => timeTraining(batch, steps, backend !== "reference"));
    rows.push({ backend, batch, steps, seconds, imagesPerSecond: (batch * steps) / seconds });
  }
  const ref = rows.find((r) => r.backend === "reference")?.imagesPerSecond;
  console.log("\n## Training throughput (class-conditional UNet2DModel, 32x32, AdamW + EMA)\n");
  printTable(
    ["backend", "batch", "steps", "s", "images/s", "vs reference"],
    rows.map((r) => [
      r.backend,
      r.batch,
      r.steps,
      fmt(r.seconds, 2),
      fmt(r.imagesPerSecond, 1),
      ref ? `${fmt(r.imagesPerSecond / ref, 1)}x` : "-",
    ]),
  );
  return rows;
}
