// A whole latent consistency distillation run (see lcm-trainer.ts) into a Stable Diffusion pipeline folder. A new
// run checks the teacher folder and copies its vae/, text_encoder/ and tokenizer/ into the output, and its unet/
// as teacher_unet/ (so a resumed run needs nothing else); the images are encoded once by the teacher's VAE. Every K
// steps a grid of the sample prompts drawn by the student (EMA weights) at 1, 2 and 4 LCM steps, and/or a
// checkpoint; at the end (or when stopped) unet/ (the student, with `time_cond_proj_dim`), an LCMScheduler
// scheduler/ on the teacher's noise schedule and model_index.json.
// Layout: model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/, teacher_unet/, checkpoint/, samples/.
// An LCM-LoRA run (`lora`) writes pytorch_lora_weights.safetensors (kohya layout, the name diffusers'
// load_lora_weights looks for in a folder), and the folder's unet/ is the teacher with that LoRA merged in.
import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { imageGrid, writePng } from "../io/image.js";
import { loraFileMetadata, saveLoraFile } from "../io/lora-write.js";
import { packageVersion } from "../io/package-version.js";
import { CLIPTextModel } from "../models/clip/text-model.js";
import { CLIPTokenizer } from "../models/clip/tokenizer.js";
import { UNet2DConditionModel } from "../models/unet/unet-2d-condition.js";
import { AutoencoderKL } from "../models/vae/autoencoder-kl.js";
import { LoraNetwork } from "../nn/lora-network.js";
import { applyLora, loadLora, modelFamily } from "../pipelines/lora.js";
import { fileSha256, modelHashFile } from "../pipelines/model-hash.js";
import { readModelIndex } from "../pipelines/model-index.js";
import { StableDiffusionPipeline } from "../pipelines/stable-diffusion.js";
import { LCMScheduler } from "../schedulers/lcm.js";
import type { Device } from "../tensor/device.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import { loadCheckpoint, resumeCheckpoint } from "./checkpoint.js";
import { checkSkip } from "./consistency.js";
import type { EmojiSet } from "./data/emoji.js";
import { type LcmDistillOptions, LcmTrainer, resolveLcmOptions, studentFromTeacher } from "./lcm-trainer.js";
import { type RunLoopOptions, trainIntoFolder, writeLossCurve } from "./loop.js";
import { type LoraTargetSet, unetLoraPaths } from "./lora-targets.js";
import { SAMPLE_PROMPTS, writeTextToImagePipeline } from "./run-text-to-image.js";
import { CaptionEncoder } from "./text-latents.js";
import { encodeLatents } from "./text-to-image-trainer.js";
import { withEmaWeights } from "./trainer-base.js";

/** LCM steps of the rows of the sample grids. */
export const LCM_SAMPLE_STEPS = [1, 2, 4];

/** The components a teacher folder needs, and where a distillation run keeps its copy of the teacher UNet. */
const TEACHER_PARTS = ["unet", "vae", "text_encoder", "tokenizer", "scheduler"] as const;
const TEACHER_UNET = "teacher_unet";
/** The LCM-LoRA file an LCM-LoRA run writes into its folder. */
export const LCM_LORA_FILE = "pytorch_lora_weights.safetensors";

/** The adapters of an LCM-LoRA run. */
export interface LcmLoraLayout {
  rank: number;
  /** α (default rank). */
  alpha?: number;
  /** Layers adapted (default "all-linear+conv", as the LCM-LoRA paper's adapters on every linear and conv layer). */
  targets?: LoraTargetSet;
}

/** What an LCM-LoRA run records in its checkpoints (`lcmLora`): its adapters and the teacher it was made for. */
type LcmLoraRecord = {
  rank: number;
  alpha: number;
  paths: string[];
  teacherName: string;
  teacherSha256: string;
};

/** Options of {@link trainLcm}. */
export interface TrainLcmOptions extends RunLoopOptions {
  outDir: string;
  data: EmojiSet;
  /** A new run's teacher: a Stable Diffusion pipeline folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/). */
  teacherFrom?: string;
  /** Hyperparameters of a new run; when resuming only `steps` is taken from here (to extend a run). */
  train: LcmDistillOptions;
  /** Train an LCM-LoRA on the teacher instead of a full student (a new run; a resumed run keeps its kind). */
  lora?: LcmLoraLayout;
  /** Continue from this folder's checkpoint (an output folder or its checkpoint/ folder). */
  resumeFrom?: string;
  device?: Device;
  /**
   * Guidance scale of the sample grids (default 3, which a full student takes as its embedding; 1 for an LCM-LoRA,
   * whose guidance is learnt into it).
   */
  sampleGuidance?: number;
}

/** Throws unless `dir` is a pipeline folder with every part a distillation needs (and `out` is another folder). */
export async function checkTeacherFolder(dir: string, out: string): Promise<void> {
  if (!existsSync(dir))
    throw new ArgumentError(
      `teacher folder ${dir} not found; pass a Stable Diffusion folder such as models/emoji`,
    );
  if (resolve(dir) === resolve(out))
    throw new ArgumentError(`the output folder ${out} is the teacher folder; write the student elsewhere`);
  const index = await readModelIndex(dir).catch((err: Error) => {
    throw new ArgumentError(`teacher ${dir}: not a pipeline folder (${err.message})`);
  });
  for (const part of TEACHER_PARTS) {
    if (!index.components[part] || !existsSync(join(dir, part)))
      throw new ArgumentError(
        `teacher ${dir} has no ${part}/ (model_index.json: ${JSON.stringify(index.components[part] ?? null)}); distillation needs a full text-to-image folder with ${TEACHER_PARTS.join(", ")}`,
      );
  }
}

/** The student's LCMScheduler config: the teacher's noise schedule, `original_inference_steps` = T / k. */
export function lcmSchedulerConfig(
  teacherScheduler: Record<string, unknown>,
  skip: number,
  timestepScaling = 10,
): Record<string, unknown> & { _class_name: string } {
  const { _class_name: _, _diffusers_version: __, ...sched } = teacherScheduler;
  const numTrain = (sched.num_train_timesteps as number | undefined) ?? 1000;
  checkSkip(skip, numTrain, "lcm scheduler");
  return {
    ...sched,
    _class_name: "LCMScheduler",
    original_inference_steps: numTrain / skip,
    timestep_scaling: timestepScaling,
  };
}

/** Builds the trainer: a new student from the teacher folder, or one restored from `resumeFrom`. */
export async function createLcmTrainer(opts: TrainLcmOptions): Promise<LcmTrainer> {
  const out = opts.outDir;
  let resumed: {
    dir: string;
    unetConfig: Record<string, unknown>;
    schedulerConfig: Record<string, unknown>;
    options: object;
    lora: LcmLoraRecord | null;
  } | null = null;
  let newScheduler: LCMScheduler | null = null;
  if (opts.resumeFrom) {
    const r = resumeCheckpoint(opts.resumeFrom);
    if (!r.state.unetConfig || !r.state.schedulerConfig || !existsSync(join(opts.resumeFrom, TEACHER_UNET)))
      throw new ArgumentError(`resume: ${opts.resumeFrom} is not a latent consistency distillation run`);
    const lora = (r.state.lcmLora as LcmLoraRecord | undefined) ?? null;
    if (opts.lora && (!lora || lora.rank !== opts.lora.rank))
      throw new ArgumentError(
        `resume: ${opts.resumeFrom} is ${lora ? `an LCM-LoRA run of rank ${lora.rank}` : "a full-student run"}, not an LCM-LoRA of rank ${opts.lora.rank}; leave the LoRA option out to resume it as it was`,
      );
    resumed = {
      dir: r.dir,
      unetConfig: r.state.unetConfig,
      schedulerConfig: r.state.schedulerConfig,
      options: r.state.options,
      lora,
    };
  } else {
    if (!opts.teacherFrom)
      throw new ArgumentError("a new distillation run needs a teacher folder (teacherFrom)");
    await checkTeacherFolder(opts.teacherFrom, out);
    // the schedule and the options (the skipping interval against it) are checked before anything is copied
    const teacherScheduler = JSON.parse(
      readFileSync(join(opts.teacherFrom, "scheduler", "scheduler_config.json"), "utf8"),
    ) as Record<string, unknown>;
    newScheduler = new LCMScheduler(
      lcmSchedulerConfig(teacherScheduler, opts.train.skip ?? 20, opts.train.timestepScaling ?? 10),
    );
    resolveLcmOptions(opts.train, newScheduler.config.num_train_timesteps);
    if (opts.lora && !(Number.isInteger(opts.lora.rank) && opts.lora.rank >= 1))
      throw new ArgumentError(`the LCM-LoRA rank must be a positive integer, got ${opts.lora.rank}`);
    mkdirSync(out, { recursive: true });
    for (const part of ["vae", "text_encoder", "tokenizer"])
      cpSync(join(opts.teacherFrom, part), join(out, part), { recursive: true, dereference: true });
    cpSync(join(opts.teacherFrom, "unet"), join(out, TEACHER_UNET), { recursive: true, dereference: true });
  }
  const base = opts.resumeFrom ?? out;
  const device = opts.device ?? "cpu";
  const vae = await AutoencoderKL.fromPretrained(join(base, "vae"), { device });
  const textEncoder = await CLIPTextModel.fromPretrained(join(base, "text_encoder"), { device });
  const tokenizer = await CLIPTokenizer.fromPretrained(join(base, "tokenizer"));
  // the teacher computes in float32 (a float16 file is widened once, not per kernel)
  const teacher = await UNet2DConditionModel.fromPretrained(join(base, TEACHER_UNET), {
    dtype: "float32",
    device,
  });
  const latents = encodeLatents(vae, opts.data, { onProgress: opts.onProgress });
  const captions = new CaptionEncoder(textEncoder, tokenizer);
  const parts = (scheduler: LCMScheduler) => ({ teacher, scheduler, captions, set: opts.data, latents });
  if (resumed) {
    const options = { ...(resumed.options as LcmDistillOptions), steps: opts.train.steps };
    const scheduler = new LCMScheduler(resumed.schedulerConfig);
    const student = resumed.lora
      ? lcmLoraNetwork(teacher, resumed.lora.paths, resumed.lora)
      : new UNet2DConditionModel(resumed.unetConfig, { skipInit: true }).toDevice(device);
    const trainer = new LcmTrainer(student, parts(scheduler), options, resumed.lora ?? undefined);
    await loadCheckpoint(trainer, resumed.dir);
    return trainer;
  }
  if (opts.lora) {
    const { rank, alpha = rank, targets = "all-linear+conv" } = opts.lora;
    const paths = unetLoraPaths(teacher, targets);
    const net = lcmLoraNetwork(teacher, paths, { rank, alpha }, new Generator((opts.train.seed ?? 0) + 2));
    const record: LcmLoraRecord = {
      rank,
      alpha,
      paths,
      teacherName: basename(resolve(opts.teacherFrom!)),
      teacherSha256: await fileSha256(await modelHashFile(opts.teacherFrom!)),
    };
    return new LcmTrainer(net, parts(newScheduler!), opts.train, record);
  }
  return new LcmTrainer(studentFromTeacher(teacher), parts(newScheduler!), opts.train);
}

function lcmLoraNetwork(
  teacher: UNet2DConditionModel,
  paths: readonly string[],
  layout: { rank: number; alpha: number },
  generator?: Generator,
): LoraNetwork {
  return new LoraNetwork(teacher, paths, { ...layout, generator, name: "lcm-lora" });
}

/** The pipeline around the trainer's current student weights, sampling with LCMScheduler. */
export function studentPipeline(trainer: LcmTrainer, vae: AutoencoderKL): StableDiffusionPipeline {
  return new StableDiffusionPipeline({
    unet: trainer.unet,
    vae,
    textEncoder: trainer.captions.textEncoder,
    tokenizer: trainer.captions.tokenizer,
    scheduler: new LCMScheduler(trainer.scheduler.config),
  });
}

/** Runs (or resumes) a distillation into `outDir`; see the file comment. */
export async function trainLcm(opts: TrainLcmOptions): Promise<{ trainer: LcmTrainer; stopped: boolean }> {
  const trainer = await createLcmTrainer(opts);
  const out = opts.outDir;
  const vae = await AutoencoderKL.fromPretrained(join(out, "vae"), { device: opts.device ?? "cpu" });
  const samplesDir = join(out, "samples");
  mkdirSync(samplesDir, { recursive: true });
  const writeSamples = async (): Promise<void> => {
    const pipe = studentPipeline(trainer, vae);
    // one row of the 16 prompts per step count, the same noise in every row
    const images = await withEmaWeights(trainer, async () => {
      const rows = [];
      for (const steps of LCM_SAMPLE_STEPS) {
        const r = await pipe.generate({
          prompt: SAMPLE_PROMPTS,
          steps,
          guidanceScale: opts.sampleGuidance ?? (trainer.lora ? 1 : 3),
          seed: 0,
        });
        rows.push(...r.images);
      }
      return rows;
    });
    const path = join(samplesDir, `step-${String(trainer.step).padStart(6, "0")}.png`);
    writePng(path, imageGrid(images, SAMPLE_PROMPTS.length, 2, 255));
    opts.onSaved?.("samples", path, trainer.step);
    const svg = join(samplesDir, "loss.svg");
    await writeLossCurve(trainer, svg);
    opts.onSaved?.("samples", svg, trainer.step);
  };
  const stopped = await trainIntoFolder(trainer, out, opts, writeSamples);
  if (trainer.lora) {
    await writeLcmLora(trainer, out);
    opts.onSaved?.("lora", join(out, LCM_LORA_FILE), trainer.step);
  } else {
    // the student is the target network theta- (the EMA), as the pipeline folder of the other trainers holds theirs
    await writeTextToImagePipeline(out, {
      unetConfig: trainer.unet.config,
      weights: trainer.ema.averagedStateDict(),
      schedulerConfig: { ...trainer.scheduler.config, _class_name: "LCMScheduler" },
    });
    opts.onSaved?.("pipeline", out, trainer.step);
  }
  if (!stopped) await writeSamples();
  return { trainer, stopped };
}

/**
 * Writes an LCM-LoRA run's result into `out`: the adapters' EMA weights (the target network, as a full student
 * saves its) as a kohya-layout LoRA file recording the teacher, and a pipeline folder of the teacher with that LoRA
 * merged into its UNet and an LCMScheduler (sampled without guidance by default: see the pipeline's defaultGuidance).
 */
async function writeLcmLora(trainer: LcmTrainer, out: string): Promise<void> {
  const record = trainer.loraRecord as unknown as LcmLoraRecord;
  const family = modelFamily(trainer.teacher);
  await withEmaWeights(trainer, async () => {
    const entries = trainer
      .lora!.weights()
      .map((w) => ({ target: "unet" as const, modulePath: w.path, ...w }));
    const metadata = loraFileMetadata(
      entries,
      "kohya",
      {
        name: record.teacherName,
        family: family.family,
        familyLabel: family.label,
        sha256: record.teacherSha256,
      },
      {
        steps: trainer.step,
        learningRate: trainer.options.lr,
        images: trainer.set.count,
        targets: "lcm-lora",
        version: packageVersion(),
        comment: `diffuse train lcm --lora ${record.rank} (latent consistency distillation, guidance weight w in [${trainer.options.wMin}, ${trainer.options.wMax}])`,
      },
    );
    await saveLoraFile(join(out, LCM_LORA_FILE), entries, "kohya", metadata);
  });
  // the fused folder: the teacher as a user loads it, with the file just written merged into its weights
  const unet = await UNet2DConditionModel.fromPretrained(join(out, TEACHER_UNET), { dtype: "float32" });
  applyLora({ unet }, await loadLora(join(out, LCM_LORA_FILE)), { mode: "merge" });
  await writeTextToImagePipeline(out, {
    unetConfig: unet.config,
    weights: unet.stateDict(),
    schedulerConfig: { ...trainer.scheduler.config, _class_name: "LCMScheduler" },
  });
}
