/**
 * `diffuse train unet --vae DIR --text-encoder DIR --out DIR [...]`: trains a text-conditioned latent diffusion
 * UNet on the emoji images into a Stable Diffusion pipeline folder (see src/train/run-text-to-image.ts).
 */
import type { Command } from "commander";
import { loadEmoji } from "../train/data/emoji.js";
import { trainTextToImage } from "../train/run-text-to-image.js";
import { CliError } from "./errors.js";
import { cliInt, cliInts, cliNumber } from "./option-values.js";
import { recordedOptions, resumeOptions } from "./resume-options.js";
import {
  addTrainRunOptions,
  loopFromCli,
  optimFromCli,
  type TrainRunCliOptions,
  trainSession,
} from "./train-session.js";

/** Parsed options of `diffuse train unet`. */
export interface TrainUNetCliOptions extends TrainRunCliOptions {
  vae?: string;
  textEncoder?: string;
  data: string;
  condDropout: string;
  predictionType: string;
  betaSchedule: string;
  channels: string;
  layersPerBlock: string;
  heads: string;
  normGroups: string;
}

/** The UNet2DConditionModel config the options describe (cross-attention at every level). */
export function textUNetConfig(o: TrainUNetCliOptions) {
  const channels = cliInts("channels", o.channels, 1);
  if (channels.length < 1 || channels.length > 4)
    throw new CliError(`--channels takes 1 to 4 values, got "${o.channels}"`);
  const groups = cliInt("norm-groups", o.normGroups, 1);
  for (const c of channels) {
    if (c % groups !== 0)
      throw new CliError(`--channels value ${c} is not divisible by --norm-groups ${groups}`);
  }
  return {
    block_out_channels: channels,
    down_block_types: channels.map(() => "CrossAttnDownBlock2D"),
    up_block_types: channels.map(() => "CrossAttnUpBlock2D"),
    layers_per_block: cliInt("layers-per-block", o.layersPerBlock, 1),
    // diffusers' SD 1.x naming: attention_head_dim is the number of heads
    attention_head_dim: cliInt("heads", o.heads, 1),
    norm_num_groups: groups,
  };
}

/** Runs `diffuse train unet`. */
export async function runTrainUNet(o: TrainUNetCliOptions): Promise<void> {
  if (o.data !== "emoji")
    throw new CliError(`--data must be emoji (the only image set so far), got "${o.data}"`);
  if (!o.resume && (!o.vae || !o.textEncoder))
    throw new CliError(
      "a new run needs --vae DIR (a `train vae` output) and --text-encoder DIR (a `train clip` output)",
    );
  if (o.resume && (o.vae || o.textEncoder))
    throw new CliError(
      "--vae and --text-encoder apply to a new run; a resumed run uses the copies in its folder",
    );
  if (!["epsilon", "v_prediction"].includes(o.predictionType))
    throw new CliError(`--prediction-type must be epsilon or v_prediction, got "${o.predictionType}"`);
  const schedules = ["linear", "scaled_linear", "squaredcos_cap_v2"];
  if (!schedules.includes(o.betaSchedule))
    throw new CliError(`--beta-schedule must be one of ${schedules.join(", ")}, got "${o.betaSchedule}"`);
  const unetConfig = textUNetConfig(o);
  const train = { ...optimFromCli(o), condDropout: cliNumber("cond-dropout", o.condDropout, 0, 1) };
  const loop = await loopFromCli(o);
  const data = loadEmoji(32);
  await trainSession(o, async ({ signal, onProgress, onSaved }) => {
    const r = await trainTextToImage({
      outDir: o.out,
      data,
      vaeFrom: o.vae,
      textFrom: o.textEncoder,
      unetConfig,
      schedulerConfig: {
        prediction_type: o.predictionType,
        beta_schedule: o.betaSchedule,
        clip_sample: false,
      },
      train,
      resumeFrom: o.resume,
      ...loop,
      onProgress,
      signal,
      onSaved,
      extra: { argv: process.argv.slice(2), options: recordedOptions({ ...o }) },
    });
    return { stopped: r.stopped, step: r.trainer.step };
  });
}

/** Adds `train unet` to `train`. */
export function registerTrainUNet(train: Command): void {
  const cmd = train
    .command("unet")
    .description("train a text-to-image latent diffusion UNet into a Stable Diffusion pipeline folder")
    .requiredOption("--out <dir>", "output pipeline folder (also holds checkpoint/ and samples/)")
    .option("--vae <dir>", "the VAE of a new run: a `diffuse train vae` output folder")
    .option("--text-encoder <dir>", "the text encoder of a new run: a `diffuse train clip` output folder")
    .option("--data <name>", "image set: emoji", "emoji")
    .option("--cond-dropout <p>", "probability of training on the empty prompt", "0.1")
    .option("--prediction-type <t>", "training target: epsilon or v_prediction", "v_prediction")
    .option(
      "--beta-schedule <s>",
      "noise schedule: linear, scaled_linear or squaredcos_cap_v2",
      "squaredcos_cap_v2",
    )
    .option("--channels <list>", "block_out_channels (one level per value)", "64,128")
    .option("--layers-per-block <n>", "ResNet + transformer layers per down block", "1")
    .option("--heads <n>", "attention heads", "4")
    .option("--norm-groups <n>", "GroupNorm groups", "16");
  addTrainRunOptions(cmd, {
    steps: "4000",
    batch: "64",
    samplesHelp: "write a grid of sample prompts and the loss curve",
  }).action(async (o: TrainUNetCliOptions, c: Command) =>
    // the VAE and text encoder a run was started from are copied into its folder: a resumed run does not take the
    // recorded paths, only ones typed now (which are refused)
    runTrainUNet({ ...resumeOptions(c, o, ["steps"]), vae: o.vae, textEncoder: o.textEncoder }),
  );
}
