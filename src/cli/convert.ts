/**
 * `diffuse convert SRC --out DST [--dtype float16]`: copies a diffusers pipeline folder (a training run's output,
 * say) to a clean folder, with the weights in another dtype.
 */

import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { copyPipelineFolder } from "../pipelines/copy-pipeline.js";
import { MODEL_INDEX } from "../pipelines/model-index.js";
import type { DType } from "../tensor/dtype.js";
import { CliError } from "./errors.js";

/** Options of `diffuse convert`. */
export interface ConvertCliOptions {
  out: string;
  dtype?: string;
  json?: boolean;
}

/** Runs `diffuse convert`. */
export async function runConvert(src: string, o: ConvertCliOptions): Promise<void> {
  if (!existsSync(src) || !statSync(src).isDirectory() || !existsSync(join(src, MODEL_INDEX)))
    throw new CliError(`${src} is not a pipeline folder (expected a folder with ${MODEL_INDEX})`);
  const dtypes = ["float32", "float16", "bfloat16"];
  if (o.dtype !== undefined && !dtypes.includes(o.dtype))
    throw new CliError(`--dtype must be one of ${dtypes.join(", ")}, got "${o.dtype}"`);
  if (existsSync(o.out) && !statSync(o.out).isDirectory())
    throw new CliError(`--out ${o.out} exists and is not a folder`);
  const r = await copyPipelineFolder(src, o.out, { dtype: o.dtype as DType | undefined });
  if (o.json) process.stdout.write(`${JSON.stringify({ type: "result", out: o.out, ...r })}\n`);
  else
    process.stdout.write(
      `wrote ${o.out}: ${r.components.join(", ")}; ${(r.weightBytes / 2 ** 20).toFixed(1)} MiB of weights\n`,
    );
}

/** Adds `convert` to the program. */
export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description(
      "copy a pipeline folder (e.g. a training run) to a clean folder, optionally in another dtype",
    )
    .argument("<src>", "pipeline folder (model_index.json)")
    .requiredOption("--out <dir>", "destination folder")
    .option("--dtype <t>", "store floating-point weights as float32, float16 or bfloat16")
    .option("--json", "print the result as JSON")
    .action(async (src: string, o: ConvertCliOptions) => runConvert(src, o));
}
