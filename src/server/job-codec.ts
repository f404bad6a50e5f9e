// Generation requests and results as JSON, for the Redis queue: init images and masks as PNG (lossless, and a
// fraction of the raw pixels), result PNGs as base64, a bigint seed as a string.
import { decodeImage, encodePng, type Image } from "../io/image.js";
import type { GenerationRequest, GenerationResult } from "./engine.js";
import type { JobCodec } from "./redis-queue.js";

type EncodedRequest = Omit<GenerationRequest, "initImage" | "mask"> & { initImage?: string; mask?: string };

type EncodedResult = Omit<GenerationResult, "images" | "settings"> & {
  images: { png: string; parameters: string; seed: number }[];
  settings: Omit<GenerationResult["settings"], "seed"> & { seed?: number | string };
};

const pngBase64 = (image: Image) => encodePng(image).toString("base64");
const fromPngBase64 = (text: string): Image => {
  // decodeImage gives 3 channels for an opaque PNG, 4 with transparency: what the HTTP layer decoded
  const { width, height, channels, data } = decodeImage(Buffer.from(text, "base64"));
  return { width, height, channels, data };
};

/** The codec of the server's generation jobs. */
export const generationCodec: JobCodec<GenerationRequest, GenerationResult> = {
  encodeRequest(request) {
    const { initImage, mask, ...rest } = request;
    const encoded: EncodedRequest = { ...rest };
    if (initImage) encoded.initImage = pngBase64(initImage);
    if (mask) encoded.mask = pngBase64(mask);
    return encoded;
  },
  decodeRequest(data) {
    const { initImage, mask, ...rest } = data as EncodedRequest;
    const request: GenerationRequest = { ...rest };
    if (initImage) request.initImage = fromPngBase64(initImage);
    if (mask) request.mask = fromPngBase64(mask);
    return request;
  },
  encodeResult(result) {
    const { seed, ...settings } = result.settings;
    const encoded: EncodedResult = {
      ...result,
      images: result.images.map((im) => ({ ...im, png: im.png.toString("base64") })),
      settings: {
        ...settings,
        ...(seed !== undefined && { seed: typeof seed === "bigint" ? String(seed) : seed }),
      },
    };
    return encoded;
  },
  decodeResult(data) {
    const encoded = data as EncodedResult;
    const { seed, ...settings } = encoded.settings;
    return {
      ...encoded,
      images: encoded.images.map((im) => ({ ...im, png: Buffer.from(im.png, "base64") })),
      settings: {
        ...settings,
        ...(seed !== undefined && { seed: typeof seed === "string" ? BigInt(seed) : seed }),
      },
    };
  },
};
