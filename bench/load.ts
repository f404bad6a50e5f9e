// `npm run bench -- load [--checkpoint FILE.safetensors --tokenizer DIR] [--rounds=N]`: how long a full-size
// SD 1.5 checkpoint (float16) takes to load, against the time to read its file from the page cache, measured in
// the same run, alternating rounds, each case in its own process (peak RSS is the case's own). Without
// --checkpoint, a random-weight SD 1.5 in float16 is written once by the package itself (a diffusers folder and
// its single-file conversion, ~2 GB each, under the OS's temp folder). Also: the time from starting
// `diffuse generate` on the single file to its first denoising step.
import "../src/platform-node.js";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SD1_TEXT_ENCODER } from "../src/models/clip/config.js";
import { CLIPTextModel } from "../src/models/clip/text-model.js";
import { UNet2DConditionConfig } from "../src/models/unet/config.js";
import { UNet2DConditionModel } from "../src/models/unet/unet-2d-condition.js";
import { AutoencoderKL } from "../src/models/vae/autoencoder-kl.js";
import { AutoencoderKLConfig } from "../src/models/vae/config.js";
import { folderToSingleFile } from "../src/pipelines/convert-single-file.js";
import { FAMILY_SCHEDULER_CONFIGS } from "../src/pipelines/family-configs.js";
import { stableDiffusionModelIndex } from "../src/pipelines/model-index.js";
import { saveModelFolder } from "../src/pipelines/save-model-folder.js";
import { Generator } from "../src/tensor/generator.js";
import type { LoadJob, LoadResult } from "./load-worker.js";
import { fmt, printTable } from "./util.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const GiB = 2 ** 30;

/** Writes a random-weight SD 1.5 (the package's own initialisation, seeded) in float16: folder and single file. */
async function writeRandomSd15(dir: string): Promise<{ folder: string; file: string }> {
  const folder = join(dir, "folder");
  const file = join(dir, "sd15-random-fp16.safetensors");
  if (existsSync(file) && existsSync(join(folder, "model_index.json"))) return { folder, file };
  console.log(`writing a random-weight SD 1.5 (float16) to ${dir} (once; a few minutes)`);
  rmSync(dir, { recursive: true, force: true });
  const layer = { dtype: "float16" as const, generator: new Generator().manualSeed(0) };
  const unet = new UNet2DConditionModel(UNet2DConditionConfig.sd15(), layer);
  await saveModelFolder(join(folder, "unet"), {
    config: { _class_name: "UNet2DConditionModel", ...unet.config },
    weights: unet.stateDict(),
  });
  const vae = new AutoencoderKL(AutoencoderKLConfig.sd(), layer);
  await saveModelFolder(join(folder, "vae"), {
    config: { _class_name: "AutoencoderKL", ...vae.config },
    weights: vae.stateDict(),
  });
  const te = new CLIPTextModel({ ...SD1_TEXT_ENCODER }, layer);
  await saveModelFolder(join(folder, "text_encoder"), {
    library: "transformers",
    config: { architectures: ["CLIPTextModel"], ...te.config },
    weights: te.stateDict(),
  });
  // the shipped emoji model's CLIP tokenizer (a small vocabulary: its ids are valid SD 1.5 ids)
  const tokenizer = join(root, "models", "emoji", "tokenizer");
  cpSync(tokenizer, join(folder, "tokenizer"), { recursive: true });
  mkdirSync(join(folder, "scheduler"), { recursive: true });
  writeFileSync(
    join(folder, "scheduler", "scheduler_config.json"),
    JSON.stringify(FAMILY_SCHEDULER_CONFIGS.sd1),
  );
  writeFileSync(join(folder, "model_index.json"), JSON.stringify(stableDiffusionModelIndex("PNDMScheduler")));
  await folderToSingleFile(folder, file);
  return { folder, file };
}

function runJob(job: LoadJob, env: Record<string, string> = {}): LoadResult {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", join(root, "bench", "load-worker.ts"), JSON.stringify(job)],
    { cwd: root, encoding: "utf8", env: { ...process.env, ...env }, maxBuffer: 1 << 24 },
  );
  const line = r.stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (r.status !== 0 || !line) throw new Error(`load bench job ${JSON.stringify(job)} failed:\n${r.stderr}`);
  return JSON.parse(line.slice(7)) as LoadResult;
}

/**
 * Starts `diffuse generate` (64x64, 2 steps, --json) and times its events. Denoising starts at about
 * t(step 1) - (t(step 2) - t(step 1)): the first event comes when the first step ends.
 */
function timeGenerate(file: string): Promise<{ loaded: number; firstStep: number; total: number }> {
  const cli = existsSync(join(root, "dist", "cli", "main.js"))
    ? [join(root, "bin", "diffuse.js")]
    : ["--import", "tsx", join(root, "src", "cli", "main.ts")];
  const out = join(tmpdir(), "diffuse-bench-load.png");
  const args = [...cli, "generate", "--model", file, "--width", "64", "--height", "64", "--steps", "2"];
  const t0 = performance.now();
  const child = spawn(process.execPath, [...args, "--json", "-o", out, "a cat"], { cwd: root });
  const marks: Record<string, number> = {};
  let buffered = "";
  child.stdout.on("data", (d: Buffer) => {
    buffered += d.toString();
    for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
      const e = JSON.parse(buffered.slice(0, i)) as {
        type: string;
        stage?: string;
        step?: number;
        total?: number;
      };
      buffered = buffered.slice(i + 1);
      const t = (performance.now() - t0) / 1000;
      if (e.type === "progress" && e.stage === "load" && e.step === e.total) marks.loaded = t;
      if (e.type === "progress" && e.stage === "sample") marks[`step${e.step}`] ??= t;
    }
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on("exit", (code) => {
      const total = (performance.now() - t0) / 1000;
      const { loaded, step1, step2 } = marks;
      if (code !== 0 || loaded === undefined || step1 === undefined || step2 === undefined) {
        reject(new Error(`diffuse generate failed (exit ${code}):\n${stderr}`));
        return;
      }
      resolve({ loaded, firstStep: step1 - (step2 - step1), total });
    });
  });
}

/** Runs the load benchmark and prints its table. */
export async function runLoadBench(args: readonly string[]): Promise<void> {
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  const rounds = Number(value("--rounds") ?? 3);
  let file = value("--checkpoint");
  const tokenizer = value("--tokenizer");
  let folder: string | undefined;
  if (!file) ({ file, folder } = await writeRandomSd15(join(tmpdir(), "diffuse-bench-sd15-fp16")));
  const bytes = statSync(file).size;
  const cases: { name: string; job: LoadJob; env?: Record<string, string> }[] = [
    { name: "read the file (page cache, 64 MiB chunks)", job: { case: "read", path: file } },
    { name: "load the single file (memory-mapped)", job: { case: "load", path: file, tokenizer } },
    {
      name: "load the single file (DIFFUSE_MMAP=0: read, copied)",
      job: { case: "load", path: file, tokenizer },
      env: { DIFFUSE_MMAP: "0" },
    },
  ];
  if (folder) {
    cases.push(
      { name: "load the diffusers folder (memory-mapped)", job: { case: "load", path: folder } },
      {
        name: "load the diffusers folder (DIFFUSE_MMAP=0)",
        job: { case: "load", path: folder },
        env: { DIFFUSE_MMAP: "0" },
      },
    );
  }
  runJob(cases[0]!.job); // the file into the page cache
  const best = new Map<string, LoadResult>();
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      const res = runJob(c.job, c.env);
      const prev = best.get(c.name);
      if (!prev || res.wall < prev.wall) best.set(c.name, res);
    }
  }
  const read = best.get(cases[0]!.name)!.wall;
  console.log(
    `\n### Checkpoint load: ${fmt(bytes / GiB)} GiB float16 SD 1.5 (${file.endsWith("random-fp16.safetensors") ? "random weights" : file}), ${cpus()[0]?.model ?? "?"}, best of ${rounds} alternating rounds\n`,
  );
  printTable(
    ["case", "time (s)", "x read", "then touch every weight page (s)", "peak RSS (GiB)", "RSS after (GiB)"],
    cases.map((c) => {
      const r = best.get(c.name)!;
      const touch = c.job.case === "load" ? fmt(r.touch) : "";
      return [c.name, fmt(r.wall), fmt(r.wall / read, 1), touch, fmt(r.peakRss / GiB), fmt(r.rssAfter / GiB)];
    }),
  );
  const g = await timeGenerate(file);
  console.log(
    `\n\`diffuse generate\` on the single file (64x64, 2 steps): models loaded ${fmt(g.loaded)} s after start, ` +
      `denoising starts at ~${fmt(g.firstStep)} s, done in ${fmt(g.total)} s.`,
  );
}
