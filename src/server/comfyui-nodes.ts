// The ComfyUI nodes this server understands, as one table: GET /object_info is made from it and POST /prompt checks
// workflows against it, so the two cannot drift. Lists (checkpoints, LoRAs, samplers, images) and limits (sizes,
// steps, batch) are this server's own. Also the mapping of ComfyUI's sampler_name + scheduler onto our samplers.
import type { ServerLimits } from "./limits.js";
import type { ModelCatalog } from "./models.js";

/** How one input of a node is given: a link to another node's output of that type, or a widget value. */
export type InputSpec =
  | { kind: "link"; type: string }
  | { kind: "INT" | "FLOAT"; default: number; min: number; max: number; step?: number; extra?: object }
  | { kind: "STRING"; default?: string; multiline?: boolean }
  | {
      kind: "COMBO";
      options: readonly string[];
      extra?: object;
      /** The accepted value a client's spelling stands for ("x.safetensors" -> "x"); undefined: none. */
      accept?: (value: string) => string | undefined;
    };

/** One node class. */
export interface NodeSpec {
  displayName: string;
  category: string;
  description: string;
  required: Record<string, InputSpec>;
  hidden?: Record<string, string>;
  /** Output types, by output index. */
  outputs: readonly string[];
  outputNames?: readonly string[];
  /** SaveImage, PreviewImage: what a prompt runs for. */
  outputNode: boolean;
}

/** What the node table depends on. */
export interface NodeEnvironment {
  catalog: ModelCatalog;
  limits: ServerLimits;
  /** Names LoadImage accepts from a list: uploaded images, and made ones as "name [output]". */
  imageNames: () => string[];
}

/** ComfyUI's sampler_name -> our sampler on the model's own timesteps, and on Karras noise levels where we have it. */
const SAMPLER_MAP: Readonly<Record<string, { plain: string; karras?: string }>> = {
  euler: { plain: "euler" },
  euler_ancestral: { plain: "euler-a" },
  heun: { plain: "heun" },
  lms: { plain: "lms" },
  dpmpp_2m: { plain: "dpmpp-2m", karras: "dpmpp-2m-karras" },
  dpmpp_2m_sde: { plain: "dpmpp-2m-sde", karras: "dpmpp-2m-sde-karras" },
  dpmpp_2m_sde_gpu: { plain: "dpmpp-2m-sde", karras: "dpmpp-2m-sde-karras" },
  dpmpp_3m_sde: { plain: "dpmpp-3m-sde" },
  dpmpp_3m_sde_gpu: { plain: "dpmpp-3m-sde" },
  ddpm: { plain: "ddpm" },
  ddim: { plain: "ddim" },
  // our UniPC is the bh2 variant (diffusers' default); ComfyUI's plain uni_pc is bh1, which we do not have
  uni_pc_bh2: { plain: "unipc" },
  lcm: { plain: "lcm" },
};

// ComfyUI schedulers that space the timesteps evenly, as our samplers do on the model's own schedule (their
// offsets differ slightly); "exponential", "beta", ... have no counterpart here
const EVEN_SCHEDULERS = ["normal", "simple", "sgm_uniform", "ddim_uniform"];

/** The ComfyUI sampler names this server takes. */
export const COMFY_SAMPLER_NAMES: readonly string[] = Object.keys(SAMPLER_MAP);
/** The ComfyUI scheduler names this server takes (with at least one sampler). */
export const COMFY_SCHEDULER_NAMES: readonly string[] = [...EVEN_SCHEDULERS, "karras"];

/**
 * Our sampler for a ComfyUI sampler_name + scheduler pair, or a message naming the pair and what would work
 * (both names are known ones: the table's lists were checked first).
 */
export function samplerOfComfy(
  samplerName: string,
  scheduler: string,
): { sampler: string } | { error: string } {
  const entry = SAMPLER_MAP[samplerName]!;
  const sampler = scheduler === "karras" ? entry.karras : entry.plain;
  if (sampler) return { sampler };
  const withKarras = COMFY_SAMPLER_NAMES.filter((name) => SAMPLER_MAP[name]!.karras);
  return {
    error: `sampler_name "${samplerName}" with scheduler "${scheduler}" has no equivalent on this server: "${samplerName}" takes the schedulers ${EVEN_SCHEDULERS.join(", ")}; "karras" goes with ${withKarras.join(", ")}`,
  };
}

/** A catalog name given as ComfyUI clients write file names: "name", "name.safetensors" or "name.ckpt". */
function byName(names: readonly string[]): (value: string) => string | undefined {
  return (value) => {
    const bare = value.replace(/\.(safetensors|ckpt|pt)$/i, "");
    return names.includes(value) ? value : names.includes(bare) ? bare : undefined;
  };
}

const link = (type: string): InputSpec => ({ kind: "link", type });

/** The supported nodes, by class_type. */
export function nodeSpecs(env: NodeEnvironment): Record<string, NodeSpec> {
  const models = env.catalog.list().map((m) => m.name);
  const loras = env.catalog.loraNames();
  const { limits } = env;
  const size = (max: number): InputSpec => ({ kind: "INT", default: 512, min: 8, max, step: 8 });
  return {
    CheckpointLoaderSimple: {
      displayName: "Load Checkpoint",
      category: "loaders",
      description: "A model of this server, by name (the MODEL, CLIP and VAE outputs are its parts).",
      required: { ckpt_name: { kind: "COMBO", options: models, accept: byName(models) } },
      outputs: ["MODEL", "CLIP", "VAE"],
      outputNode: false,
    },
    LoraLoader: {
      displayName: "Load LoRA",
      category: "loaders",
      description:
        "A LoRA of this server, by name. One strength applies to the model and CLIP: strength_clip must equal strength_model.",
      required: {
        model: link("MODEL"),
        clip: link("CLIP"),
        lora_name: { kind: "COMBO", options: loras, accept: byName(loras) },
        strength_model: { kind: "FLOAT", default: 1, min: -100, max: 100, step: 0.01 },
        strength_clip: { kind: "FLOAT", default: 1, min: -100, max: 100, step: 0.01 },
      },
      outputs: ["MODEL", "CLIP"],
      outputNode: false,
    },
    CLIPTextEncode: {
      displayName: "CLIP Text Encode (Prompt)",
      category: "conditioning",
      description:
        "The prompt (KSampler's positive) or the negative prompt; a class number for class models.",
      required: { text: { kind: "STRING", multiline: true }, clip: link("CLIP") },
      outputs: ["CONDITIONING"],
      outputNode: false,
    },
    EmptyLatentImage: {
      displayName: "Empty Latent Image",
      category: "latent",
      description: "Text to image: the image size (multiples of 8) and how many images are drawn together.",
      required: {
        width: size(limits.maxWidth),
        height: size(limits.maxHeight),
        batch_size: { kind: "INT", default: 1, min: 1, max: limits.maxBatch },
      },
      outputs: ["LATENT"],
      outputNode: false,
    },
    KSampler: {
      displayName: "KSampler",
      category: "sampling",
      description: "The sampling run. denoise is img2img's strength (1 for text to image).",
      required: {
        model: link("MODEL"),
        seed: {
          kind: "INT",
          default: 0,
          min: 0,
          max: Number.MAX_SAFE_INTEGER, // (ComfyUI's is 2^64 - 1) every seed taken is exact in JSON
          extra: { control_after_generate: true },
        },
        steps: { kind: "INT", default: 20, min: 1, max: limits.maxSteps },
        cfg: { kind: "FLOAT", default: 8, min: 0, max: 100, step: 0.1, extra: { round: 0.01 } },
        sampler_name: { kind: "COMBO", options: COMFY_SAMPLER_NAMES },
        scheduler: { kind: "COMBO", options: COMFY_SCHEDULER_NAMES },
        positive: link("CONDITIONING"),
        negative: link("CONDITIONING"),
        latent_image: link("LATENT"),
        denoise: { kind: "FLOAT", default: 1, min: 0, max: 1, step: 0.01 },
      },
      outputs: ["LATENT"],
      outputNode: false,
    },
    VAEDecode: {
      displayName: "VAE Decode",
      category: "latent",
      description: "The KSampler's latents as images.",
      required: { samples: link("LATENT"), vae: link("VAE") },
      outputs: ["IMAGE"],
      outputNode: false,
    },
    VAEEncode: {
      displayName: "VAE Encode",
      category: "latent",
      description: "Image to image: the LoadImage image as the KSampler's starting latents.",
      required: { pixels: link("IMAGE"), vae: link("VAE") },
      outputs: ["LATENT"],
      outputNode: false,
    },
    LoadImage: {
      displayName: "Load Image",
      category: "image",
      description:
        'An image sent to /upload/image, one this server made ("name.png [output]"), or a base64 PNG / JPEG.',
      required: {
        image: {
          kind: "COMBO",
          options: env.imageNames(),
          extra: { image_upload: true },
          accept: (value) => value, // any name or base64 image here; whether it loads is checked with the graph
        },
      },
      outputs: ["IMAGE", "MASK"],
      outputNode: false,
    },
    SaveImage: {
      displayName: "Save Image",
      category: "image",
      description: "Keeps the images (in memory) for /view and /history, named <filename_prefix>_00001_.png.",
      required: { images: link("IMAGE"), filename_prefix: { kind: "STRING", default: "ComfyUI" } },
      hidden: { prompt: "PROMPT", extra_pnginfo: "EXTRA_PNGINFO" },
      outputs: [],
      outputNode: true,
    },
    PreviewImage: {
      displayName: "Preview Image",
      category: "image",
      description: "Like SaveImage, as temporary images.",
      required: { images: link("IMAGE") },
      hidden: { prompt: "PROMPT", extra_pnginfo: "EXTRA_PNGINFO" },
      outputs: [],
      outputNode: true,
    },
  };
}

/** An input spec as ComfyUI writes it: ["INT", { default, min, max }], [[...options]], ["MODEL"], ... */
export function comfyInputSpec(spec: InputSpec): unknown[] {
  switch (spec.kind) {
    case "link":
      return [spec.type];
    case "INT":
    case "FLOAT": {
      const { kind, extra, ...numbers } = spec;
      return [kind, { ...numbers, ...extra }];
    }
    case "STRING":
      return [
        "STRING",
        { ...(spec.default !== undefined && { default: spec.default }), multiline: spec.multiline ?? false },
      ];
    case "COMBO":
      return spec.extra ? [[...spec.options], spec.extra] : [[...spec.options]];
  }
}

/** One node's GET /object_info entry. */
export function objectInfo(name: string, spec: NodeSpec): Record<string, unknown> {
  const required = Object.fromEntries(Object.entries(spec.required).map(([k, s]) => [k, comfyInputSpec(s)]));
  return {
    input: { required, ...(spec.hidden && { hidden: spec.hidden }) },
    input_order: { required: Object.keys(spec.required) },
    output: spec.outputs,
    output_is_list: spec.outputs.map(() => false),
    output_name: spec.outputNames ?? spec.outputs,
    name,
    display_name: spec.displayName,
    description: spec.description,
    python_module: "nodes", // ComfyUI's core nodes, which these stand for
    category: spec.category,
    output_node: spec.outputNode,
  };
}
