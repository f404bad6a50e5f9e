/**
 * `diffuse convert SRC --out DST [--dtype float16]`: a diffusers pipeline folder to a clean folder (a training
 * run's output, say, with the weights in another dtype) or to one .safetensors in the original LDM naming, and
 * such a file back to a folder.
 */

import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { folderToSingleFile, singleFileToFolder } from "../pipelines/convert-single-file.js";
import { copyPipelineFolder } from "../pipelines/copy-pipeline.js";
import { MODEL_INDEX } from "../pipelines/model-index.js";
import type { DType } from "../tensor/dtype.js";
import { CliError } from "./errors.js";

/** Options of `diffuse convert`. */
export interface ConvertCliOptions {
  out: string;
  dtype?: string;
  tokenizer?: string;
  json?: boolean;
}

const DTYPES = ["float32", "float16", "bfloat16"];

function print(o: ConvertCliOptions, result: Record<string, unknown>, text: string): void {
  if (o.json) process.stdout.write(`${JSON.stringify({ type: "result", out: o.out, ...result })}\n`);
  else process.stdout.write(`${text}\n`);
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Runs `diffuse convert`: folder -> folder, folder -> single file, or single file -> folder. */
export async function runConvert(src: string, o: ConvertCliOptions): Promise<void> {
  if (!existsSync(src)) throw new CliError(`${src}: not found`);
  if (o.dtype !== undefined && !DTYPES.includes(o.dtype))
    throw new CliError(`--dtype must be one of ${DTYPES.join(", ")}, got "${o.dtype}"`);
  const dtype = o.dtype as DType | undefined;
  const toFile = /\.safetensors$/i.test(o.out);
  if (statSync(src).isFile()) {
    if (!/\.safetensors$/i.test(src))
      throw new CliError(
        `${src}: expected a pipeline folder (${MODEL_INDEX}) or a single-file .safetensors checkpoint`,
      );
    if (toFile)
      throw new CliError(`--out ${o.out}: a single file converts to a pipeline folder, not to another file`);
    if (existsSync(o.out) && !statSync(o.out).isDirectory())
      throw new CliError(`--out ${o.out} exists and is not a folder`);
    const r = await singleFileToFolder(src, o.out, { dtype, tokenizer: o.tokenizer });
    const sources = Object.entries(r.configSources).map(([k, v]) => `${k} ${v}`);
    const assumed = r.assumed.length > 0 ? `\nassumed (not in the file): ${r.assumed.join("; ")}` : "";
    print(
      o,
      { ...r },
      `wrote ${o.out}: ${r.tensors} tensors, ${mib(r.weightBytes)} of weights; configs: ${sources.join(", ")}${assumed}`,
    );
    return;
  }
  if (!existsSync(join(src, MODEL_INDEX)))
    throw new CliError(`${src} is not a pipeline folder (expected a folder with ${MODEL_INDEX})`);
  if (o.tokenizer !== undefined)
    throw new CliError(
      "--tokenizer applies to converting a single file (which may carry none); the folder has its own",
    );
  if (toFile) {
    if (existsSync(o.out) && statSync(o.out).isDirectory())
      throw new CliError(`--out ${o.out} is a folder; expected a .safetensors file path`);
    const r = await folderToSingleFile(src, o.out, { dtype });
    print(
      o,
      { tensors: r.tensors, weightBytes: r.weightBytes },
      `wrote ${o.out}: ${r.tensors} tensors, ${mib(r.weightBytes)}`,
    );
    return;
  }
  if (existsSync(o.out) && !statSync(o.out).isDirectory())
    throw new CliError(`--out ${o.out} exists and is not a folder`);
  const r = await copyPipelineFolder(src, o.out, { dtype });
  print(o, { ...r }, `wrote ${o.out}: ${r.components.join(", ")}; ${mib(r.weightBytes)} of weights`);
}

/** Adds `convert` to the program. */
export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description(
      "convert a pipeline: folder -> folder (e.g. a training run to float16), folder -> one .safetensors in the original LDM naming (AUTOMATIC1111, ComfyUI), or such a file -> folder",
    )
    .argument("<src>", "pipeline folder (model_index.json) or single-file .safetensors checkpoint")
    .requiredOption("--out <path>", "destination: a folder, or a .safetensors file")
    .option("--dtype <t>", "store floating-point weights as float32, float16 or bfloat16")
    .option("--tokenizer <dir>", "tokenizer folder for a single file that carries none")
    .option("--json", "print the result as JSON")
    .action(async (src: string, o: ConvertCliOptions) => runConvert(src, o));
}
