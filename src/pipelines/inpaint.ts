// Inpainting. A mask (white = repaint) is binarised in pixel space and resized to the latent grid with nearest
// sampling (a 512x512 mask becomes 64x64), as diffusers' StableDiffusionInpaintPipeline does. Two ways to use it:
// 9-channel inpainting UNets take [latents, mask, masked-image latents] as input; ordinary 4-channel UNets get the
// known region re-noised to the next timestep and pasted back after every step (RePaint-style blending).
import { type Image, imageToTensor } from "../io/image-tensor.js";
import { add, ge, interpolate, lt, mul, sub, to } from "../ops/index.js";
import { formatShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { PipelineError } from "./errors.js";
import { isImage, pixelSize } from "./img2img.js";
import { resizeImage } from "./resize.js";

/** Throws unless the mask has the init image's pixel size. */
export function checkMaskSize(mask: Image | Tensor, initImage: Image | Tensor): void {
  const m = pixelSize(mask);
  const i = pixelSize(initImage);
  if (m.width !== i.width || m.height !== i.height) {
    throw new PipelineError(
      `mask is ${m.width}x${m.height} but the init image is ${i.width}x${i.height}; give a mask of the init image's size (white = repaint, black = keep)`,
    );
  }
}

/**
 * The mask as [1, 1, height, width] with values 0 (keep) and 1 (repaint): an 8-bit image is converted to gray,
 * resized to the size and thresholded at 0.5 (diffusers' mask processor: do_binarize); a tensor [1, 1, H, W] in
 * [0, 1] must already have the size and is thresholded the same way.
 */
export function preprocessMask(mask: Image | Tensor, width: number, height: number): Tensor {
  let gray: Tensor;
  if (isImage(mask)) {
    gray = imageToTensor(resizeImage(mask, width, height), [0, 1], 1);
  } else {
    if (mask.ndim !== 4 || mask.shape[0] !== 1 || mask.shape[1] !== 1) {
      throw new PipelineError(`mask tensor must be [1, 1, H, W] in [0, 1], got ${formatShape(mask.shape)}`);
    }
    if (mask.shape[2] !== height || mask.shape[3] !== width) {
      throw new PipelineError(
        `mask tensor is ${mask.shape[3]}x${mask.shape[2]} but the image size is ${width}x${height}; resize it or pass an Image`,
      );
    }
    gray = mask;
  }
  // computed where the mask is (a mask already on a device stays there)
  return to(ge(gray, 0.5), "float32");
}

/** The mask on the latent grid [1, 1, H / f, W / f] (PyTorch nearest: the top-left pixel of each f x f cell). */
export function maskToLatentGrid(mask: Tensor, factor: number): Tensor {
  const [, , h, w] = mask.shape as [number, number, number, number];
  return interpolate(mask, { size: [h / factor, w / factor] });
}

/** The init image with the region to repaint zeroed: image * (mask < 0.5). */
export function maskedImage(image: Tensor, mask: Tensor): Tensor {
  return mul(image, to(lt(mask, 0.5), "float32"));
}

/** (1 - mask) * known + mask * latents: keeps the generated latents inside the mask, the known ones outside. */
export function blendKnownRegion(latents: Tensor, known: Tensor, mask: Tensor): Tensor {
  return add(mul(sub(1, mask), known), mul(mask, latents));
}
