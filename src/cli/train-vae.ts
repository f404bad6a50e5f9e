/**
 * `diffuse train vae --out DIR [...]`: trains an AutoencoderKL on the emoji images into `DIR/vae` (see
 * src/train/run-vae.ts), with a progress bar on a TTY or JSON lines with --json; `--resume DIR` continues a run.
 */
import type { Command } from "commander";
import { loadEmoji } from "../train/data/emoji.js";
import { trainVae } from "../train/run-vae.js";
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

/** Parsed options of `diffuse train vae`. */
export interface TrainVaeCliOptions extends TrainRunCliOptions {
  data: string;
  size: string;
  klWeight: string;
  edgeWeight: string;
  channels: string;
  layersPerBlock: string;
  latentChannels: string;
  normGroups: string;
}

/** The AutoencoderKL config the options describe. */
export function vaeConfigFromOptions(o: TrainVaeCliOptions, size: number) {
  const channels = cliInts("channels", o.channels, 1);
  if (channels.length < 1 || channels.length > 4)
    throw new CliError(`--channels takes 1 to 4 values, got "${o.channels}"`);
  const factor = 2 ** (channels.length - 1);
  if (size % factor !== 0)
    throw new CliError(`--size ${size} is not a multiple of the downscale factor ${factor} of --channels`);
  const groups = cliInt("norm-groups", o.normGroups, 1);
  for (const c of channels) {
    if (c % groups !== 0)
      throw new CliError(`--channels value ${c} is not divisible by --norm-groups ${groups}`);
  }
  return {
    in_channels: 3,
    out_channels: 3,
    down_block_types: channels.map(() => "DownEncoderBlock2D"),
    up_block_types: channels.map(() => "UpDecoderBlock2D"),
    block_out_channels: channels,
    layers_per_block: cliInt("layers-per-block", o.layersPerBlock, 1),
    latent_channels: cliInt("latent-channels", o.latentChannels, 1),
    norm_num_groups: groups,
    sample_size: size,
  };
}

/** Runs `diffuse train vae`. */
export async function runTrainVae(o: TrainVaeCliOptions): Promise<void> {
  if (o.data !== "emoji")
    throw new CliError(`--data must be emoji (the only image set so far), got "${o.data}"`);
  const size = cliInt("size", o.size, 1);
  if (![16, 32, 64].includes(size)) throw new CliError(`--size must be 16, 32 or 64, got ${size}`);
  const vaeConfig = vaeConfigFromOptions(o, size);
  const train = {
    ...optimFromCli(o),
    klWeight: cliNumber("kl-weight", o.klWeight, 0),
    edgeWeight: cliNumber("edge-weight", o.edgeWeight, 0),
  };
  const loop = await loopFromCli(o);
  const data = loadEmoji(size);
  await trainSession(o, async ({ signal, onProgress, onSaved, log }) => {
    const r = await trainVae({
      outDir: o.out,
      data,
      vaeConfig,
      train,
      resumeFrom: o.resume,
      ...loop,
      onProgress,
      signal,
      onSaved,
      extra: { argv: process.argv.slice(2), options: recordedOptions({ ...o }) },
    });
    if (r.reconstruction && r.scalingFactor !== null) {
      const e = r.reconstruction;
      log(
        { type: "metrics", scalingFactor: r.scalingFactor, l1: e.l1, psnr: e.psnr, images: e.images },
        `reconstruction of ${e.images} images: L1 ${e.l1.toFixed(4)}, PSNR ${e.psnr.toFixed(2)} dB; scaling_factor ${r.scalingFactor.toFixed(5)}`,
      );
    }
    return { stopped: r.stopped, step: r.trainer.step };
  });
}

/** Adds `train vae` to `train`. */
export function registerTrainVae(train: Command): void {
  const cmd = train
    .command("vae")
    .description("train an AutoencoderKL (the latent space of a text-to-image model) into DIR/vae")
    .requiredOption("--out <dir>", "output folder (vae/, checkpoint/, samples/)")
    .option("--data <name>", "image set: emoji", "emoji")
    .option("--size <n>", "image side: 16, 32 or 64", "32")
    .option("--kl-weight <x>", "weight of the KL divergence to N(0, I)", "1e-4")
    .option("--edge-weight <x>", "weight of the L1 error of neighbouring-pixel differences", "0.5")
    .option("--channels <list>", "block_out_channels (downscale factor 2^(n - 1))", "32,64,64")
    .option("--layers-per-block <n>", "ResNet layers per block", "1")
    .option("--latent-channels <n>", "latent channels", "4")
    .option("--norm-groups <n>", "GroupNorm groups", "16");
  addTrainRunOptions(cmd, {
    steps: "1500",
    batch: "32",
    samplesHelp: "write a grid of originals over reconstructions and the loss curve",
  }).action(async (o: TrainVaeCliOptions, c: Command) => runTrainVae(resumeOptions(c, o, ["steps"])));
}
