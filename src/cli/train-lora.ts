/**
 * `diffuse train lora --base MODEL --data DIR --out FILE.safetensors [...]`: trains LoRA adapters on a frozen
 * Stable Diffusion 1.x / 2.x model (a diffusers folder such as models/emoji, or a single-file checkpoint) from a
 * folder of images with .txt captions (or a .jsonl list), and writes them as one LoRA file in kohya (A1111, ComfyUI)
 * or PEFT (diffusers) layout that `diffuse generate --lora FILE` applies. Checkpoints and sample grids go to the run
 * folder next to the file (`FILE.run/` for `FILE.safetensors`); `--resume FILE.safetensors` continues a run.
 */
import { existsSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import type { Command } from "commander";
import { LORA_SAVE_FORMATS, type LoraSaveFormat } from "../io/lora-write.js";
import { resumeCheckpoint } from "../train/checkpoint.js";
import { isLoraTargetSet, LORA_TARGET_SETS } from "../train/lora-targets.js";
import { trainLora } from "../train/run-lora.js";
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

/** Parsed options of `diffuse train lora` (`out` is optional when resuming). */
export interface TrainLoraCliOptions extends Omit<TrainRunCliOptions, "out"> {
  out?: string;
  base?: string;
  data?: string;
  tokenizer?: string;
  format: string;
  rank: string;
  alpha?: string;
  targets: string;
  trainTextEncoder?: boolean;
  condDropout: string;
}

/** The run folder of a LoRA file: `my.safetensors` -> `my.run`. */
export function loraRunDir(out: string): string {
  return join(dirname(out), `${basename(out, extname(out))}.run`);
}

/** The run folder a `--resume` names: the LoRA file's run folder, the run folder itself or its checkpoint/. */
function resumeRunDir(resume: string): string {
  if (extname(resume).toLowerCase() === ".safetensors") return loraRunDir(resume);
  if (basename(resume) === "checkpoint" && !existsSync(join(resume, "checkpoint"))) return dirname(resume);
  return resume;
}

/** The LoRA layout and file format of the options (checked). */
export function loraLayoutFromCli(o: TrainLoraCliOptions) {
  if (!isLoraTargetSet(o.targets))
    throw new CliError(`--targets must be one of ${LORA_TARGET_SETS.join(", ")}, got "${o.targets}"`);
  if (!(LORA_SAVE_FORMATS as readonly string[]).includes(o.format))
    throw new CliError(
      `--format must be kohya (AUTOMATIC1111, ComfyUI) or peft (diffusers), got "${o.format}"`,
    );
  const rank = cliInt("rank", o.rank, 1);
  const alpha = o.alpha === undefined ? rank : cliNumber("alpha", o.alpha, Number.MIN_VALUE);
  return {
    layout: { targets: o.targets, rank, alpha, textEncoder: o.trainTextEncoder ?? false },
    format: o.format as LoraSaveFormat,
  };
}

/** Runs `diffuse train lora`. */
export async function runTrainLora(o: TrainLoraCliOptions): Promise<void> {
  let out = o.out;
  if (o.resume && out === undefined) {
    const recorded = resumeCheckpoint(o.resume).state.extra?.out;
    if (typeof recorded === "string") out = recorded;
  }
  if (out === undefined) throw new CliError("--out FILE.safetensors is required (where the LoRA is written)");
  if (extname(out).toLowerCase() !== ".safetensors")
    throw new CliError(`--out must name a .safetensors file (the LoRA), got "${out}"`);
  if (!o.resume && (!o.base || !o.data))
    throw new CliError(
      "a new run needs --base MODEL (a diffusers folder such as models/emoji, or a single-file SD 1.x / 2.x checkpoint) and --data DIR (images with .txt captions, or a .jsonl file)",
    );
  if (o.base && !existsSync(o.base)) throw new CliError(`--base ${o.base} does not exist`);
  const { layout, format } = loraLayoutFromCli(o);
  const train = {
    ...optimFromCli({ ...o, out }),
    condDropout: cliNumber("cond-dropout", o.condDropout, 0, 1),
  };
  const loop = await loopFromCli({ ...o, out });
  const runDir = o.resume ?? loraRunDir(out);
  await trainSession({ json: o.json, out }, async ({ signal, onProgress, onSaved }) => {
    const r = await trainLora({
      base: o.base!,
      data: o.data!,
      tokenizer: o.tokenizer,
      out,
      runDir,
      format,
      layout,
      train,
      resume: o.resume !== undefined,
      ...loop,
      onProgress,
      signal,
      onSaved,
      extra: { argv: process.argv.slice(2), out, options: recordedOptions({ ...o }) },
    });
    return { stopped: r.stopped, step: r.trainer.step };
  });
}

/** Adds `train lora` to `train`. */
export function registerTrainLora(train: Command): void {
  const cmd = train
    .command("lora")
    .description(
      "train a LoRA on a Stable Diffusion 1.x / 2.x model from captioned images, saved as a kohya or PEFT file",
    )
    .option(
      "--base <model>",
      "the frozen base model: a diffusers folder (e.g. models/emoji) or a single file",
    )
    .option("--data <dir>", "a folder of .png / .jpg images with same-name .txt captions, or a .jsonl file")
    .option(
      "--out <file>",
      "the LoRA file to write (.safetensors); checkpoints and samples go to <name>.run/",
    )
    .option("--format <f>", "file layout: kohya (AUTOMATIC1111, ComfyUI) or peft (diffusers)", "kohya")
    .option("--rank <r>", "LoRA rank", "8")
    .option("--alpha <a>", "LoRA alpha: updates are scaled by alpha / rank (default: the rank)")
    .option("--targets <set>", `UNet layers to adapt: ${LORA_TARGET_SETS.join(", ")}`, "attn")
    .option("--train-text-encoder", "also adapt the text encoder's attention and MLP layers")
    .option("--cond-dropout <p>", "probability of training a caption as the empty prompt", "0")
    .option("--tokenizer <dir>", "tokenizer folder for a single-file --base (which carries none)");
  addTrainRunOptions(cmd, {
    steps: "1000",
    batch: "4",
    lr: "1e-4",
    emaDecay: "0",
    emaHelp:
      "EMA decay upper bound; the file gets the EMA weights when > 0 (0: no EMA, the last step's weights)",
    samplesHelp: "write the sample grid (the data set's first captions) and the loss curve",
  }).action(async (o: TrainLoraCliOptions, c: Command) => {
    if (!o.resume) return runTrainLora(o);
    // a run resumed from its LoRA file or folder: the run folder holds the checkpoint and the recorded options
    const runDir = resumeRunDir(o.resume);
    const merged = resumeOptions(c, { ...o, resume: runDir }, ["steps", "format"]);
    return runTrainLora(merged);
  });
}
