// Training checkpoints: everything a run needs to continue bit for bit — weights, AdamW moments, EMA averages, the
// noise generator, the data loader's position and the loss history — written to a temporary folder and renamed into
// place, so an interrupted save never leaves a partial checkpoint behind.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { loadSafetensors, saveSafetensors } from "../io/safetensors.js";
import type { Module } from "../nn/index.js";
import type { AdamW, EMA, OptimizerStateDict } from "../nn/optim/index.js";
import { ArgumentError } from "../tensor/errors.js";
import type { Generator } from "../tensor/generator.js";
import type { ProgressCallback } from "../tensor/progress.js";
import type { Tensor } from "../tensor/tensor.js";
import type { DataLoaderState } from "./data/loader.js";

/**
 * What a checkpoint holds of a trainer: every trainer (diffusion, VAE, contrastive text-image) exposes its trained
 * module, AdamW, EMA, noise generator, data position and losses this way.
 */
export interface CheckpointableTrainer {
  step: number;
  losses: number[];
  /** The resolved hyperparameters (JSON). */
  readonly options: object;
  /** The trained weights. */
  readonly model: Module;
  readonly optimizer: AdamW;
  readonly ema: EMA;
  readonly generator: Generator;
  readonly loader: { stateDict(): DataLoaderState; loadStateDict(state: DataLoaderState): void };
  /** Reads back the losses not read yet and returns them all. */
  readLosses(): Promise<number[]>;
  /** The model configs stored at the top level of trainer_state.json (e.g. `unetConfig`, `schedulerConfig`). */
  checkpointConfigs(): Record<string, Record<string, unknown>>;
}

/** File names inside a checkpoint folder. */
export const CHECKPOINT_FILES = {
  model: "model.safetensors",
  ema: "ema.safetensors",
  optimizer: "optimizer.safetensors",
  state: "trainer_state.json",
} as const;

/** trainer_state.json. */
export interface TrainerStateJson {
  format: "diffuse-train-checkpoint";
  version: 1;
  step: number;
  options: Record<string, unknown>;
  /** The diffusion trainer's configs (see {@link CheckpointableTrainer.checkpointConfigs} for the others'). */
  unetConfig?: Record<string, unknown>;
  schedulerConfig?: Record<string, unknown>;
  /** Optimizer groups and per-parameter scalar state (the moment tensors are in optimizer.safetensors). */
  optimizer: {
    paramGroups: OptimizerStateDict["paramGroups"];
    scalars: Record<string, Record<string, number>>;
  };
  emaStep: number;
  /** base64 of the noise Generator's state. */
  generator: string;
  loader: DataLoaderState;
  losses: number[];
  /** Free-form extras of the caller (e.g. the CLI's arguments). */
  extra: Record<string, unknown>;
  /** Other trainers' configs (`vaeConfig`, `textConfig` ...). */
  [config: string]: unknown;
}

/** Options of {@link saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** Stored in trainer_state.json as `extra`. */
  extra?: Record<string, unknown>;
  /** Called before each file is written: stage "save", step k of the files, `message` the file name. */
  onProgress?: ProgressCallback;
}

/**
 * Saves the trainer's full state to the folder `dir` atomically: the files go to a fresh sibling folder which is
 * then renamed to `dir` (an older `dir` is moved aside first and deleted last). On any error the temporary folder
 * is removed and `dir` is left as it was.
 */
export async function saveCheckpoint(
  trainer: CheckpointableTrainer,
  dir: string,
  opts: SaveCheckpointOptions = {},
): Promise<void> {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const tmp = join(parent, `${basename(dir)}.tmp-${tag}`);
  const old = join(parent, `${basename(dir)}.old-${tag}`);
  mkdirSync(tmp);
  try {
    const files = Object.values(CHECKPOINT_FILES);
    let written = 0;
    const report = (name: string) =>
      opts.onProgress?.({ stage: "save", step: ++written, total: files.length, message: name });
    const write = async (name: string, tensors: Map<string, Tensor>): Promise<void> => {
      report(name);
      await saveSafetensors(join(tmp, name), tensors);
    };
    await write(CHECKPOINT_FILES.model, trainer.model.stateDict());
    await write(CHECKPOINT_FILES.ema, trainer.ema.averagedStateDict());
    const sd = trainer.optimizer.stateDict();
    const moments = new Map<string, Tensor>();
    const scalars: Record<string, Record<string, number>> = {};
    for (const [idx, entry] of Object.entries(sd.state)) {
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v === "number") (scalars[idx] ??= {})[k] = v;
        else moments.set(`${idx}.${k}`, v);
      }
    }
    await write(CHECKPOINT_FILES.optimizer, moments);
    report(CHECKPOINT_FILES.state);
    const state: TrainerStateJson = {
      format: "diffuse-train-checkpoint",
      version: 1,
      step: trainer.step,
      options: { ...trainer.options },
      ...trainer.checkpointConfigs(),
      optimizer: { paramGroups: sd.paramGroups, scalars },
      emaStep: trainer.ema.optimizationStep,
      generator: Buffer.from(trainer.generator.getState()).toString("base64"),
      loader: trainer.loader.stateDict(),
      losses: await trainer.readLosses(),
      extra: opts.extra ?? {},
    };
    writeFileAtomic(join(tmp, CHECKPOINT_FILES.state), `${JSON.stringify(state)}\n`);
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(dir) && existsSync(old)) renameSync(old, dir);
    throw err;
  }
  rmSync(old, { recursive: true, force: true });
}

/**
 * The checkpoint folder to resume from: `dir` itself, or (after a crash between the two renames of a save) the
 * complete `<dir>.old-*` folder it was replacing. Null when there is none.
 */
export function findCheckpoint(dir: string): string | null {
  if (existsSync(join(dir, CHECKPOINT_FILES.state))) return dir;
  const parent = dirname(dir);
  if (!existsSync(parent)) return null;
  const olds = readdirSync(parent)
    .filter((f) => f.startsWith(`${basename(dir)}.old-`))
    .map((f) => join(parent, f))
    .filter((p) => existsSync(join(p, CHECKPOINT_FILES.state)));
  return olds[0] ?? null;
}

/**
 * The checkpoint a `--resume FROM` names: FROM's `checkpoint/` folder (a run's output folder) or FROM itself, read
 * and checked; an error says where it looked.
 */
export function resumeCheckpoint(from: string): { dir: string; state: TrainerStateJson } {
  const dir = findCheckpoint(join(from, "checkpoint")) ?? findCheckpoint(from);
  if (!dir)
    throw new ArgumentError(`resume: no checkpoint in ${from} (looked for checkpoint/trainer_state.json)`);
  return { dir, state: readTrainerState(dir) };
}

/** Reads trainer_state.json of a checkpoint folder (checked). */
export function readTrainerState(dir: string): TrainerStateJson {
  const path = join(dir, CHECKPOINT_FILES.state);
  let state: TrainerStateJson;
  try {
    state = JSON.parse(readFileSync(path, "utf8")) as TrainerStateJson;
  } catch (err) {
    throw new ArgumentError(`checkpoint: cannot read ${path} (${(err as Error).message})`);
  }
  if (state.format !== "diffuse-train-checkpoint" || state.version !== 1) {
    throw new ArgumentError(`checkpoint: ${path} is not a diffuse training checkpoint (version 1)`);
  }
  return state;
}

/**
 * Restores a trainer built with the checkpoint's configs and options (see {@link readTrainerState}) to the saved
 * state: weights, optimizer, EMA, generator, data order, step and losses.
 */
export async function loadCheckpoint(trainer: CheckpointableTrainer, dir: string): Promise<TrainerStateJson> {
  const state = readTrainerState(dir);
  const model = await loadSafetensors(join(dir, CHECKPOINT_FILES.model));
  const ema = await loadSafetensors(join(dir, CHECKPOINT_FILES.ema));
  const moments = await loadSafetensors(join(dir, CHECKPOINT_FILES.optimizer));
  trainer.model.loadStateDict(model.tensors);
  const optState: OptimizerStateDict["state"] = {};
  for (const [idx, scalars] of Object.entries(state.optimizer.scalars)) optState[idx] = { ...scalars };
  for (const [key, t] of moments.tensors) {
    const dot = key.indexOf(".");
    const idx = key.slice(0, dot);
    (optState[idx] ??= {})[key.slice(dot + 1)] = t;
  }
  trainer.optimizer.loadStateDict({ state: optState, paramGroups: state.optimizer.paramGroups });
  trainer.ema.loadStateDict({ optimizationStep: state.emaStep, shadowParams: ema.tensors });
  trainer.generator.setState(new Uint8Array(Buffer.from(state.generator, "base64")));
  trainer.loader.loadStateDict(state.loader);
  trainer.step = state.step;
  trainer.losses = [...state.losses];
  return state;
}
