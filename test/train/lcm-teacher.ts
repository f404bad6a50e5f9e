// A tiny teacher for the distillation tests: a randomly initialised (seeded) 16-channel text-conditioned UNet in a
// Stable Diffusion folder with the shipped emoji model's VAE, text encoder, tokenizer and scheduler (so the emoji
// images, the emoji classifier and the real noise schedule apply), and a few emoji to distill on.
import { cpSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UNet2DConditionModel } from "../../src/models/unet/unet-2d-condition.js";
import { saveModelFolder } from "../../src/pipelines/save-model-folder.js";
import { Generator } from "../../src/tensor/generator.js";
import { type EmojiSet, emojiSubset, loadEmoji } from "../../src/train/data/emoji.js";

export const SHIPPED_EMOJI = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "models", "emoji");

/** The tiny teacher UNet's config (8 x 8 x 4 latents, cross-attention to the 256-wide text encoder). */
export const TINY_TEACHER = {
  sample_size: 8,
  in_channels: 4,
  out_channels: 4,
  block_out_channels: [16, 16],
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  up_block_types: ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  layers_per_block: 1,
  attention_head_dim: 2,
  norm_num_groups: 4,
  cross_attention_dim: 256,
};

/** A seeded tiny teacher UNet. */
export function tinyTeacher(seed = 0): UNet2DConditionModel {
  return new UNet2DConditionModel(TINY_TEACHER, { generator: new Generator(seed) });
}

/** Writes a teacher pipeline folder at `dir` (see the file comment); `without` leaves one component out. */
export async function writeTinyTeacher(dir: string, without?: string): Promise<void> {
  for (const part of ["vae", "text_encoder", "tokenizer", "scheduler", "model_index.json"]) {
    if (part !== without) cpSync(join(SHIPPED_EMOJI, part), join(dir, part), { recursive: true });
  }
  if (without === "unet") return;
  const unet = tinyTeacher();
  await saveModelFolder(join(dir, "unet"), {
    config: { _class_name: "UNet2DConditionModel", ...unet.config },
    weights: unet.stateDict(),
  });
}

/** `count` emoji of the 32-pixel set, spread over it. */
export function fewEmoji(count = 8): EmojiSet {
  const all = loadEmoji(32);
  return emojiSubset(
    all,
    Array.from({ length: count }, (_, i) => i * 401),
  );
}
