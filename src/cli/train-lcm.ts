/**
 * `diffuse train lcm --teacher DIR --out DIR [...]`: latent consistency distillation of a text-to-image teacher
 * (Luo et al. 2023) on the emoji images into a Stable Diffusion folder whose UNet takes the guidance scale as an
 * embedding and whose scheduler is LCMScheduler: `diffuse generate --model OUT --steps 4` samples it; with
 * `--lora RANK` into an LCM-LoRA for the teacher: `diffuse generate --model TEACHER --lora
 * OUT/pytorch_lora_weights.safetensors --sampler lcm --steps 4 --guidance 1` (see src/train/run-lcm.ts).
 */
import type { Command } from "commander";
import { CONSISTENCY_LOSSES, type ConsistencyLoss } from "../train/consistency.js";
import { loadEmoji } from "../train/data/emoji.js";
import { trainLcm } from "../train/run-lcm.js";
import { CliError } from "./errors.js";
import { cliInt, cliNumber } from "./option-values.js";
import { recordedOptions, resumeOptions } from "./resume-options.js";
import {
  addTrainRunOptions,
  loopFromCli,
  optimFromCli,
  type TrainRunCliOptions,
  trainSession,
} from "./train-session.js";

/** Parsed options of `diffuse train lcm`. */
export interface TrainLcmCliOptions extends TrainRunCliOptions {
  teacher?: string;
  data: string;
  skip: string;
  wMin: string;
  wMax: string;
  loss: string;
  huberC: string;
  sampleGuidance?: string;
  lora?: string;
}

/** The distillation hyperparameters of the options (checked). */
export function lcmFromCli(o: TrainLcmCliOptions) {
  if (!(CONSISTENCY_LOSSES as readonly string[]).includes(o.loss))
    throw new CliError(`--loss must be one of ${CONSISTENCY_LOSSES.join(", ")}, got "${o.loss}"`);
  const wMin = cliNumber("w-min", o.wMin, 0);
  const wMax = cliNumber("w-max", o.wMax, 0);
  if (wMin > wMax)
    throw new CliError(`--w-min ${wMin} is above --w-max ${wMax}: the guidance range is inverted; swap them`);
  return {
    ...optimFromCli(o),
    skip: cliInt("skip", o.skip, 1),
    wMin,
    wMax,
    loss: o.loss as ConsistencyLoss,
    huberC: cliNumber("huber-c", o.huberC, Number.MIN_VALUE),
  };
}

/** Runs `diffuse train lcm`. */
export async function runTrainLcm(o: TrainLcmCliOptions): Promise<void> {
  if (o.data !== "emoji")
    throw new CliError(`--data must be emoji (the only image set so far), got "${o.data}"`);
  if (!o.resume && !o.teacher)
    throw new CliError("a new run needs --teacher DIR (a text-to-image pipeline folder, e.g. models/emoji)");
  if (o.resume && o.teacher)
    throw new CliError(
      "--teacher applies to a new run; a resumed run uses the copy of the teacher in its folder",
    );
  const train = lcmFromCli(o);
  const sampleGuidance =
    o.sampleGuidance === undefined ? undefined : cliNumber("sample-guidance", o.sampleGuidance, 0);
  const lora = o.lora === undefined ? undefined : { rank: cliInt("lora", o.lora, 1) };
  const loop = await loopFromCli(o);
  const data = loadEmoji(32);
  await trainSession(o, async ({ signal, onProgress, onSaved }) => {
    const r = await trainLcm({
      outDir: o.out,
      data,
      teacherFrom: o.teacher,
      train,
      lora,
      resumeFrom: o.resume,
      sampleGuidance,
      ...loop,
      onProgress,
      signal,
      onSaved,
      extra: { argv: process.argv.slice(2), options: recordedOptions({ ...o }) },
    });
    return { stopped: r.stopped, step: r.trainer.step };
  });
}

/** Adds `train lcm` to `train`. */
export function registerTrainLcm(train: Command): void {
  const cmd = train
    .command("lcm")
    .description(
      "distill a text-to-image model into a latent consistency model (1-8 steps): a student UNet, or an LCM-LoRA with --lora",
    )
    .requiredOption(
      "--out <dir>",
      "output pipeline folder (also holds checkpoint/, samples/ and teacher_unet/)",
    )
    .option(
      "--teacher <dir>",
      "the teacher of a new run: a text-to-image pipeline folder (e.g. models/emoji)",
    )
    .option("--data <name>", "image set the teacher was trained on: emoji", "emoji")
    .option("--skip <k>", "skipping interval k in training timesteps (the paper's 20)", "20")
    .option("--w-min <w>", "smallest guidance weight w drawn (guidance scale 1 + w)", "1")
    .option("--w-max <w>", "largest guidance weight w drawn", "7")
    .option("--loss <d>", `distance of the consistency loss: ${CONSISTENCY_LOSSES.join(" or ")}`, "l2")
    .option("--huber-c <c>", "c of the pseudo-Huber loss", "0.001")
    .option(
      "--lora <rank>",
      "train an LCM-LoRA of this rank on the teacher (written as OUT/pytorch_lora_weights.safetensors) instead of a full student",
    )
    .option("--sample-guidance <g>", "guidance scale of the sample grids (default 3; 1 with --lora)");
  addTrainRunOptions(cmd, {
    steps: "1000",
    batch: "32",
    lr: "1e-4",
    emaDecay: "0.95",
    emaHelp: "EMA rate mu of the target network (the paper's 0.95; the student saved is the target)",
    samplesHelp: "write a grid of the sample prompts at 1, 2 and 4 steps and the loss curve",
  }).action(async (o: TrainLcmCliOptions, c: Command) =>
    // the teacher a run was started from is copied into its folder: a resumed run does not take the recorded path
    runTrainLcm({ ...resumeOptions(c, o, ["steps", "sampleGuidance"]), teacher: o.teacher }),
  );
}
