// The LoRA experiment of docs/lora.md: teach the shipped emoji model handwritten digits, which it cannot draw.
//   node --import tsx bench/lora-digits.ts data DIR [--with-emoji N]
//       writes 30 MNIST training digits (the first 3 of each class) as 32x32 RGB PNGs, dark ink on white like the
//       emoji, with captions "handwritten digit seven", for `diffuse train lora --data DIR`; --with-emoji adds N
//       emoji images with their names (prior preservation, as DreamBooth's), none of the names `diffuse eval
//       --names 128` prompts;
//   node --import tsx bench/lora-digits.ts eval [--lora FILE[:SCALE]] [--per-digit N] [--grid FILE.png]
//       draws N images per digit (prompt "handwritten digit <name>", seeds 0..N-1 in one batch per digit, DPM++ 2M,
//       30 steps, guidance 7.5 as `diffuse eval`), turns them back into MNIST's format (gray, white ink on black)
//       and prints the shipped MNIST classifier's accuracy on them, per digit and overall (JSON);
//   node --import tsx bench/lora-digits.ts grid OUT.png LORA[:SCALE]...
//       two rows per model (digits 0-9, then ten emoji names; seed 1): the base model's, then with each LoRA.
import "../src/platform-node.js";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseLoraArg } from "../src/cli/generate-sd.js";
import { type Image, imageGrid, writePng } from "../src/io/image.js";
import { DigitClassifier } from "../src/models/classifier/digit-classifier.js";
import { StableDiffusionPipeline } from "../src/pipelines/stable-diffusion.js";
import { classifyDigits } from "../src/train/classifier.js";
import { loadEmoji } from "../src/train/data/emoji.js";
import { loadMnist, MNIST_SIZE } from "../src/train/data/mnist.js";

const NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
const EMOJI = [
  "red heart",
  "grinning cat",
  "thumbs up",
  "fire",
  "rocket",
  "pizza",
  "dog face",
  "rainbow",
  "ghost",
  "snowman",
];
const SETTING = { sampler: "dpmpp-2m", steps: 30, guidanceScale: 7.5 } as const;

/** The caption of digit `d`. */
const caption = (d: number) => `handwritten digit ${NAMES[d]}`;

/** Writes `n` emoji (base images, spread over the names `diffuse eval --names 128` does not prompt) with captions. */
function writeEmoji(dir: string, n: number): void {
  const set = loadEmoji(32);
  const all = set.classNames.length;
  const prompted = new Set(Array.from({ length: 128 }, (_, i) => Math.floor((i * all) / 128)));
  const free = set.entries
    .map((e, i) => ({ e, i }))
    .filter(({ e }) => e.tones.length === 0 && !prompted.has(e.classIndex));
  const plane = 32 * 32;
  for (let k = 0; k < n; k++) {
    const { e, i } = free[Math.floor((k * free.length) / n)]!;
    const data = new Uint8Array(plane * 3);
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++)
        data[p * 3 + c] = Math.round(((set.images[i * 3 * plane + c * plane + p]! + 1) / 2) * 255);
    }
    writePng(join(dir, `emoji-${k}.png`), { width: 32, height: 32, channels: 3, data });
    writeFileSync(join(dir, `emoji-${k}.txt`), e.label);
  }
  console.log(`${dir}: ${n} emoji with their names`);
}

function writeData(dir: string, perDigit = 3): void {
  mkdirSync(dir, { recursive: true });
  const { train } = loadMnist();
  const px = MNIST_SIZE * MNIST_SIZE;
  const seen = new Array<number>(10).fill(0);
  for (let i = 0; i < train.count; i++) {
    const d = train.labels[i]!;
    if (seen[d]! >= perDigit) continue;
    const data = new Uint8Array(px * 3);
    for (let p = 0; p < px; p++)
      data.fill(Math.round((1 - (train.images[i * px + p]! + 1) / 2) * 255), p * 3, p * 3 + 3);
    const name = `${d}-${seen[d]}`;
    writePng(join(dir, `${name}.png`), { width: MNIST_SIZE, height: MNIST_SIZE, channels: 3, data });
    writeFileSync(join(dir, `${name}.txt`), caption(d));
    seen[d]!++;
  }
  console.log(`${dir}: ${10 * perDigit} digits with captions`);
}

/** MNIST's format of a drawing: gray, inverted (ink 1, paper -1). */
function toDigit(image: Image): Float32Array {
  const out = new Float32Array(image.width * image.height);
  for (let i = 0; i < out.length; i++) {
    const c = image.channels;
    const gray = 0.299 * image.data[i * c]! + 0.587 * image.data[i * c + 1]! + 0.114 * image.data[i * c + 2]!;
    out[i] = (1 - gray / 255) * 2 - 1;
  }
  return out;
}

async function pipeline(lora?: string): Promise<StableDiffusionPipeline> {
  const pipe = await StableDiffusionPipeline.fromPretrained("models/emoji");
  if (lora) {
    const { path, scale } = parseLoraArg(lora);
    await pipe.loadLora(path, { scale });
  }
  return pipe;
}

async function draw(pipe: StableDiffusionPipeline, prompt: string, n: number, seed = 0): Promise<Image[]> {
  return (await pipe.generate({ prompt: new Array(n).fill(prompt), ...SETTING, seed })).images;
}

async function evalDigits(lora: string | undefined, perDigit: number, gridPath?: string): Promise<void> {
  const t0 = performance.now();
  const pipe = await pipeline(lora);
  const classifier = await DigitClassifier.fromPretrained("models/mnist-classifier");
  const images: Image[] = [];
  for (let d = 0; d < 10; d++) images.push(...(await draw(pipe, caption(d), perDigit)));
  const px = new Float32Array(images.length * MNIST_SIZE * MNIST_SIZE);
  images.forEach((im, i) => {
    px.set(toDigit(im), i * MNIST_SIZE * MNIST_SIZE);
  });
  const { predicted } = classifyDigits(classifier, px, images.length);
  const perClass = NAMES.map((_, d) => {
    let hits = 0;
    for (let k = 0; k < perDigit; k++) if (predicted[d * perDigit + k] === d) hits++;
    return hits / perDigit;
  });
  const accuracy = perClass.reduce((a, b) => a + b, 0) / 10;
  if (gridPath) writePng(gridPath, imageGrid(images, perDigit, 2, 255));
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify({
      lora: lora ?? null,
      perDigit,
      accuracy,
      perClass,
      predicted: Array.from(predicted),
      seconds,
    }),
  );
}

/** `image` enlarged `k` times, each pixel a k x k block. */
function upscale(image: Image, k: number): Image {
  const { width, height, channels: c } = image;
  const data = new Uint8Array(width * k * height * k * c);
  for (let y = 0; y < height * k; y++) {
    for (let x = 0; x < width * k; x++) {
      const from = (Math.floor(y / k) * width + Math.floor(x / k)) * c;
      data.set(image.data.subarray(from, from + c), (y * width * k + x) * c);
    }
  }
  return { width: width * k, height: height * k, channels: c, data };
}

async function grid(out: string, loras: readonly string[]): Promise<void> {
  const pipe = await pipeline();
  const rows: Image[] = [];
  const drawAll = async () => {
    for (const prompts of [NAMES.map((_, d) => caption(d)), EMOJI]) {
      for (const p of prompts) rows.push((await draw(pipe, p, 1, 1))[0]!);
    }
  };
  await drawAll();
  for (const lora of loras) {
    const { path, scale } = parseLoraArg(lora);
    const handle = await pipe.loadLora(path, { scale });
    await drawAll();
    handle.remove();
  }
  // two rows per model (digits, emoji): the base model first, then each LoRA; 3x nearest-neighbour
  writePng(out, upscale(imageGrid(rows, 10, 2, 255), 3));
  console.log(`${out}: rows digits and emoji of the base model, then of ${loras.join(", ")}`);
}

const [command, ...rest] = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
if (command === "data" && rest[0]) {
  writeData(rest[0]);
  if (flag("--with-emoji")) writeEmoji(rest[0], Number(flag("--with-emoji")));
} else if (command === "eval")
  await evalDigits(flag("--lora"), Number(flag("--per-digit") ?? 10), flag("--grid"));
else if (command === "grid" && rest.length >= 2) await grid(rest[0]!, rest.slice(1));
else {
  console.error(
    "usage: bench/lora-digits.ts data DIR [--with-emoji N] | eval [--lora FILE[:SCALE]] [--per-digit N] [--grid OUT.png] | grid OUT.png LORA[:SCALE]...",
  );
  process.exit(2);
}
