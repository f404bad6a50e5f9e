// A set of captioned images for fine-tuning (LoRA): a folder of PNG / JPEG files, each with a same-name `.txt`
// caption next to it (`cat.png` + `cat.txt`, kohya's layout), or a JSON lines file with one {"file", "text"} object
// per image (`file_name` is accepted for `file`, as Hugging Face's imagefolder metadata.jsonl; paths relative to the
// file's folder). Only the list is held; images are read one at a time ({@link readTrainingImage}), composited over
// white when they have transparency, center-cropped to a square and resized (Lanczos) to the model's size.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { type Image, readImage } from "../../io/image.js";
import { resizeImage } from "../../pipelines/resize.js";
import { DiffuseError } from "../../tensor/errors.js";

/** A data set that cannot be used: a missing folder, no images, an image without caption, a bad JSON line. */
export class DatasetError extends DiffuseError {}

/** One image and its caption. */
export interface CaptionedImage {
  /** Path of the image file. */
  readonly file: string;
  readonly caption: string;
}

/** The images of a data set (nothing decoded yet). */
export interface CaptionedImages {
  /** The folder or JSON lines file the set was read from. */
  readonly source: string;
  readonly items: readonly CaptionedImage[];
}

const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg"]);

function listSome(items: readonly string[], n = 5): string {
  const shown = items.slice(0, n).join(", ");
  return items.length > n ? `${shown}, ... (${items.length} in all)` : shown;
}

function fromFolder(dir: string): CaptionedImages {
  const names = readdirSync(dir).sort();
  const images = names.filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase()));
  if (images.length === 0) {
    throw new DatasetError(
      `${dir}: no images (.png, .jpg, .jpeg) in the folder; put the training images there, each with a same-name .txt caption`,
    );
  }
  const missing: string[] = [];
  const empty: string[] = [];
  const items: CaptionedImage[] = [];
  for (const name of images) {
    const txt = join(dir, `${basename(name, extname(name))}.txt`);
    if (!existsSync(txt)) {
      missing.push(name);
      continue;
    }
    const caption = readFileSync(txt, "utf8").trim();
    if (caption === "") empty.push(basename(txt));
    items.push({ file: join(dir, name), caption });
  }
  if (missing.length > 0) {
    throw new DatasetError(
      `${dir}: ${missing.length} of ${images.length} images have no caption file: ${listSome(missing)}; ` +
        "write each image's caption into a .txt file of the same name (cat.png -> cat.txt)",
    );
  }
  if (empty.length > 0) throw new DatasetError(`${dir}: empty caption files: ${listSome(empty)}`);
  return { source: dir, items };
}

function fromJsonLines(path: string): CaptionedImages {
  const dir = dirname(path);
  const items: CaptionedImage[] = [];
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${path} line ${i + 1}`;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      throw new DatasetError(`${where}: not valid JSON (${(err as Error).message})`);
    }
    const file = row.file ?? row.file_name;
    const text = row.text;
    if (typeof file !== "string" || file === "" || typeof text !== "string" || text.trim() === "") {
      throw new DatasetError(
        `${where}: expected {"file": "image.png", "text": "its caption"} with a non-empty caption, got ${line.slice(0, 120)}`,
      );
    }
    const full = resolve(dir, file);
    if (!existsSync(full)) throw new DatasetError(`${where}: image ${full} does not exist`);
    items.push({ file: full, caption: text.trim() });
  });
  if (items.length === 0) throw new DatasetError(`${path}: no images listed`);
  return { source: path, items };
}

/**
 * The captioned images of a folder or JSON lines file (see the file comment), checked: every image has a non-empty
 * caption and every listed file exists. Throws {@link DatasetError} naming what is wrong.
 */
export function listCaptionedImages(path: string): CaptionedImages {
  const info = existsSync(path) ? statSync(path) : null;
  if (!info)
    throw new DatasetError(
      `${path} does not exist; --data takes a folder of images with .txt captions, or a .jsonl file`,
    );
  if (info.isDirectory()) return fromFolder(path);
  if (extname(path).toLowerCase() === ".jsonl") return fromJsonLines(path);
  throw new DatasetError(
    `${path} is a file but not a .jsonl list; --data takes a folder of images with .txt captions, or a .jsonl file`,
  );
}

/** RGB of an image (RGBA composited over white, gray replicated). */
function toRgb(image: Image): Image {
  if (image.channels === 3) return image;
  const n = image.width * image.height;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      if (image.channels === 1) data[i * 3 + c] = image.data[i]!;
      else {
        const a = image.data[i * 4 + 3]! / 255;
        data[i * 3 + c] = Math.round(image.data[i * 4 + c]! * a + 255 * (1 - a));
      }
    }
  }
  return { width: image.width, height: image.height, channels: 3, data };
}

/** The centered square of side min(width, height). */
function centerSquare(image: Image): Image {
  const side = Math.min(image.width, image.height);
  if (image.width === side && image.height === side) return image;
  const x0 = Math.floor((image.width - side) / 2);
  const y0 = Math.floor((image.height - side) / 2);
  const data = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    const from = ((y0 + y) * image.width + x0) * 3;
    data.set(image.data.subarray(from, from + side * 3), y * side * 3);
  }
  return { width: side, height: side, channels: 3, data };
}

/**
 * Reads one training image as [3, size, size] float32 planes in [-1, 1]: decoded (an unreadable file throws
 * ImageError naming it), composited over white, center-cropped to a square and resized to `size`.
 */
export function readTrainingImage(file: string, size: number): Float32Array {
  const square = resizeImage(centerSquare(toRgb(readImage(file))), size, size);
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = (square.data[i * 3 + c]! / 255) * 2 - 1;
  }
  return out;
}

/** Images `start` to `start + n` of `set` as [n, 3, size, size] planes (see {@link readTrainingImage}). */
export function readTrainingImages(
  set: CaptionedImages,
  start: number,
  n: number,
  size: number,
): Float32Array {
  const per = 3 * size * size;
  const out = new Float32Array(n * per);
  for (let k = 0; k < n; k++) out.set(readTrainingImage(set.items[start + k]!.file, size), k * per);
  return out;
}
