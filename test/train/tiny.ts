// Shared tiny settings of the training, pipeline and CLI tests: a 32x32 class-conditional UNet2DModel small enough
// to train a few steps in well under a second.
import { UNet2DModel } from "../../src/models/unet/unet-2d.js";
import { Generator } from "../../src/tensor/generator.js";

/** 10 classes + the null class, two levels (8, 16 channels), attention at 16x16. */
export const TINY_UNET = {
  sample_size: 32,
  in_channels: 1,
  out_channels: 1,
  block_out_channels: [8, 16],
  down_block_types: ["DownBlock2D", "AttnDownBlock2D"],
  up_block_types: ["AttnUpBlock2D", "UpBlock2D"],
  layers_per_block: 1,
  attention_head_dim: 8,
  norm_num_groups: 4,
  num_class_embeds: 11,
};

/** A randomly initialised tiny UNet (seeded). */
export function tinyUNet(seed = 0): UNet2DModel {
  return new UNet2DModel(TINY_UNET, { generator: new Generator(seed) });
}
