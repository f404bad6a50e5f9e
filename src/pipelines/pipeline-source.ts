// What loadPipelineComponents is given, sorted out: a single checkpoint file or a model folder (a path in Node.js,
// a URL, a map of files, a Blob), and small name helpers that work on paths and URLs alike (no node:path: this
// runs in browsers).
import { CheckpointError, IoError } from "../io/errors.js";
import { type ModelFolder, type ModelSource, modelFolder } from "../io/folder.js";
import { type FileInput, getFileSystem } from "../io/source.js";

/**
 * Where a Stable Diffusion model is: a diffusers folder ({@link ModelSource}: a path in Node.js, a base URL, a map
 * of files) or a single-file `.safetensors` checkpoint (a path, a URL whose name ends in `.safetensors`, a `Blob` /
 * `File`, or bytes).
 */
export type PipelineSource = ModelSource | Blob | ArrayBuffer | Uint8Array;

/**
 * Whether `name` is a sub-folder of `folder`: true or false for paths and maps of files, null for URLs (a web
 * server lists no folders; the files read next then name what is missing).
 */
export async function hasFolder(folder: ModelFolder, name: string): Promise<boolean | null> {
  try {
    return (await folder.sub(name).list()) === undefined ? null : true;
  } catch (err) {
    if (err instanceof IoError && err.notFound) return false;
    throw err;
  }
}

/** A folder's last name ("sd15" of "/models/sd15/"), or `fallback` for a map of files. */
export function folderName(folder: ModelFolder, fallback: string): string {
  if (folder.label === "<files>") return fallback;
  return baseName(folder.label);
}

/** The last segment of a path or URL ("a/b/c.safetensors" -> "c.safetensors"). */
export function baseName(label: string): string {
  const trimmed = label.replace(/[/\\]+$/, "");
  return trimmed.slice(Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\")) + 1);
}

/** A file name without its extension. */
export function stem(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

/** A single file (a Blob, bytes, a URL or path naming a .safetensors / pickle file) or else a folder. */
export async function resolveSource(
  source: PipelineSource,
): Promise<{ file: FileInput } | { folder: ModelFolder }> {
  if (source instanceof ArrayBuffer || source instanceof Uint8Array) return { file: source };
  if (typeof Blob !== "undefined" && source instanceof Blob) return { file: source };
  const fs = getFileSystem();
  if (typeof source === "string" && fs) {
    if (await fs.isDirectory(source)) return { folder: modelFolder(source) };
    if (await fs.isFile(source)) return { file: source };
    throw new CheckpointError(`${source}: not found (no such file or folder)`);
  }
  if (typeof source === "string" || source instanceof URL) {
    // a URL folder's label is its absolute address with a trailing "/"
    const url = new URL(modelFolder(source).label.replace(/\/+$/, ""));
    if (/\.(safetensors|ckpt|pt|pth|bin)$/i.test(url.pathname)) return { file: url };
  }
  return { folder: modelFolder(source as ModelSource) };
}
