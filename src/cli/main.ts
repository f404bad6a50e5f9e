/**
 * The `diffuse` command line: a thin client of the library, one file per command. `main(argv)` returns the exit
 * code; errors become one line on stderr (set DIFFUSE_DEBUG=1 for stack traces).
 */
import "../platform-node.js";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { packageVersion } from "../io/package-version.js";
import { registerConvert } from "./convert.js";
import { registerEval } from "./eval.js";
import { registerGenerate } from "./generate.js";
import { registerInfo } from "./info.js";
import { registerServe } from "./serve.js";
import { registerTrain } from "./train.js";
import { registerTrainClassifier } from "./train-classifier.js";
import { registerWorker } from "./worker.js";

/** Builds the command tree (commands are added before parsing so they inherit exitOverride). */
export function buildProgram(): Command {
  const program = new Command("diffuse")
    .description("Diffusion models in TypeScript: inspect, convert, sample and train.")
    .version(packageVersion(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)");
  registerInfo(program);
  registerEval(program);
  registerGenerate(program);
  registerTrain(program);
  registerConvert(program);
  registerServe(program);
  registerWorker(program);
  // the first spelling of `diffuse train classifier`, kept working
  registerTrainClassifier(program, "train-classifier", { hidden: true });
  return program;
}

/** Runs the CLI on `argv` (as process.argv: node, script, args...) and returns the exit code. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    // a command may set a status of its own (a training run stopped by Ctrl-C: 130)
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    // commander has already printed its own message (usage errors) or the help/version text
    if (err instanceof CommanderError) return err.exitCode;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`diffuse: ${message.replace(/\s*\n\s*/g, " ")}\n`);
    if (process.env.DIFFUSE_DEBUG && err instanceof Error && err.stack)
      process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = await main();
