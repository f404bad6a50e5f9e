/**
 * `diffuse info PATH [--json]`: describes what is at PATH. Each kind of input has an inspector that recognises
 * it (by extension, by its first bytes, or a folder by its files) and builds a report: model folders and
 * single-file Stable Diffusion checkpoints (info-model.ts), safetensors files, PNG images (info-png.ts).
 */
import { open, stat } from "node:fs/promises";
import type { Command } from "commander";
import { describeFsError } from "../io/errors.js";
import { MAX_HEADER_BYTES, openSafetensors } from "../io/safetensors.js";
import { CliError } from "./errors.js";
import { formatBytes, formatCount, formatTable, truncate } from "./format.js";
import { checkpointInspector, modelFolderInspector } from "./info-model.js";
import { pngInspector } from "./info-png.js";

/** What `info` prints: `json` for --json, `text` for people. */
export interface InfoReport {
  json: Record<string, unknown>;
  text: string;
}

/** Recognises one kind of input and describes it. */
export interface Inspector {
  /** Human name of the kind, used in error messages ("safetensors file"). */
  readonly kind: string;
  /** True for inspectors of folders (they see only folders; the others only files). */
  readonly folders?: boolean;
  /** True when this inspector handles the path; `head` holds a file's first bytes (up to 16; empty for folders). */
  detect(path: string, head: Uint8Array): boolean | Promise<boolean>;
  inspect(path: string): Promise<InfoReport>;
}

const safetensorsInspector: Inspector = {
  kind: "safetensors file",
  detect(path, head) {
    if (/\.safetensors$/i.test(path)) return true;
    // sniff: a plausible little-endian header length followed by "{"
    if (head.length < 9 || head[8] !== 0x7b) return false;
    const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    return n >= 2n && n <= BigInt(MAX_HEADER_BYTES);
  },
  async inspect(path) {
    const file = await openSafetensors(path);
    try {
      const { header } = file;
      const dtypes: Record<string, number> = {};
      let parameters = 0;
      for (const e of header.entries) {
        dtypes[e.dtype] = (dtypes[e.dtype] ?? 0) + 1;
        parameters += e.numel;
      }
      const fileBytes = header.dataStart + header.dataLength;
      const json = {
        path,
        format: "safetensors",
        fileBytes,
        headerBytes: header.headerLength,
        tensorCount: header.entries.length,
        parameterCount: parameters,
        dtypes,
        metadata: header.metadata,
        tensors: header.entries.map((e) => ({
          name: e.name,
          dtype: e.dtype,
          shape: e.shape,
          parameters: e.numel,
          dataOffsets: e.dataOffsets,
        })),
      };
      const lines = [
        `${path}: safetensors, ${formatBytes(fileBytes)} (header ${formatCount(header.headerLength)} bytes)`,
        `tensors: ${formatCount(header.entries.length)}, parameters: ${formatCount(parameters)} (${Object.entries(
          dtypes,
        )
          .map(([d, c]) => `${d} x ${formatCount(c)}`)
          .join(", ")})`,
      ];
      const meta = Object.entries(header.metadata ?? {});
      if (meta.length > 0) {
        lines.push("metadata:");
        let cut = false;
        for (const [k, v] of meta) {
          const shown = truncate(v, 100);
          cut ||= shown !== v;
          lines.push(`  ${k}: ${shown}`);
        }
        if (cut) lines.push("  (long values shortened; --json prints them in full)");
      } else {
        lines.push("metadata: none");
      }
      if (header.entries.length > 0) {
        const rows = header.entries.map((e) => [
          e.name,
          e.dtype,
          `[${e.shape.join(", ")}]`,
          formatCount(e.numel),
        ]);
        lines.push("", formatTable(["name", "dtype", "shape", "parameters"], rows, [3]));
      }
      return { json, text: lines.join("\n") };
    } finally {
      file.close();
    }
  },
};

/** Inspectors tried in order; the first whose `detect` accepts the path handles it. */
export const inspectors: Inspector[] = [
  modelFolderInspector,
  checkpointInspector,
  safetensorsInspector,
  pngInspector,
];

/** Describes the file at `path` with the first matching inspector. */
export async function describePath(path: string): Promise<InfoReport> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    throw new CliError(`${path}: ${describeFsError(err)}`);
  }
  const kinds = inspectors.map((i) => i.kind).join(", ");
  const folder = info.isDirectory();
  if (!folder && !info.isFile()) throw new CliError(`${path} is not a file (info reads: ${kinds})`);
  const head = folder ? new Uint8Array(0) : await readHead(path, 16);
  for (const inspector of inspectors) {
    if ((inspector.folders ?? false) === folder && (await inspector.detect(path, head)))
      return inspector.inspect(path);
  }
  if (folder) throw new CliError(`${path} is not a file or a model folder (info reads: ${kinds})`);
  throw new CliError(`${path}: unrecognised file type (info reads: ${kinds})`);
}

async function readHead(path: string, length: number): Promise<Uint8Array> {
  try {
    const handle = await open(path, "r");
    try {
      const head = new Uint8Array(length);
      const { bytesRead } = await handle.read(head, 0, length, 0);
      return head.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new CliError(`${path}: ${describeFsError(err)}`);
  }
}

/** Adds the `info` command to the program. */
export function registerInfo(program: Command): void {
  program
    .command("info")
    .description(
      "describe a file or model: a .safetensors (tensors, dtypes, metadata), a Stable Diffusion checkpoint or diffusers folder (family, components, parameters, dtypes, configs), a PNG",
    )
    .argument("<path>", "file or model folder to describe")
    .option("--json", "print one JSON object instead of a table")
    .action(async (path: string, opts: { json?: boolean }) => {
      const report = await describePath(path);
      process.stdout.write(opts.json ? `${JSON.stringify(report.json)}\n` : `${report.text}\n`);
    });
}
