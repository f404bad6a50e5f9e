// The short hashes A1111 writes into generation parameters, computed by streaming the file (never held in memory):
// "Model hash" (AutoV2) = first 10 hex digits of the file's sha256; "Lora hashes" = first 12 hex digits of the
// sha256 of a safetensors file's tensor data (the bytes after the header; kohya's "addnet" hash). Node.js only.
import { PipelineError } from "./errors.js";

async function sha256Hex(path: string, start: number): Promise<string> {
  const { createHash } = await import("node:crypto");
  const { createReadStream } = await import("node:fs");
  const hash = createHash("sha256");
  try {
    for await (const chunk of createReadStream(path, { start, highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
    }
  } catch (err) {
    throw new PipelineError(
      `${path}: cannot hash (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  return hash.digest("hex");
}

/** sha256 of the whole file, hex. */
export function fileSha256(path: string): Promise<string> {
  return sha256Hex(path, 0);
}

/** A1111's AutoV2 model hash of a checkpoint file: the first 10 hex digits of its sha256. */
export async function autoV2Hash(path: string): Promise<string> {
  return (await fileSha256(path)).slice(0, 10);
}

/** The hex sha256 of a safetensors file's data section (everything after the 8-byte length and the header). */
export async function safetensorsDataSha256(path: string): Promise<string> {
  const { open } = await import("node:fs/promises");
  let headerLength: bigint;
  try {
    const handle = await open(path, "r");
    try {
      const head = Buffer.alloc(8);
      const { bytesRead } = await handle.read(head, 0, 8, 0);
      if (bytesRead < 8) throw new PipelineError(`${path}: too short for a safetensors file`);
      headerLength = head.readBigUInt64LE(0);
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof PipelineError) throw err;
    throw new PipelineError(
      `${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  return sha256Hex(path, 8 + Number(headerLength));
}

/** A1111's LoRA hash: first 12 hex digits of {@link safetensorsDataSha256}. */
export async function loraHash(path: string): Promise<string> {
  return (await safetensorsDataSha256(path)).slice(0, 12);
}

/**
 * The file whose hash identifies a model: the file itself for a single-file checkpoint; for a diffusers folder,
 * the UNet weights (`unet/diffusion_pytorch_model[.fp16].safetensors`, or the first shard of a sharded one).
 */
export async function modelHashFile(dirOrFile: string): Promise<string> {
  const { stat, readdir } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const info = await stat(dirOrFile).catch((err: NodeJS.ErrnoException) => {
    throw new PipelineError(`${dirOrFile}: cannot read (${err.code ?? err.message})`);
  });
  if (info.isFile()) return dirOrFile;
  const unet = join(dirOrFile, "unet");
  const names = await readdir(unet).catch(() => [] as string[]);
  const preferred = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"];
  const pick =
    preferred.find((n) => names.includes(n)) ??
    names.filter((n) => /^diffusion_pytorch_model.*\.safetensors$/.test(n)).sort()[0];
  if (!pick) throw new PipelineError(`${dirOrFile}: no unet/diffusion_pytorch_model*.safetensors to hash`);
  return join(unet, pick);
}

/** A1111's "Model hash" of a checkpoint file or diffusers folder (see {@link modelHashFile}). */
export async function modelHash(dirOrFile: string): Promise<string> {
  return autoV2Hash(await modelHashFile(dirOrFile));
}
