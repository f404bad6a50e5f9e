// The images of the ComfyUI endpoints, all in memory: those prompts made (names pointing at the PNGs the queue keeps
// with each finished job) and those clients send to POST /upload/image for LoadImage. GET /view serves only these:
// a request's filename / subfolder / type are checked, then looked up as a key, never joined into a path.
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { decodeImage, ImageError } from "../io/image.js";
import { HttpError } from "./errors.js";
import type { ServerLimits } from "./limits.js";

/** Where ComfyUI files an image: made by a SaveImage ("output"), a PreviewImage ("temp"), or uploaded ("input"). */
export type ImageType = "output" | "temp" | "input";

/** An image as ComfyUI names it (in `executed` messages, /history and /view). */
export interface ImageRef {
  filename: string;
  subfolder: string;
  type: ImageType;
}

interface StoredImage {
  /** The prompt that made it (its images go when it goes); none for uploads. */
  owner?: string;
  bytes: () => Buffer | undefined;
}

// uploads are kept until this many (or this many bytes) are held, then the oldest go
const MAX_UPLOADS = 64;
const MAX_UPLOAD_BYTES = 256 * 1024 * 1024;

// one name part: letters, digits, space and . _ - ( ) (not "." or "..")
const NAME_PART = /^(?!\.{1,2}$)[\w .()-]{1,200}$/;

const keyOf = (ref: ImageRef) => `${ref.type}\0${ref.subfolder}\0${ref.filename}`;

/** The images the ComfyUI endpoints can show and load, by name. */
export class ComfyImages {
  #images = new Map<string, StoredImage>();
  #uploads: { key: string; size: number }[] = [];
  // one counter for every prefix: names never repeat (ComfyUI counts per prefix, on disk)
  #counter = 0;

  /** Names the images an output node shows; they stay while the prompt `owner` is kept. */
  addOutputs(
    owner: string,
    out: { type: "output" | "temp"; subfolder: string; prefix: string },
    images: (() => Buffer | undefined)[],
  ): ImageRef[] {
    const prefix = out.type === "temp" ? `${out.prefix}_${randomBytes(4).toString("hex")}` : out.prefix;
    return images.map((bytes) => {
      const ref: ImageRef = {
        filename: `${prefix}_${String(++this.#counter).padStart(5, "0")}_.png`,
        subfolder: out.subfolder,
        type: out.type,
      };
      this.#images.set(keyOf(ref), { owner, bytes });
      return ref;
    });
  }

  /** Drops the images of a prompt. */
  drop(owner: string): void {
    for (const [key, image] of this.#images) if (image.owner === owner) this.#images.delete(key);
  }

  /** The bytes of an image, if this server has it. */
  get(ref: ImageRef): Buffer | undefined {
    return this.#images.get(keyOf(ref))?.bytes();
  }

  /** Keeps an uploaded image (a PNG or JPEG that decodes, within the limits); a taken name becomes "name (1).png" unless `overwrite`. */
  upload(name: string, subfolder: string, bytes: Buffer, overwrite: boolean, limits: ServerLimits): ImageRef {
    try {
      decodeImage(bytes, name, { maxPixels: limits.maxInputPixels, maxSide: limits.maxInputSide });
    } catch (err) {
      if (err instanceof ImageError)
        throw new HttpError(400, `image must be a PNG or JPEG file: ${err.message}`);
      throw err;
    }
    let ref: ImageRef = { filename: name, subfolder, type: "input" };
    const dot = name.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
    for (let n = 1; !overwrite && this.#images.has(keyOf(ref)); n++)
      ref = { ...ref, filename: `${stem} (${n})${ext}` };
    const key = keyOf(ref);
    this.#uploads = this.#uploads.filter((u) => u.key !== key);
    this.#uploads.push({ key, size: bytes.length });
    this.#images.set(key, { bytes: () => bytes });
    let total = this.#uploads.reduce((sum, u) => sum + u.size, 0);
    while (this.#uploads.length > MAX_UPLOADS || total > MAX_UPLOAD_BYTES) {
      const oldest = this.#uploads.shift()!;
      this.#images.delete(oldest.key);
      total -= oldest.size;
    }
    return ref;
  }

  /** LoadImage's list: uploaded images ("name" or "subfolder/name"), then made ones ("name [output]"). */
  names(): string[] {
    const names: string[] = [];
    for (const key of this.#images.keys()) {
      const [type, subfolder, filename] = key.split("\0") as [ImageType, string, string];
      const path = subfolder ? `${subfolder}/${filename}` : filename;
      names.push(type === "input" ? path : `${path} [${type}]`);
    }
    return names;
  }

  /** The bytes of a LoadImage name: "name", "subfolder/name", or annotated "name [output]" / "[temp]" / "[input]". */
  find(value: string): Buffer | undefined {
    const annotated = /^(.*?) \[(output|temp|input)\]$/.exec(value);
    const path = annotated ? annotated[1]! : value;
    const slash = path.lastIndexOf("/");
    return this.get({
      filename: path.slice(slash + 1),
      subfolder: slash >= 0 ? path.slice(0, slash) : "",
      type: (annotated?.[2] as ImageType | undefined) ?? "input",
    });
  }
}

/** A checked subfolder ("" or "a/b"): 400 for "..", absolute paths, backslashes, odd characters. */
function checkSubfolder(subfolder: string, field: string): string {
  if (subfolder === "") return "";
  if (!subfolder.split("/").every((p) => NAME_PART.test(p))) {
    throw new HttpError(
      400,
      `${field} must be a relative folder of letters, digits, spaces and . _ - ( ) ("a/b"; no "..", no leading "/"), found ${JSON.stringify(subfolder).slice(0, 80)}`,
    );
  }
  return subfolder;
}

/** A checked file name (no folders): 400 otherwise. */
function checkFilename(filename: string, field: string): string {
  if (!NAME_PART.test(filename)) {
    throw new HttpError(
      400,
      `${field} must be a file name of letters, digits, spaces and . _ - ( ) (no "/", no ".."), found ${JSON.stringify(filename).slice(0, 80)}`,
    );
  }
  return filename;
}

/** The parts of a multipart/form-data body, by field name (the first of each). */
function parseMultipart(body: Buffer, contentType: string): Map<string, { filename?: string; data: Buffer }> {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!match) throw new HttpError(400, "a multipart/form-data body needs a boundary in its content-type");
  const delimiter = Buffer.from(`--${match[1] ?? match[2]}`);
  const parts = new Map<string, { filename?: string; data: Buffer }>();
  const broken = () => new HttpError(400, "the multipart/form-data body is cut short or malformed");
  let at = body.indexOf(delimiter);
  if (at < 0) throw broken();
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === "--") return parts; // the closing delimiter
    if (body.subarray(at, at + 2).toString() !== "\r\n") throw broken();
    const headerEnd = body.indexOf("\r\n\r\n", at);
    const next =
      headerEnd < 0 ? -1 : body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), headerEnd);
    if (next < 0) throw broken();
    const disposition =
      /^content-disposition:(.*)$/im.exec(body.subarray(at, headerEnd).toString())?.[1] ?? "";
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1];
    if (name !== undefined && !parts.has(name))
      parts.set(name, { filename, data: body.subarray(headerEnd + 4, next) });
    at = next + 2;
  }
}

/** Registers GET /view and POST /upload/image on `scope` (which gets a multipart/form-data parser). */
export function registerImageRoutes(scope: FastifyInstance, images: ComfyImages, limits: ServerLimits): void {
  scope.addContentTypeParser("multipart/form-data", { parseAs: "buffer" }, (_request, body, done) =>
    done(null, body),
  );
  scope.get<{ Querystring: { filename: string; subfolder?: string; type?: ImageType } }>(
    "/view",
    {
      schema: {
        summary:
          "ComfyUI: an image a prompt made (or one uploaded), by the name /history and `executed` give",
        querystring: {
          type: "object",
          required: ["filename"],
          properties: {
            filename: { type: "string" },
            subfolder: { type: "string", default: "" },
            type: { type: "string", enum: ["output", "temp", "input"], default: "output" },
          },
        },
      },
    },
    async (request, reply) => {
      const { filename, subfolder = "", type = "output" } = request.query;
      const ref = {
        filename: checkFilename(filename, "filename"),
        subfolder: checkSubfolder(subfolder, "subfolder"),
        type,
      };
      const bytes = images.get(ref);
      if (!bytes) {
        throw new HttpError(
          404,
          `no ${type} image ${JSON.stringify(subfolder ? `${subfolder}/${filename}` : filename)}: /view serves the images this server made (for a while) and those sent to /upload/image`,
        );
      }
      const jpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
      return reply
        .type(jpeg ? "image/jpeg" : "image/png")
        .header("content-disposition", `inline; filename="${ref.filename}"`)
        .send(bytes);
    },
  );
  scope.post(
    "/upload/image",
    {
      schema: {
        summary:
          'ComfyUI: upload an image for LoadImage (multipart/form-data: image, subfolder, overwrite); answers { name, subfolder, type: "input" }',
      },
    },
    async (request) => {
      const contentType = request.headers["content-type"] ?? "";
      if (!Buffer.isBuffer(request.body) || !/^multipart\/form-data/i.test(contentType)) {
        throw new HttpError(
          400,
          `expected a multipart/form-data body with an "image" file, found ${contentType || "none"}`,
        );
      }
      const parts = parseMultipart(request.body, contentType);
      const image = parts.get("image");
      if (!image || image.filename === undefined) {
        throw new HttpError(
          400,
          `expected an "image" file field, found the fields ${[...parts.keys()].join(", ") || "none"}`,
        );
      }
      const type = parts.get("type")?.data.toString() || "input";
      if (type !== "input")
        throw new HttpError(
          400,
          `type must be "input" (uploads are LoadImage's inputs), found ${JSON.stringify(type.slice(0, 40))}`,
        );
      // the client's file name, without folders, in the characters /view takes
      const given = image.filename
        .split(/[\\/]/)
        .at(-1)!
        .replace(/[^\w .()-]/g, "_")
        .slice(-180);
      const name = NAME_PART.test(given) ? given : "image.png";
      const subfolder = checkSubfolder(parts.get("subfolder")?.data.toString() ?? "", "subfolder");
      const overwrite = parts.get("overwrite")?.data.toString() === "true";
      const ref = images.upload(name, subfolder, Buffer.from(image.data), overwrite, limits);
      return { name: ref.filename, subfolder: ref.subfolder, type: ref.type };
    },
  );
}
