// The page script of sd-browser.test.ts, bundled with the browser entry: loads the shipped emoji model (a Stable
// Diffusion folder) from the test's server, as a base URL or as a map of downloaded Blobs (what a folder picker
// gives), and generates an image on the reference backend.
import { formatParameters, loadStableDiffusionPipeline, setBackend } from "../../src/browser.js";

/** What the test asks for (see sd-browser.test.ts). */
export interface EmojiRequest {
  prompt: string;
  steps: number;
  seed: number;
  guidanceScale: number;
  /** "url": the folder's base URL; "files": its files fetched into Blobs, given as a map. */
  source: "url" | "files";
  /** The folder's files (relative names), for "files". */
  files: string[];
}

/** The image's 8-bit RGB pixels, its A1111 parameters text and the model hash. */
export interface EmojiResult {
  width: number;
  height: number;
  pixels: number[];
  parameters: string;
  modelHash: string | undefined;
}

async function generateEmoji(req: EmojiRequest): Promise<EmojiResult> {
  setBackend("reference");
  const base = new URL(
    "/models/emoji/",
    (globalThis as unknown as { location: { href: string } }).location.href,
  );
  let source: URL | Map<string, Blob> = base;
  if (req.source === "files") {
    source = new Map();
    for (const name of req.files) source.set(name, await (await fetch(new URL(name, base))).blob());
  }
  const pipe = await loadStableDiffusionPipeline(source, { name: "emoji" });
  const { images, settings } = await pipe.generate({
    prompt: req.prompt,
    steps: req.steps,
    seed: req.seed,
    guidanceScale: req.guidanceScale,
  });
  const image = images[0]!;
  return {
    width: image.width,
    height: image.height,
    pixels: Array.from(image.data),
    parameters: formatParameters(settings),
    modelHash: await pipe.modelHash(),
  };
}

(globalThis as { generateEmoji?: typeof generateEmoji }).generateEmoji = generateEmoji;
