// The short hashes A1111 writes into generation parameters: "Model hash" (AutoV2) = first 10 hex digits of the
// file's sha256; "Lora hashes" = first 12 hex digits of the sha256 of a safetensors file's tensor data (the bytes
// after the header; kohya's "addnet" hash). A file path (Node.js) is streamed through the installed file system,
// never held in memory; other inputs (a Blob, a URL, bytes: browsers) are hashed with Web Crypto, which has no
// streaming digest, so they are read whole, up to MAX_IN_MEMORY_HASH_BYTES.
import { IoError } from "../io/errors.js";
import { describeInput, type FileInput, getFileSystem, openSource } from "../io/source.js";
import { PipelineError } from "./errors.js";

/**
 * The largest input hashed in memory (a Blob, URL or buffer; file paths are streamed at any size): 256 MiB, which
 * covers LoRAs and small models; a multi-GB checkpoint picked in a browser goes without a model hash.
 */
export const MAX_IN_MEMORY_HASH_BYTES = 256 * 2 ** 20;

function hex(digest: ArrayBuffer): string {
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(input: FileInput, start: number): Promise<string> {
  const fs = getFileSystem();
  const label = describeInput(input);
  try {
    if (typeof input === "string" && fs) return await fs.sha256(input, start);
    const source = await openSource(input);
    try {
      const length = source.size - start;
      if (length > MAX_IN_MEMORY_HASH_BYTES) {
        throw new PipelineError(
          `${label}: ${source.size} bytes is too large to hash in memory (at most ${MAX_IN_MEMORY_HASH_BYTES}); hash it by its file path in Node.js`,
        );
      }
      const bytes = await source.read(start, Math.max(0, length));
      return hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
    } finally {
      source.close();
    }
  } catch (err) {
    if (err instanceof PipelineError) throw err;
    throw new PipelineError(`${label}: cannot hash (${(err as Error).message})`);
  }
}

/** True when {@link fileSha256} can hash `input`: a path, or another input of at most 256 MiB. */
export function canHash(input: FileInput): boolean {
  if (typeof input === "string" && getFileSystem()) return true;
  if (typeof Blob !== "undefined" && input instanceof Blob) return input.size <= MAX_IN_MEMORY_HASH_BYTES;
  if (input instanceof ArrayBuffer || input instanceof Uint8Array)
    return input.byteLength <= MAX_IN_MEMORY_HASH_BYTES;
  return true;
}

/** sha256 of the whole file, hex. */
export function fileSha256(input: FileInput): Promise<string> {
  return sha256Hex(input, 0);
}

/** A1111's AutoV2 model hash of a checkpoint file: the first 10 hex digits of its sha256. */
export async function autoV2Hash(input: FileInput): Promise<string> {
  return (await fileSha256(input)).slice(0, 10);
}

/** The hex sha256 of a safetensors file's data section (everything after the 8-byte length and the header). */
export async function safetensorsDataSha256(input: FileInput): Promise<string> {
  const label = describeInput(input);
  let headerLength: number;
  try {
    const source = await openSource(input);
    try {
      if (source.size < 8) throw new PipelineError(`${label}: too short for a safetensors file`);
      const head = await source.read(0, 8);
      headerLength = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
    } finally {
      source.close();
    }
  } catch (err) {
    if (err instanceof PipelineError) throw err;
    const why = err instanceof IoError ? err.message : String(err);
    throw new PipelineError(`${label}: cannot read (${why})`);
  }
  return sha256Hex(input, 8 + headerLength);
}

/** A1111's LoRA hash: first 12 hex digits of {@link safetensorsDataSha256}. */
export async function loraHash(input: FileInput): Promise<string> {
  return (await safetensorsDataSha256(input)).slice(0, 12);
}

/**
 * The file whose hash identifies a model: the file itself for a single-file checkpoint; for a diffusers folder,
 * the UNet weights (`unet/diffusion_pytorch_model[.fp16].safetensors`, or the first shard of a sharded one).
 * Node.js (a path).
 */
export async function modelHashFile(dirOrFile: string): Promise<string> {
  const fs = getFileSystem();
  if (!fs) throw new PipelineError(`${dirOrFile}: finding a model's hash file needs file paths (Node.js)`);
  if (await fs.isFile(dirOrFile)) return dirOrFile;
  if (!(await fs.isDirectory(dirOrFile))) throw new PipelineError(`${dirOrFile}: cannot read (not found)`);
  const unet = fs.join(dirOrFile, "unet");
  const names = (await fs.list(unet)) ?? [];
  const preferred = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"];
  const pick =
    preferred.find((n) => names.includes(n)) ??
    names.filter((n) => /^diffusion_pytorch_model.*\.safetensors$/.test(n)).sort()[0];
  if (!pick) throw new PipelineError(`${dirOrFile}: no unet/diffusion_pytorch_model*.safetensors to hash`);
  return fs.join(unet, pick);
}

/** A1111's "Model hash" of a checkpoint file or diffusers folder (see {@link modelHashFile}). */
export async function modelHash(dirOrFile: string): Promise<string> {
  return autoV2Hash(await modelHashFile(dirOrFile));
}
