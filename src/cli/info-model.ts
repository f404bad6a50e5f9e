/**
 * The model inspectors of `diffuse info`: a diffusers pipeline folder (model_index.json) or one component folder
 * (config.json, scheduler_config.json or tokenizer files), and a single-file Stable Diffusion checkpoint (original
 * LDM naming): family, components, parameter counts, dtypes and configs. Only headers and JSON files are read.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { TextEncoderShapeInfo } from "../io/ldm/clip.js";
import { type CheckpointDetection, detectCheckpointFamily } from "../io/ldm/detect.js";
import { LDM_UNET_PREFIX } from "../io/ldm/unet.js";
import { openSafetensors } from "../io/safetensors.js";
import { CLIPTokenizer } from "../models/clip/tokenizer.js";
import { resolveConfigs } from "../pipelines/family-configs.js";
import { componentWeightFiles, folderFamily } from "../pipelines/load.js";
import { shapeMap } from "../pipelines/load-single-file.js";
import { MODEL_INDEX, readModelIndex } from "../pipelines/model-index.js";
import { embeddedConfigs } from "../pipelines/single-file-metadata.js";
import { CliError } from "./errors.js";
import { formatBytes, formatCount, formatTable } from "./format.js";
import type { Inspector } from "./info.js";

/** Tensor count, parameter count and dtypes of a set of safetensors entries. */
interface WeightSummary {
  tensorCount: number;
  parameterCount: number;
  dtypes: Record<string, number>;
}

function summarize(entries: Iterable<{ dtype: string; numel: number }>): WeightSummary {
  const s: WeightSummary = { tensorCount: 0, parameterCount: 0, dtypes: {} };
  for (const e of entries) {
    s.tensorCount++;
    s.parameterCount += e.numel;
    s.dtypes[e.dtype] = (s.dtypes[e.dtype] ?? 0) + 1;
  }
  return s;
}

const dtypeText = (d: Record<string, number>): string =>
  Object.entries(d)
    .map(([t, n]) => `${t} x ${formatCount(n)}`)
    .join(", ");

async function readJson(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new CliError(`${path}: cannot read (${(err as Error).message})`);
  }
}

/** One component folder: what it is, its weights and its config. */
async function describeComponent(dir: string, name: string): Promise<Record<string, unknown>> {
  if (existsSync(join(dir, "scheduler_config.json"))) {
    const config = await readJson(join(dir, "scheduler_config.json"));
    return { name, class: config._class_name ?? null, kind: "scheduler", config };
  }
  if (["vocab.json", "tokenizer.json"].some((f) => existsSync(join(dir, f)))) {
    const tok = await CLIPTokenizer.fromPretrained(dir);
    return {
      name,
      class: "CLIPTokenizer",
      kind: "tokenizer",
      bosTokenId: tok.bosTokenId,
      eosTokenId: tok.eosTokenId,
      padTokenId: tok.padTokenId,
      modelMaxLength: tok.modelMaxLength,
    };
  }
  const config = await readJson(join(dir, "config.json"));
  const arch = Array.isArray(config.architectures) ? config.architectures[0] : undefined;
  const className = String(config._class_name ?? arch ?? "unknown");
  const files = await componentWeightFiles(dir, className);
  const entries = [];
  for (const f of files) {
    const file = await openSafetensors(f);
    entries.push(...file.entries);
    file.close();
  }
  return { name, class: className, kind: "model", files, ...summarize(entries), config };
}

function componentRows(components: Record<string, unknown>[]): string[][] {
  return components.map((c) => [
    String(c.name),
    String(c.class),
    c.kind === "model" ? formatCount(c.parameterCount as number) : "-",
    c.kind === "model"
      ? dtypeText(c.dtypes as Record<string, number>)
      : c.kind === "scheduler"
        ? `prediction ${(c.config as Record<string, unknown>).prediction_type ?? "epsilon"}`
        : `eos ${c.eosTokenId}, pad ${c.padTokenId}`,
  ]);
}

async function describeFolder(dir: string): Promise<{ json: Record<string, unknown>; text: string }> {
  if (!existsSync(join(dir, MODEL_INDEX))) {
    const c = await describeComponent(dir, ".");
    const json = { path: dir, format: "diffusers-component", component: c };
    const lines = [`${dir}: ${c.kind} folder (${c.class})`];
    lines.push(
      "",
      formatTable(["component", "class", "parameters", "dtypes / notes"], componentRows([c]), [2]),
    );
    return { json, text: lines.join("\n") };
  }
  const index = await readModelIndex(dir);
  const components: Record<string, unknown>[] = [];
  const absent: string[] = [];
  for (const [name, entry] of Object.entries(index.components)) {
    if (entry === null) {
      absent.push(name);
      continue;
    }
    const sub = join(dir, name);
    if (!existsSync(sub))
      throw new CliError(`${dir}: model_index.json lists ${name} (${entry[1]}) but ${name}/ is missing`);
    components.push({ ...(await describeComponent(sub, name)), library: entry[0], indexClass: entry[1] });
  }
  const unet = components.find((c) => c.name === "unet");
  const unetConfig = (unet?.config ?? {}) as Record<string, unknown>;
  // a Stable Diffusion family only for SD pipelines; one whose text width is none of the released ones (768, 1024,
  // SDXL's 2048), like a model trained here, has that family's layout but not its sizes
  const sdLayout = unet && index.className.startsWith("StableDiffusion");
  const released = [768, 1024, 2048].includes(Number(unetConfig.cross_attention_dim));
  const family = sdLayout
    ? folderFamily(
        unetConfig,
        components.some((c) => c.name === "text_encoder"),
      )
    : null;
  const scheduler = components.find((c) => c.name === "scheduler");
  const prediction = (scheduler?.config as Record<string, unknown> | undefined)?.prediction_type ?? "epsilon";
  const parameterCount = components.reduce((a, c) => a + ((c.parameterCount as number | undefined) ?? 0), 0);
  const json = {
    path: dir,
    format: "diffusers",
    pipeline: index.className,
    family,
    /** False for an SD-layout model of other sizes (e.g. one trained with this package). */
    releasedSizes: family ? released : null,
    inpainting: unetConfig.in_channels === 9,
    predictionType: prediction,
    parameterCount,
    components: Object.fromEntries(components.map((c) => [c.name, c])),
    absent,
  };
  const familyText = family
    ? released
      ? family
      : `${family} layout, own sizes (cross_attention_dim ${unetConfig.cross_attention_dim})`
    : index.className === "ClassConditionalPipeline"
      ? "none (class-conditional, pixel space)"
      : "unknown";
  const lines = [
    `${dir}: diffusers pipeline ${index.className}`,
    `family: ${familyText}${json.inpainting ? " (inpainting)" : ""}, prediction: ${prediction}, parameters: ${formatCount(parameterCount)}`,
    "",
    formatTable(["component", "class", "parameters", "dtypes / notes"], componentRows(components), [2]),
  ];
  if (absent.length > 0) lines.push("", `not included: ${absent.join(", ")}`);
  return { json, text: lines.join("\n") };
}

/** Recognises diffusers pipeline folders and single component folders. */
export const modelFolderInspector: Inspector = {
  kind: "diffusers model folder",
  folders: true,
  detect(path) {
    return [MODEL_INDEX, "config.json", "scheduler_config.json", "vocab.json", "tokenizer.json"].some((f) =>
      existsSync(join(path, f)),
    );
  },
  inspect: describeFolder,
};

function textEncoderText(name: string, t: TextEncoderShapeInfo | null): string | null {
  if (!t) return null;
  const kind = t.kind === "clip" ? "CLIP (transformers layout)" : "OpenCLIP";
  const proj = t.projectionDim !== null ? `, projection ${t.projectionDim}` : "";
  return `${name}: ${kind}, ${t.layers} layers, hidden ${t.hiddenSize}, MLP ${t.intermediateSize}, vocab ${t.vocabSize}${proj}`;
}

/**
 * The configs a detected file would be built with (pipelines/family-configs.ts: its metadata's, the released
 * ones, or inferred from shapes), where each came from and what was assumed; or why none can be made.
 */
function configsOf(
  det: CheckpointDetection,
  metadata: Readonly<Record<string, string>> | null,
  path: string,
): {
  configs: Record<string, unknown> | null;
  sources: Record<string, unknown> | null;
  assumed: string[];
  note: string | null;
} {
  try {
    const c = resolveConfigs(det, {}, det.predictionType, embeddedConfigs(metadata, path));
    return {
      configs: {
        unet: c.unet,
        vae: c.vae,
        text_encoder: c.textEncoder,
        text_encoder_2: c.textEncoder2,
        scheduler: c.scheduler,
      },
      sources: c.sources,
      assumed: c.assumed,
      note: null,
    };
  } catch (err) {
    return { configs: null, sources: null, assumed: [], note: (err as Error).message };
  }
}

/** The metadata for display: the tokenizer files a file carries are named with their size, not printed. */
function shownMetadata(metadata: Readonly<Record<string, string>> | null): Record<string, string> | null {
  if (!metadata) return null;
  return Object.fromEntries(
    Object.entries(metadata).map(([k, v]) => [
      k,
      k.startsWith("diffuse.tokenizer.") ? `<${v.length} characters>` : v,
    ]),
  );
}

async function describeCheckpoint(path: string): Promise<{ json: Record<string, unknown>; text: string }> {
  const file = await openSafetensors(path);
  try {
    const det = detectCheckpointFamily(shapeMap(file), file.metadata);
    const parts: [string, string | undefined][] = [
      ["unet", det.unet.prefix],
      ["vae", det.vae?.prefix],
      ["text_encoder", det.textEncoder?.prefix],
      ["text_encoder_2", det.textEncoder2?.prefix],
    ];
    const components: Record<string, Record<string, unknown>> = {};
    for (const [name, prefix] of parts) {
      if (!prefix) continue;
      components[name] = { prefix, ...summarize(file.entries.filter((e) => e.name.startsWith(prefix))) };
    }
    components.unet!.layout = det.unet;
    if (det.vae) components.vae!.layout = det.vae;
    if (det.textEncoder) components.text_encoder!.layout = det.textEncoder;
    if (det.textEncoder2) components.text_encoder_2!.layout = det.textEncoder2;
    const all = summarize(file.entries);
    const { configs, sources, assumed, note } = configsOf(det, file.metadata, path);
    const fileBytes = file.header.dataStart + file.header.dataLength;
    const json = {
      path,
      format: "sd-checkpoint",
      fileBytes,
      family: det.family,
      inpainting: det.inpainting,
      predictionType: det.predictionType,
      predictionTypeSource: det.predictionTypeSource,
      parameterCount: all.parameterCount,
      dtypes: all.dtypes,
      components,
      ignored: det.ignored,
      configs,
      configSources: sources,
      assumed,
      configsNote: note,
      metadata: shownMetadata(file.metadata),
    };
    const u = det.unet;
    const rows = Object.entries(components).map(([name, c]) => [
      name,
      String(c.prefix),
      formatCount(c.tensorCount as number),
      formatCount(c.parameterCount as number),
      dtypeText(c.dtypes as Record<string, number>),
    ]);
    const lines = [
      `${path}: Stable Diffusion checkpoint (single file, original LDM naming), ${formatBytes(fileBytes)}`,
      `family: ${det.family}${det.inpainting ? " (inpainting)" : ""}, prediction: ${det.predictionType} (${det.predictionTypeSource})`,
      `parameters: ${formatCount(all.parameterCount)} (${dtypeText(all.dtypes)})`,
      "",
      formatTable(["component", "prefix", "tensors", "parameters", "dtypes"], rows, [2, 3]),
      "",
      `unet: block_out_channels [${u.blockOutChannels.join(", ")}], layers_per_block ${u.layersPerBlock}, transformer depth [${u.transformerDepth.join(", ")}] (mid ${u.midTransformerDepth}), context ${u.contextDim}, in ${u.inChannels}, out ${u.outChannels}${u.admInChannels !== null ? `, label_emb ${u.admInChannels}` : ""}`,
    ];
    if (det.vae)
      lines.push(
        `vae: block_out_channels [${det.vae.blockOutChannels.join(", ")}], layers_per_block ${det.vae.layersPerBlock}, latent channels ${det.vae.latentChannels}`,
      );
    for (const t of [
      textEncoderText("text_encoder", det.textEncoder),
      textEncoderText("text_encoder_2", det.textEncoder2),
    ])
      if (t) lines.push(t);
    if (configs && sources) {
      const from = Object.entries(sources)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => `${k} ${v}`);
      lines.push(
        `configs: ${from.join(", ")} (scheduler ${(configs.scheduler as Record<string, unknown>)._class_name})`,
      );
      if (assumed.length > 0) lines.push(`assumed (not in the file): ${assumed.join("; ")}`);
    } else lines.push(`configs: ${note}`);
    const ignored = Object.entries(det.ignored);
    if (ignored.length > 0) lines.push(`ignored: ${ignored.map(([p, n]) => `${p}.* (${n})`).join(", ")}`);
    return { json, text: lines.join("\n") };
  } finally {
    file.close();
  }
}

/** Recognises single-file Stable Diffusion checkpoints: safetensors files with `model.diffusion_model.*` tensors. */
export const checkpointInspector: Inspector = {
  kind: "Stable Diffusion checkpoint",
  async detect(path, head) {
    const looksSafetensors = /\.safetensors$/i.test(path) || (head.length >= 9 && head[8] === 0x7b);
    if (!looksSafetensors) return false;
    try {
      const file = await openSafetensors(path);
      const hit = file.entries.some((e) => e.name.startsWith(LDM_UNET_PREFIX));
      file.close();
      return hit;
    } catch {
      return false; // the safetensors inspector reports what is wrong with the file
    }
  },
  inspect: describeCheckpoint,
};
