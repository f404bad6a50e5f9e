// `npm run bench [-- [--quick] [--rounds=N] [ops] [train] [load] [sd15] [sd15 cases...]]`: the benchmarks, printed
// as markdown tables (`load` takes `--checkpoint FILE --tokenizer DIR`, see load.ts).
// Ratios are against peers measured in this run. Default: everything (the SD 1.5 part takes ~15-20 minutes on 2
// cores); sd15 case names (sgemm conv down attention overhead unet vae clip) pick SD 1.5 cases.
import "../src/platform-node.js";
import { runLoadBench } from "./load.js";
import { runOpsBench } from "./ops.js";
import { roundsArg, runSd15Bench, SD15_CASES, type Sd15Case } from "./sd15.js";
import { runTrainBench } from "./train.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
// option values (`--checkpoint FILE`) are not parts
const words = args.filter(
  (a, i) => !a.startsWith("--") && !["--checkpoint", "--tokenizer"].includes(args[i - 1]!),
);
const unknown = words.filter((w) => !["ops", "train", "load", "sd15", ...SD15_CASES].includes(w));
if (unknown.length) {
  console.error(
    `bench: unknown part(s) ${unknown.join(", ")}; expected ops, train, load, sd15 or one of ${SD15_CASES.join(", ")}`,
  );
  process.exit(2);
}
const sd15Cases = words.filter((w): w is Sd15Case => (SD15_CASES as readonly string[]).includes(w));
const all = words.length === 0;
if (all || words.includes("ops")) runOpsBench();
if (all || words.includes("train")) runTrainBench(quick ? { steps: 2 } : {});
if (all || words.includes("load")) await runLoadBench(quick ? [...args, "--rounds=1"] : args);
if (all || words.includes("sd15") || sd15Cases.length) {
  runSd15Bench({ quick, cases: sd15Cases.length ? sd15Cases : undefined, rounds: roundsArg(args) });
}
