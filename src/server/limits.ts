// What one request may ask for: sizes, steps, images, and the images it sends. Inputs are base64 PNG/JPEG files
// whose header is checked (dimensions, pixel count) before any pixel is decoded.
import { type DecodedImage, decodeImage, ImageError } from "../io/image.js";
import { HttpError } from "./errors.js";

/** Request limits of a server (see {@link DEFAULT_LIMITS}). */
export interface ServerLimits {
  /** Largest output width / height in pixels. */
  maxWidth: number;
  maxHeight: number;
  /** Most inference steps. */
  maxSteps: number;
  /** Most images drawn together (A1111's batch_size, our num_images). */
  maxBatch: number;
  /** Most images of one job (batch_size x n_iter). */
  maxImages: number;
  /** Largest width x height of an input image (init image, mask). */
  maxInputPixels: number;
  /** Largest width or height of an input image. */
  maxInputSide: number;
  /** Largest request body in bytes (base64 images included). */
  bodyLimit: number;
}

/** Defaults: SD-sized work on a CPU stays possible, a request cannot ask for gigabytes. */
export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxWidth: 2048,
  maxHeight: 2048,
  maxSteps: 150,
  maxBatch: 8,
  maxImages: 16,
  maxInputPixels: 4096 * 4096,
  maxInputSide: 8192,
  bodyLimit: 20 * 1024 * 1024,
});

/** Checks the numbers of a generation request against the limits (400 naming the field, the limit and the value). */
export function checkRequestLimits(
  limits: ServerLimits,
  r: { width?: number; height?: number; steps?: number; batchSize: number; iterations: number },
): void {
  const over = (field: string, value: number | undefined, max: number) => {
    if (value !== undefined && value > max) {
      throw new HttpError(400, `${field} must be at most ${max} on this server, got ${value}`);
    }
  };
  over("width", r.width, limits.maxWidth);
  over("height", r.height, limits.maxHeight);
  over("steps", r.steps, limits.maxSteps);
  over("batch size", r.batchSize, limits.maxBatch);
  over("images per job (batch size x iterations)", r.batchSize * r.iterations, limits.maxImages);
}

/**
 * Decodes a base64 PNG or JPEG (a `data:image/...;base64,` prefix is allowed) after checking its header against the
 * limits; `field` names it in errors (400).
 */
export function decodeBase64Image(text: string, field: string, limits: ServerLimits): DecodedImage {
  const payload = text.replace(/^data:[\w/+.-]*;base64,/, "").replace(/\s+/g, "");
  if (payload.length === 0 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) {
    throw new HttpError(400, `${field} must be a base64 PNG or JPEG file, got ${describe(text)}`);
  }
  const bytes = Buffer.from(payload, "base64");
  try {
    return decodeImage(bytes, field, { maxPixels: limits.maxInputPixels, maxSide: limits.maxInputSide });
  } catch (err) {
    if (err instanceof ImageError) throw new HttpError(400, err.message);
    throw err;
  }
}

function describe(text: string): string {
  return text.length > 40
    ? `${JSON.stringify(text.slice(0, 40))}... (${text.length} characters)`
    : JSON.stringify(text);
}
