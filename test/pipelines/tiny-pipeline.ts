// Test helper: the tiny Stable Diffusion components of ../shared/fixtures/models and the SD 1.5 scheduler config.
import { join } from "node:path";
import type { Image } from "../../src/io/image.js";
import { AutoencoderKL, CLIPTextModel, CLIPTokenizer, UNet2DConditionModel } from "../../src/models/index.js";
import { type StableDiffusionComponents, StableDiffusionPipeline } from "../../src/pipelines/index.js";
import { schedulerFromConfig } from "../../src/schedulers/index.js";
import { fixturesDir, testRng } from "../helpers.js";

/** Stable Diffusion 1.5's scheduler_config.json. */
export const SD15_SCHEDULER = {
  _class_name: "PNDMScheduler",
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  steps_offset: 1,
  clip_sample: false,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  trained_betas: null,
};

/** The fixture models folder. */
export function modelsDir(): string {
  return join(fixturesDir()!, "models");
}

/** Fresh copies of the tiny UNet, VAE, text encoder and tokenizer (callers may change their weights). */
export async function tinyParts(): Promise<Omit<StableDiffusionComponents, "scheduler">> {
  const m = modelsDir();
  return {
    unet: await UNet2DConditionModel.fromPretrained(join(m, "tiny_unet")),
    vae: await AutoencoderKL.fromPretrained(join(m, "tiny_vae")),
    textEncoder: await CLIPTextModel.fromPretrained(join(m, "tiny_text_encoder")),
    tokenizer: await CLIPTokenizer.fromPretrained(join(m, "tiny_tokenizer")),
  };
}

/** A pipeline of the tiny parts with the SD 1.5 schedule on scheduler class `className`. */
export function tinyPipeline(
  parts: Omit<StableDiffusionComponents, "scheduler">,
  className = "DDIMScheduler",
): StableDiffusionPipeline {
  return new StableDiffusionPipeline({
    ...parts,
    scheduler: schedulerFromConfig({ ...SD15_SCHEDULER, _class_name: className }),
  });
}

/** A deterministic RGB test image of uniform random bytes. */
export function testImage(width: number, height: number, seed = 1): Image {
  const rng = testRng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng() * 256);
  return { width, height, channels: 3, data };
}
