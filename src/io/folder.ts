/**
 * Model folders from anywhere: a diffusers folder (`model_index.json`, `unet/config.json`, ...) given as a path
 * (Node.js), a base URL (fetch), or a map of file names to contents (`"unet/config.json"` -> Blob / ArrayBuffer /
 * Uint8Array, e.g. from a file picker). Loaders take a {@link ModelSource} and read through {@link ModelFolder}.
 */
import { ArgumentError } from "../tensor/errors.js";
import { IoError } from "./errors.js";
import { type FileInput, fetchOk, getFileSystem, readText } from "./source.js";

/** File contents by relative name ("unet/config.json"); "/" separates folders. */
export type FileMap =
  | ReadonlyMap<string, Blob | ArrayBuffer | Uint8Array>
  | Readonly<Record<string, Blob | ArrayBuffer | Uint8Array>>;

/**
 * A model folder: a path (Node.js; in browsers a string is a URL), a base `URL`, a {@link FileMap}, or a
 * {@link ModelFolder}.
 */
export type ModelSource = string | URL | FileMap | ModelFolder;

/** Read access to the files of a model folder, however it is stored. */
export interface ModelFolder {
  /** The folder's path, URL or name (in error messages). */
  readonly label: string;
  /** A file of the folder as something `openSource` / `openSafetensors` read (throws IoError when a map lacks it). */
  file(name: string): FileInput;
  /** The path or URL of a file, for messages. */
  describe(name: string): string;
  /** A sub-folder ("unet"). */
  sub(name: string): ModelFolder;
  /** A file as UTF-8 text, or null when it does not exist. */
  readText(name: string): Promise<string | null>;
  /** True when the file exists. */
  exists(name: string): Promise<boolean>;
  /** The names in the folder; undefined when it cannot be listed (URLs); throws IoError when it is missing. */
  list(): Promise<string[] | undefined>;
}

function isModelFolder(x: unknown): x is ModelFolder {
  return typeof (x as ModelFolder).readText === "function" && typeof (x as ModelFolder).sub === "function";
}

async function textOrNull(input: () => FileInput): Promise<string | null> {
  try {
    return await readText(input());
  } catch (err) {
    if (err instanceof IoError && err.notFound) return null;
    throw err;
  }
}

/** A folder of the installed file system (Node.js). */
function pathFolder(dir: string): ModelFolder {
  const fs = getFileSystem()!;
  return {
    label: dir,
    file: (name) => fs.join(dir, name),
    describe: (name) => fs.join(dir, name),
    sub: (name) => pathFolder(fs.join(dir, name)),
    readText: (name) => textOrNull(() => fs.join(dir, name)),
    exists: (name) => fs.isFile(fs.join(dir, name)),
    async list() {
      const names = await fs.list(dir);
      if (!names) throw new IoError(`folder ${dir} not found`, { notFound: true });
      return names;
    },
  };
}

/** A folder on a web server: files are fetched from `base` + name. */
function urlFolder(base: URL): ModelFolder {
  const dir = base.href.endsWith("/") ? base : new URL(`${base.href}/`);
  const at = (name: string) => new URL(name, dir);
  return {
    label: dir.href,
    file: at,
    describe: (name) => at(name).href,
    sub: (name) => urlFolder(at(`${name}/`)),
    readText: (name) => textOrNull(() => at(name)),
    async exists(name) {
      try {
        await fetchOk(at(name), { method: "HEAD" });
        return true;
      } catch (err) {
        if (err instanceof IoError && err.notFound) return false;
        throw err;
      }
    },
    list: async () => undefined,
  };
}

/** A folder held in memory as name -> contents. */
function mapFolder(files: ReadonlyMap<string, Blob | ArrayBuffer | Uint8Array>, prefix: string): ModelFolder {
  const label = prefix ? prefix.slice(0, -1) : "<files>";
  const get = (name: string) => files.get(prefix + name);
  const file = (name: string): FileInput => {
    const found = get(name);
    if (found === undefined)
      throw new IoError(`${prefix}${name}: not among the given files`, { notFound: true });
    return found;
  };
  return {
    label,
    file,
    describe: (name) => prefix + name,
    sub: (name) => mapFolder(files, `${prefix}${name}/`),
    readText: (name) => textOrNull(() => file(name)),
    exists: async (name) => get(name) !== undefined,
    async list() {
      const names = new Set<string>();
      for (const key of files.keys())
        if (key.startsWith(prefix)) names.add(key.slice(prefix.length).split("/")[0]!);
      if (names.size === 0 && prefix)
        throw new IoError(`folder ${label} not among the given files`, { notFound: true });
      return [...names];
    },
  };
}

/** A string as a URL relative to the page (browsers) or an absolute URL. */
function urlOf(s: string): URL {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  return base ? new URL(s, base) : new URL(s);
}

/** Read access to a model folder given as a path, a URL, a file map or a folder (see {@link ModelSource}). */
export function modelFolder(source: ModelSource): ModelFolder {
  if (typeof source === "string") return getFileSystem() ? pathFolder(source) : urlFolder(urlOf(source));
  if (source instanceof URL) return urlFolder(source);
  if (isModelFolder(source)) return source;
  if (source instanceof Map) return mapFolder(normalized(source), "");
  if (typeof source === "object" && source !== null)
    return mapFolder(normalized(new Map(Object.entries(source))), "");
  throw new ArgumentError(`expected a folder path, URL or map of files, got ${typeof source}`);
}

/** Keys without a leading "./" or "/". */
function normalized<V>(files: ReadonlyMap<string, V>): Map<string, V> {
  return new Map([...files].map(([k, v]) => [k.replace(/^\.?\//, ""), v]));
}
