// A whole contrastive text-image training run into an output folder. A new run first learns its BPE vocabulary
// from the captions (tokenizer/, CLIP's files) and builds the text tower around it; a resumed run reads both back.
// Every K steps the retrieval accuracy and the loss curve and/or a checkpoint; at the end, with the EMA weights:
//   text_encoder/ (a transformers CLIPTextModel: config.json + model.safetensors), tokenizer/,
//   clip/ (both towers, the projection and the temperature), checkpoint/, samples/.
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { mergesTxt, trainBpe } from "../models/clip/bpe-train.js";
import { type ContrastiveConfig, ContrastiveTextImageModel } from "../models/clip/contrastive.js";
import { CLIPTokenizer } from "../models/clip/tokenizer.js";
import { configJson, saveModelFolder } from "../pipelines/save-model-folder.js";
import type { Device } from "../tensor/device.js";
import { ArgumentError } from "../tensor/errors.js";
import { Generator } from "../tensor/generator.js";
import type { Tensor } from "../tensor/tensor.js";
import { loadCheckpoint, resumeCheckpoint } from "./checkpoint.js";
import { ClipTrainer, type RetrievalAccuracy, retrievalAccuracy } from "./clip-trainer.js";
import { type EmojiSet, emojiCaption } from "./data/emoji.js";
import { type RunLoopOptions, trainIntoFolder, writeLossCurve } from "./loop.js";
import { type OptimOptions, withEmaWeights } from "./trainer-base.js";

/** Sizes of a new run's towers. */
export interface ClipModelOptions {
  /** BPE merges to learn (default 1500). */
  merges?: number;
  /** Token sequence length, BOS and EOS included (default 32). */
  maxLength?: number;
  hiddenSize?: number;
  layers?: number;
  heads?: number;
  /** Shared embedding size (default 256). */
  projectionDim?: number;
  /** The image tower's block channels (default [16, 32, 64]). */
  imageChannels?: number[];
}

/** Options of {@link trainClip}. */
export interface TrainClipOptions extends RunLoopOptions {
  outDir: string;
  data: EmojiSet;
  model?: ClipModelOptions;
  /** Hyperparameters of a new run; when resuming only `steps` is taken from here. */
  train: OptimOptions;
  resumeFrom?: string;
  device?: Device;
}

/** What {@link trainClip} returns. */
export interface TrainClipResult {
  trainer: ClipTrainer;
  stopped: boolean;
  /** With the EMA weights, at the end of a run that was not stopped. */
  retrieval: RetrievalAccuracy | null;
}

const BOS = "<|startoftext|>";
const EOS = "<|endoftext|>";

/** The caption corpus the vocabulary is learned from: every name and keyword, and captions drawn 4 times per image. */
function captionCorpus(set: EmojiSet, seed: number): string[] {
  const g = new Generator(seed);
  const texts: string[] = [];
  for (const e of set.entries) texts.push(e.label, ...e.altNames, ...e.tags, e.category);
  for (let r = 0; r < 4; r++) for (const e of set.entries) texts.push(emojiCaption(e, g));
  return texts;
}

/** Learns the vocabulary and writes `dir` (vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json). */
function writeTokenizer(
  dir: string,
  set: EmojiSet,
  merges: number,
  maxLength: number,
  seed: number,
): CLIPTokenizer {
  const bpe = trainBpe(captionCorpus(set, seed), { merges });
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, "vocab.json"), `${JSON.stringify(bpe.vocab)}\n`);
  writeFileAtomic(join(dir, "merges.txt"), mergesTxt(bpe.merges));
  const specials = { bos_token: BOS, eos_token: EOS, pad_token: EOS, unk_token: EOS };
  writeFileAtomic(
    join(dir, "tokenizer_config.json"),
    configJson({
      tokenizer_class: "CLIPTokenizer",
      model_max_length: maxLength,
      do_lower_case: true,
      ...specials,
    }),
  );
  writeFileAtomic(join(dir, "special_tokens_map.json"), configJson(specials));
  return new CLIPTokenizer(bpe.vocab, bpe.merges, { modelMaxLength: maxLength });
}

/** The model config of a new run around `tokenizer`. */
export function clipConfigFor(
  tokenizer: CLIPTokenizer,
  m: ClipModelOptions = {},
  imageSize = 32,
): ContrastiveConfig {
  const hidden = m.hiddenSize ?? 256;
  const projection = m.projectionDim ?? 256;
  const channels = m.imageChannels ?? [16, 32, 64];
  // GroupNorm groups: the most of 16, 8, 4, 2, 1 that divide every block's channels
  const groups = [16, 8, 4, 2, 1].find((g) => channels.every((c) => c % g === 0))!;
  return {
    text_config: {
      vocab_size: tokenizer.vocabSize,
      hidden_size: hidden,
      intermediate_size: 4 * hidden,
      num_hidden_layers: m.layers ?? 4,
      num_attention_heads: m.heads ?? 4,
      max_position_embeddings: tokenizer.modelMaxLength,
      hidden_act: "quick_gelu",
      bos_token_id: tokenizer.bosTokenId,
      eos_token_id: tokenizer.eosTokenId,
      pad_token_id: tokenizer.padTokenId,
      projection_dim: projection,
    },
    vision_config: {
      in_channels: 3,
      sample_size: imageSize,
      block_out_channels: channels,
      norm_num_groups: groups,
      feature_dim: projection,
    },
    projection_dim: projection,
  };
}

/** A new trainer (tokenizer learned and written to OUT/tokenizer first), or one restored from a checkpoint. */
export async function createClipTrainer(opts: TrainClipOptions): Promise<ClipTrainer> {
  if (opts.resumeFrom) {
    const { dir, state } = resumeCheckpoint(opts.resumeFrom);
    const config = state.clipConfig as ContrastiveConfig | undefined;
    if (!config)
      throw new ArgumentError(`resume: ${dir} is not a text-image training checkpoint (no clipConfig)`);
    const tokenizer = await CLIPTokenizer.fromPretrained(join(opts.resumeFrom, "tokenizer"));
    const model = new ContrastiveTextImageModel(config, { skipInit: true });
    if (opts.device) model.toDevice(opts.device);
    const trainer = new ClipTrainer(model, opts.data, tokenizer, {
      ...state.options,
      steps: opts.train.steps,
    });
    await loadCheckpoint(trainer, dir);
    return trainer;
  }
  const seed = opts.train.seed ?? 0;
  const tokenizer = writeTokenizer(
    join(opts.outDir, "tokenizer"),
    opts.data,
    opts.model?.merges ?? 1500,
    opts.model?.maxLength ?? 32,
    seed,
  );
  const config = clipConfigFor(tokenizer, opts.model, opts.data.size);
  const model = new ContrastiveTextImageModel(config, { generator: new Generator(seed + 2) });
  if (opts.device) model.toDevice(opts.device);
  return new ClipTrainer(model, opts.data, tokenizer, opts.train);
}

/** The EMA weights under `prefix.`, without it. */
function subStateDict(weights: ReadonlyMap<string, Tensor>, prefix: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of weights) if (k.startsWith(`${prefix}.`)) out.set(k.slice(prefix.length + 1), v);
  return out;
}

/** Runs (or resumes) contrastive training into `outDir`; see the file comment. */
export async function trainClip(opts: TrainClipOptions): Promise<TrainClipResult> {
  const trainer = await createClipTrainer(opts);
  const out = opts.outDir;
  const samplesDir = join(out, "samples");
  mkdirSync(samplesDir, { recursive: true });
  const measure = () =>
    withEmaWeights(trainer, () => retrievalAccuracy(trainer.model, opts.data, trainer.tokenizer));
  const writeSamples = async (): Promise<void> => {
    const r = await measure();
    const path = join(samplesDir, "retrieval.jsonl");
    appendFileSync(path, `${JSON.stringify({ step: trainer.step, ...r })}\n`);
    opts.onSaved?.("samples", path, trainer.step);
    const svg = join(samplesDir, "loss.svg");
    await writeLossCurve(trainer, svg);
    opts.onSaved?.("samples", svg, trainer.step);
  };
  const stopped = await trainIntoFolder(trainer, out, opts, writeSamples);
  if (stopped) return { trainer, stopped, retrieval: null };
  await writeLossCurve(trainer, join(samplesDir, "loss.svg"));
  const retrieval = await measure();
  const weights = trainer.ema.averagedStateDict();
  const textDir = join(out, "text_encoder");
  await saveModelFolder(textDir, {
    library: "transformers",
    config: {
      architectures: ["CLIPTextModel"],
      model_type: "clip_text_model",
      ...trainer.model.config.text_config,
    },
    weights: subStateDict(weights, "text_model"),
  });
  opts.onSaved?.("text_encoder", textDir, trainer.step);
  const clipDir = join(out, "clip");
  await saveModelFolder(clipDir, {
    library: "transformers",
    config: { _class_name: "ContrastiveTextImageModel", ...trainer.model.config, retrieval },
    weights,
  });
  opts.onSaved?.("clip", clipDir, trainer.step);
  return { trainer, stopped, retrieval };
}
