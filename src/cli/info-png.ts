/**
 * The PNG inspector of `diffuse info`: size and channels, every text chunk, and the generation parameters of a
 * `parameters` chunk (A1111's format, as diffuse generate writes it) field by field.
 */
import { readFile } from "node:fs/promises";
import { decodeImage, FILE_IMAGE_LIMITS } from "../io/image.js";
import { parseParametersText } from "../pipelines/params.js";
import { CliError } from "./errors.js";
import { formatTable, printable, truncate } from "./format.js";
import type { Inspector } from "./info.js";

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Describes PNG files (recognised by their signature or the .png extension). */
export const pngInspector: Inspector = {
  kind: "PNG image",
  detect(path, head) {
    if (head.length >= 8 && SIGNATURE.every((b, i) => head[i] === b)) return true;
    return /\.png$/i.test(path);
  },
  async inspect(path) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new CliError(
        `${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
    const image = decodeImage(bytes, path, FILE_IMAGE_LIMITS);
    const kind = image.channels === 4 ? "RGBA" : image.channels === 3 ? "RGB" : "gray";
    const lines = [`${path}: PNG, ${image.width}x${image.height} ${kind}`];
    const json: Record<string, unknown> = {
      path,
      format: "png",
      width: image.width,
      height: image.height,
      channels: image.channels,
      text: image.text,
    };
    const params = image.text.parameters;
    if (params !== undefined) {
      const parsed = parseParametersText(params);
      json.parameters = {
        prompt: parsed.prompt,
        negativePrompt: parsed.negativePrompt,
        ...Object.fromEntries(parsed.fields),
      };
      lines.push("generation parameters:", `  prompt: ${printable(parsed.prompt)}`);
      if (parsed.negativePrompt) lines.push(`  negative prompt: ${printable(parsed.negativePrompt)}`);
      if (parsed.fields.size > 0) {
        const rows = [...parsed.fields].map(([k, v]) => [`  ${printable(k)}`, printable(v)]);
        lines.push(formatTable(["  field", "value"], rows));
      }
    }
    const others = Object.entries(image.text).filter(([k]) => k !== "parameters");
    if (others.length > 0) {
      lines.push("text chunks:");
      for (const [k, v] of others) lines.push(`  ${printable(k)}: ${printable(truncate(v, 100))}`);
    } else if (params === undefined) {
      lines.push("text chunks: none (no generation parameters)");
    }
    return { json, text: lines.join("\n") };
  },
};
