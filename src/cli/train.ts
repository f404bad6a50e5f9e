/**
 * `diffuse train mnist --out DIR [...]`: trains a class-conditional diffusion model on the MNIST digits into a
 * pipeline folder (see src/train/run.ts), with a progress bar on a TTY or JSON lines with --json. `--resume DIR`
 * continues a run from its checkpoint; Ctrl-C stops after the current step and writes a checkpoint first.
 */

import type { Command } from "commander";
import { loadMnist } from "../train/data/mnist.js";
import { trainDiffusion } from "../train/run.js";
import { addDeviceOption, resolveDevice } from "./device-option.js";
import { CliError } from "./errors.js";
import { GUIDANCE_INTERVAL_HELP, guidanceIntervalOption } from "./guidance-interval-option.js";
import { cliInt, cliInts, cliNumber } from "./option-values.js";
import { recordedOptions, resumeOptions } from "./resume-options.js";
import { registerTrainClassifier } from "./train-classifier.js";
import { registerTrainClip } from "./train-clip.js";
import { registerTrainLcm } from "./train-lcm.js";
import { registerTrainLora } from "./train-lora.js";
import { trainSession } from "./train-session.js";
import { registerTrainUNet } from "./train-unet.js";
import { registerTrainVae } from "./train-vae.js";

/** Parsed options of `diffuse train`. */
export interface TrainCliOptions {
  out: string;
  device?: string;
  resume?: string;
  steps: string;
  batch: string;
  lr: string;
  warmup?: string;
  emaDecay: string;
  condDropout: string;
  predictionType: string;
  betaSchedule: string;
  seed: string;
  sampleEvery: string;
  checkpointEvery: string;
  channels: string;
  layersPerBlock: string;
  attention: string;
  headDim: string;
  normGroups: string;
  guidanceInterval: string;
  json?: boolean;
}

/**
 * The guidance interval written into new MNIST pipelines (sigma in (0, 2.5]): with guidance at every step, guidance
 * 3 thickens the strokes and narrows their variety (Fréchet distance 3.4x the real-digit reference); skipping the
 * steps above sigma 2.5 keeps the class accuracy near 99% at 1.5x (docs/mnist-eval.md).
 */
export const MNIST_GUIDANCE_INTERVAL = "0,2.5";

/** The UNet2DModel config the options describe (1 input channel, 32x32, 10 classes + the null class). */
export function mnistUNetConfig(
  o: Pick<TrainCliOptions, "channels" | "layersPerBlock" | "attention" | "headDim" | "normGroups">,
) {
  const channels = cliInts("channels", o.channels, 1);
  if (channels.length < 1 || channels.length > 4)
    throw new CliError(`--channels takes 1 to 4 values, got "${o.channels}"`);
  const attn = new Set(
    o.attention === "" || o.attention === "none" ? [] : cliInts("attention", o.attention, 0),
  );
  for (const a of attn) {
    if (a >= channels.length)
      throw new CliError(`--attention level ${a} does not exist (levels 0..${channels.length - 1})`);
  }
  const levels = channels.map((_, i) => i);
  return {
    sample_size: 32,
    in_channels: 1,
    out_channels: 1,
    block_out_channels: channels,
    down_block_types: levels.map((i) => (attn.has(i) ? "AttnDownBlock2D" : "DownBlock2D")),
    up_block_types: [...levels].reverse().map((i) => (attn.has(i) ? "AttnUpBlock2D" : "UpBlock2D")),
    layers_per_block: cliInt("layers-per-block", o.layersPerBlock, 1),
    attention_head_dim: cliInt("head-dim", o.headDim, 1),
    norm_num_groups: cliInt("norm-groups", o.normGroups, 1),
    num_class_embeds: 11,
  };
}

/** Runs `diffuse train mnist`. */
export async function runTrain(dataset: string, o: TrainCliOptions): Promise<void> {
  if (dataset !== "mnist") throw new CliError(`unknown dataset "${dataset}" (available: mnist)`);
  if (!["epsilon", "v_prediction"].includes(o.predictionType)) {
    throw new CliError(`--prediction-type must be epsilon or v_prediction, got "${o.predictionType}"`);
  }
  const schedules = ["linear", "scaled_linear", "squaredcos_cap_v2"];
  if (!schedules.includes(o.betaSchedule)) {
    throw new CliError(`--beta-schedule must be one of ${schedules.join(", ")}, got "${o.betaSchedule}"`);
  }
  const steps = cliInt("steps", o.steps, 1);
  const train = {
    steps,
    batchSize: cliInt("batch", o.batch, 1),
    lr: cliNumber("lr", o.lr, Number.MIN_VALUE),
    warmupSteps: o.warmup !== undefined ? cliInt("warmup", o.warmup, 0) : undefined,
    emaDecay: cliNumber("ema-decay", o.emaDecay, 0, 1),
    condDropout: cliNumber("cond-dropout", o.condDropout, 0, 1),
    seed: cliInt("seed", o.seed, 0),
  };
  const unetConfig = mnistUNetConfig(o);
  const guidanceInterval = guidanceIntervalOption(o.guidanceInterval) ?? undefined;
  const device = await resolveDevice(o.device, (text) => {
    if (!o.json) process.stderr.write(`diffuse: warning: ${text}\n`);
  });
  const { train: data } = loadMnist();
  await trainSession(o, async ({ signal, onProgress, onSaved }) => {
    const { trainer, stopped } = await trainDiffusion({
      outDir: o.out,
      data,
      unetConfig,
      // clip_sample off: clipping the guided x0 estimate while keeping the unclipped noise estimate makes DDIM
      // collapse with guidance (diffusers' DDPMScheduler default is true).
      schedulerConfig: {
        prediction_type: o.predictionType,
        beta_schedule: o.betaSchedule,
        clip_sample: false,
      },
      train,
      guidanceInterval,
      resumeFrom: o.resume,
      device,
      // a GPU run reads the loss back every 10 steps, not every step
      logEvery: device === "cpu" ? 1 : 10,
      sampleEvery: cliInt("sample-every", o.sampleEvery, 0),
      checkpointEvery: cliInt("checkpoint-every", o.checkpointEvery, 0),
      onProgress,
      signal,
      onSaved,
      extra: { argv: process.argv.slice(2), options: recordedOptions({ ...o }) },
    });
    return { stopped, step: trainer.step };
  });
}

/** Adds `train` to the program. */
export function registerTrain(program: Command): void {
  const train = program
    .command("train")
    .description(
      "train a model: mnist (class-conditional diffusion), vae, clip, unet (the text-to-image stages), lcm (distill a few-step student), lora (adapters on a frozen model), classifier (the eval classifier)",
    )
    .argument("[what]", "mnist, vae, clip, unet, lcm, lora or classifier")
    .allowUnknownOption()
    .allowExcessArguments()
    .action((what?: string) => {
      throw new CliError(
        what
          ? `unknown command "train ${what}" (available: mnist, vae, clip, unet, lcm, lora, classifier)`
          : "train what? One of mnist, vae, clip, unet, lcm, lora, classifier, e.g. `diffuse train mnist --out DIR`",
      );
    });
  const mnist = train
    .command("mnist")
    .description("train a class-conditional diffusion model on MNIST into a pipeline folder")
    .requiredOption("--out <dir>", "output pipeline folder (also holds checkpoint/ and samples/)")
    .option("--resume <dir>", "continue the run whose output folder (or checkpoint/) this is")
    .option("--steps <n>", "optimisation steps", "3000")
    .option("--batch <n>", "images per step", "64")
    .option("--lr <x>", "peak learning rate (AdamW, warm-up then cosine)", "1e-3")
    .option("--warmup <n>", "warm-up steps (default min(200, steps / 10))")
    .option("--ema-decay <x>", "EMA decay upper bound", "0.999")
    .option("--cond-dropout <p>", "probability of training on the null class", "0.1")
    .option("--prediction-type <t>", "training target: epsilon or v_prediction", "v_prediction")
    .option(
      "--beta-schedule <s>",
      "noise schedule: linear, scaled_linear or squaredcos_cap_v2",
      "squaredcos_cap_v2",
    )
    .option("--seed <n>", "seed of weights, noise and data order", "0")
    .option(
      "--sample-every <k>",
      "write a sample grid and the loss curve every k steps (0: at the end)",
      "500",
    )
    .option("--checkpoint-every <k>", "write a checkpoint every k steps (0: at the end)", "250")
    .option("--channels <list>", "block_out_channels", "32,64,64")
    .option("--layers-per-block <n>", "ResNet layers per down block", "1")
    .option("--attention <levels>", "resolution levels with self-attention (0 = 32x32; 'none')", "2")
    .option("--head-dim <n>", "attention_head_dim (channels per head)", "32")
    .option("--norm-groups <n>", "GroupNorm groups", "16")
    .option(
      "--guidance-interval <lo,hi>",
      `the sampling default written into the pipeline: ${GUIDANCE_INTERVAL_HELP}`,
      MNIST_GUIDANCE_INTERVAL,
    )
    .option("--json", "print progress as JSON lines");
  addDeviceOption(mnist).action(async (o: TrainCliOptions, cmd: Command) =>
    runTrain("mnist", resumeOptions(cmd, o, ["steps"])),
  );
  registerTrainVae(train);
  registerTrainClip(train);
  registerTrainUNet(train);
  registerTrainLcm(train);
  registerTrainLora(train);
  registerTrainClassifier(train, "classifier");
}
