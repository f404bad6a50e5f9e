// Generation parameters in the text format AUTOMATIC1111's web UI writes into a PNG `parameters` chunk (and
// reads back with "PNG Info"; ComfyUI, InvokeAI and civitai read it too):
//
//   a photo of a cat
//   Negative prompt: blurry
//   Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: ...
//
// The prompt is every line before "Negative prompt:"; the last line holds `Key: value` pairs, a value quoted as a
// JSON string when it contains ",", ":" or a newline.
import { normalizeSamplerName, SAMPLERS } from "../schedulers/samplers.js";
import { PipelineError } from "./errors.js";
import { formatGuidanceInterval, type GuidanceInterval, parseGuidanceInterval } from "./guidance.js";

/** A LoRA applied to a generation. */
export interface LoraUse {
  /** Short name (the file name without extension). */
  name: string;
  /** A1111's LoRA hash (first 12 hex of the sha256 of the tensor data), when known. */
  hash?: string;
  /** Strength it was applied with. */
  scale: number;
}

/** What a generation used, as written to and read from the `parameters` text. */
export interface GenerationSettings {
  prompt: string;
  negativePrompt: string;
  steps: number;
  /** Sampler name (see schedulers/samplers.ts, e.g. "dpmpp-2m-karras"), or a scheduler class name. */
  sampler: string;
  guidanceScale: number;
  /** The seed of the generator that drew the initial noise (absent when a caller passed its own generator). */
  seed?: number | bigint;
  width: number;
  height: number;
  /** Guidance rescale phi (written only when > 0). */
  guidanceRescale?: number;
  /** The noise interval of guided steps (written only when set). */
  guidanceInterval?: GuidanceInterval;
  /** Image-to-image / inpainting strength ("Denoising strength"). */
  strength?: number;
  /** Layers skipped from the end of the text encoder (0 = none; A1111 writes this + 1 as "Clip skip"). */
  clipSkip?: number;
  /** AutoV2 hash of the checkpoint (first 10 hex of its sha256). */
  modelHash?: string;
  modelName?: string;
  /** Images drawn together (their noise is one draw) and this image's index among them. */
  batchSize?: number;
  batchPos?: number;
  loras?: LoraUse[];
  /** Other `Key: value` pairs, written after the known ones and kept when parsing. */
  extra?: Record<string, string>;
}

/** A1111's quoting: a value with ",", ":" or a newline becomes a JSON string. */
function quote(v: string): string {
  return /[,:\n]/.test(v) ? JSON.stringify(v) : v;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    try {
      return JSON.parse(v) as string;
    } catch {
      return v;
    }
  }
  return v;
}

/** A1111's display name and schedule type of a sampler name; unknown names are passed through. */
export function a1111SamplerName(sampler: string): { name: string; schedule?: string } {
  const key = normalizeSamplerName(sampler);
  const spec = SAMPLERS.find((s) => s.name === key);
  if (!spec) return { name: sampler };
  const display = spec.aka.split(" / ")[0]!;
  if (display.endsWith(" Karras")) return { name: display.slice(0, -" Karras".length), schedule: "Karras" };
  return { name: display };
}

/** The sampler name of an A1111 "Sampler" (+ "Schedule type") pair: "DPM++ 2M" + "Karras" -> "dpmpp-2m-karras". */
export function samplerFromA1111(name: string, schedule?: string): string {
  const withSchedule = schedule && /^karras$/i.test(schedule) ? `${name} Karras` : name;
  const key = normalizeSamplerName(withSchedule);
  return SAMPLERS.some((s) => s.name === key) ? key : name;
}

function num(v: number): string {
  return String(v);
}

/** The `parameters` text of a generation, in A1111's format. */
export function formatParameters(s: GenerationSettings): string {
  const fields: [string, string][] = [];
  const sampler = a1111SamplerName(s.sampler);
  fields.push(["Steps", num(s.steps)], ["Sampler", sampler.name]);
  if (sampler.schedule) fields.push(["Schedule type", sampler.schedule]);
  fields.push(["CFG scale", num(s.guidanceScale)]);
  if (s.seed !== undefined) fields.push(["Seed", s.seed.toString()]);
  fields.push(["Size", `${s.width}x${s.height}`]);
  if (s.modelHash) fields.push(["Model hash", s.modelHash]);
  if (s.modelName) fields.push(["Model", s.modelName]);
  if (s.batchSize !== undefined && s.batchSize > 1) {
    fields.push(["Batch size", num(s.batchSize)], ["Batch pos", num(s.batchPos ?? 0)]);
  }
  if (s.strength !== undefined) fields.push(["Denoising strength", num(s.strength)]);
  if (s.clipSkip) fields.push(["Clip skip", num(s.clipSkip + 1)]);
  // the initial noise is torch's CPU generator: A1111's "RNG: CPU" draws the same numbers for a batch of one
  fields.push(["RNG", "CPU"]);
  if (s.guidanceRescale) fields.push(["CFG Rescale phi", num(s.guidanceRescale)]);
  if (s.guidanceInterval) fields.push(["Guidance interval", formatGuidanceInterval(s.guidanceInterval)]);
  if (s.loras && s.loras.length > 0) {
    const hashed = s.loras.filter((l) => l.hash);
    if (hashed.length > 0) fields.push(["Lora hashes", hashed.map((l) => `${l.name}: ${l.hash}`).join(", ")]);
    fields.push(["Lora scales", s.loras.map((l) => `${l.name}: ${num(l.scale)}`).join(", ")]);
  }
  for (const [k, v] of Object.entries(s.extra ?? {})) fields.push([k, v]);
  const params = fields.map(([k, v]) => `${k}: ${quote(v)}`).join(", ");
  const negative = s.negativePrompt ? `\nNegative prompt: ${s.negativePrompt}` : "";
  return `${s.prompt}${negative}\n${params}`.trim();
}

// A1111's re_param: `Key: value` with a JSON-quoted or comma-free value (keys start with a word character).
const PARAM_RE = /\s*([\p{L}\p{N}_][\p{L}\p{N}_ \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/gu;

/** The prompt, negative prompt and raw `Key: value` pairs of a `parameters` text (A1111's parser). */
export function parseParametersText(text: string): {
  prompt: string;
  negativePrompt: string;
  fields: Map<string, string>;
} {
  const lines = text.trim().split("\n");
  let last = lines.pop() ?? "";
  if ([...last.matchAll(PARAM_RE)].length < 3) {
    lines.push(last);
    last = "";
  }
  let prompt = "";
  let negative = "";
  let inNegative = false;
  for (let line of lines) {
    line = line.trim();
    if (line.startsWith("Negative prompt:")) {
      inNegative = true;
      line = line.slice("Negative prompt:".length).trim();
    }
    if (inNegative) negative += (negative === "" ? "" : "\n") + line;
    else prompt += (prompt === "" ? "" : "\n") + line;
  }
  const fields = new Map<string, string>();
  for (const m of last.matchAll(PARAM_RE)) fields.set(m[1]!, unquote(m[2]!.trim()));
  return { prompt, negativePrompt: negative, fields };
}

const KNOWN = new Set([
  "Steps",
  "Sampler",
  "Schedule type",
  "CFG scale",
  "Seed",
  "Size",
  "Model hash",
  "Model",
  "Batch size",
  "Batch pos",
  "Denoising strength",
  "Clip skip",
  "RNG",
  "CFG Rescale phi",
  "Guidance interval",
  "Lora hashes",
  "Lora scales",
]);

function number(fields: Map<string, string>, key: string, integer: boolean): number | undefined {
  const v = fields.get(key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new PipelineError(`parameters: "${key}: ${v}" is not ${integer ? "an integer" : "a number"}`);
  }
  return n;
}

function namedList(v: string | undefined): [string, string][] {
  if (!v) return [];
  return v
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const i = part.lastIndexOf(":");
      return i < 0 ? [part, ""] : [part.slice(0, i).trim(), part.slice(i + 1).trim()];
    });
}

/**
 * Reads a `parameters` text back into settings (the inverse of {@link formatParameters}). Throws a PipelineError
 * when the text has no parameter line or lacks Steps, Sampler, CFG scale or Size.
 */
export function parseParameters(text: string): GenerationSettings {
  const { prompt, negativePrompt, fields } = parseParametersText(text);
  for (const key of ["Steps", "Sampler", "CFG scale", "Size"]) {
    if (!fields.has(key)) {
      throw new PipelineError(
        `parameters: no "${key}" field; not A1111-style generation parameters (found: ${[...fields.keys()].join(", ") || "no Key: value line"})`,
      );
    }
  }
  const size = /^(\d+)x(\d+)$/.exec(fields.get("Size")!);
  if (!size) throw new PipelineError(`parameters: "Size: ${fields.get("Size")}" is not WIDTHxHEIGHT`);
  const settings: GenerationSettings = {
    prompt,
    negativePrompt,
    steps: number(fields, "Steps", true)!,
    sampler: samplerFromA1111(fields.get("Sampler")!, fields.get("Schedule type")),
    guidanceScale: number(fields, "CFG scale", false)!,
    width: Number(size[1]),
    height: Number(size[2]),
  };
  const seed = fields.get("Seed");
  if (seed !== undefined) {
    if (!/^-?\d+$/.test(seed)) throw new PipelineError(`parameters: "Seed: ${seed}" is not an integer`);
    const big = BigInt(seed);
    settings.seed =
      big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }
  const strength = number(fields, "Denoising strength", false);
  if (strength !== undefined) settings.strength = strength;
  const clipSkip = number(fields, "Clip skip", true);
  if (clipSkip !== undefined && clipSkip > 1) settings.clipSkip = clipSkip - 1;
  const rescale = number(fields, "CFG Rescale phi", false);
  if (rescale) settings.guidanceRescale = rescale;
  const interval = fields.get("Guidance interval");
  if (interval !== undefined) settings.guidanceInterval = parseGuidanceInterval(interval);
  if (fields.has("Model hash")) settings.modelHash = fields.get("Model hash")!;
  if (fields.has("Model")) settings.modelName = fields.get("Model")!;
  const batchSize = number(fields, "Batch size", true);
  if (batchSize !== undefined) {
    settings.batchSize = batchSize;
    settings.batchPos = number(fields, "Batch pos", true) ?? 0;
  }
  const hashes = new Map(namedList(fields.get("Lora hashes")));
  const scales = namedList(fields.get("Lora scales"));
  const loraNames = scales.length > 0 ? scales.map(([n]) => n) : [...hashes.keys()];
  if (loraNames.length > 0) {
    const scaleOf = new Map(scales);
    settings.loras = loraNames.map((name) => {
      const s = scaleOf.get(name);
      const use: LoraUse = { name, scale: s === undefined || s === "" ? 1 : Number(s) };
      const h = hashes.get(name);
      if (h) use.hash = h;
      return use;
    });
  }
  const extra: Record<string, string> = {};
  for (const [k, v] of fields) if (!KNOWN.has(k)) extra[k] = v;
  if (Object.keys(extra).length > 0) settings.extra = extra;
  return settings;
}
