// A ComfyUI API-format workflow, checked by comfyui-validate.ts, read as the one generation it describes: the
// KSampler's model / prompts / latent traced back to the checkpoint, LoRAs, text encoders and the empty latent or
// the loaded image, as one GenerationRequest. What that graph cannot be run as (two KSamplers, a LoRA on the model
// only, an unknown sampler / scheduler pair, ...) is refused naming the node.
import type { Image } from "../io/image.js";
import { type NodeEnvironment, nodeSpecs, samplerOfComfy } from "./comfyui-nodes.js";
import {
  checkWorkflow,
  comfyError,
  type Link,
  show,
  WorkflowError,
  type WorkflowNode,
} from "./comfyui-validate.js";
import { checkRequest, type GenerationRequest } from "./engine.js";
import { HttpError } from "./errors.js";

/** Where a prompt's images go: SaveImage (type "output") or PreviewImage ("temp"). */
export interface OutputNode {
  node: string;
  type: "output" | "temp";
  subfolder: string;
  prefix: string;
}

/** What a workflow asks for. */
export interface WorkflowPlan {
  request: GenerationRequest;
  /** The KSampler (progress is reported on it). */
  samplerNode: string;
  /** The VAEDecode nodes the outputs read. */
  decodeNodes: string[];
  outputs: OutputNode[];
}

/** The node table's inputs, and the images LoadImage may name. */
export interface WorkflowEnvironment extends NodeEnvironment {
  /** The image a LoadImage value stands for, or why there is none. */
  loadImage(value: string): Image | { error: string };
}

/** Checks a workflow and reads the generation it describes (WorkflowError 400 otherwise). */
export function planWorkflow(prompt: unknown, env: WorkflowEnvironment): WorkflowPlan {
  const { workflow, values, outputs } = checkWorkflow(prompt, nodeSpecs(env));
  return new Planner(workflow, values, env).plan(outputs);
}

/** Reads the checked graph as one generation. */
class Planner {
  constructor(
    private readonly workflow: Record<string, WorkflowNode>,
    private readonly values: Map<string, Record<string, unknown>>,
    private readonly env: WorkflowEnvironment,
  ) {}

  #class(id: string): string {
    return this.workflow[id]!.class_type;
  }

  #value<T>(id: string, input: string): T {
    return this.values.get(id)![input] as T;
  }

  /** The node an input links to. */
  #source(id: string, input: string): string {
    return this.#value<Link>(id, input)[0];
  }

  #fail(id: string, message: string, input = ""): never {
    const error = comfyError("unsupported_graph", message, input, input ? { input_name: input } : {});
    throw new WorkflowError(
      comfyError(
        "prompt_outputs_failed_validation",
        "Prompt outputs failed validation",
        `#${id}: ${message}`,
      ),
      { [id]: { errors: [error], dependent_outputs: [], class_type: this.#class(id) } },
    );
  }

  /** Follows a MODEL or CLIP link through LoraLoaders to its CheckpointLoaderSimple. */
  #chain(id: string, input: "model" | "clip"): { checkpoint: string; loras: string[] } {
    const loras: string[] = [];
    let at = this.#source(id, input);
    while (this.#class(at) === "LoraLoader") {
      if (loras.includes(at)) this.#fail(at, `its ${input} input leads back to itself (a cycle)`, input);
      loras.push(at);
      at = this.#source(at, input);
    }
    return { checkpoint: at, loras };
  }

  plan(outputs: string[]): WorkflowPlan {
    let sampler: string | undefined;
    const decodeNodes: string[] = [];
    for (const out of outputs) {
      const decode = this.#source(out, "images");
      if (this.#class(decode) !== "VAEDecode") {
        this.#fail(
          out,
          `images must come from a VAEDecode (the generated images), found node #${decode} (${this.#class(decode)})`,
          "images",
        );
      }
      const ks = this.#source(decode, "samples");
      if (this.#class(ks) !== "KSampler") {
        this.#fail(
          decode,
          `samples must come from a KSampler, found node #${ks} (${this.#class(ks)})`,
          "samples",
        );
      }
      if (sampler !== undefined && sampler !== ks) {
        this.#fail(
          out,
          `this server runs one KSampler per prompt: this output shows KSampler #${ks}, an earlier one KSampler #${sampler}`,
        );
      }
      sampler = ks;
      if (!decodeNodes.includes(decode)) decodeNodes.push(decode);
    }
    const ks = sampler!;
    const model = this.#chain(ks, "model");
    const positive = this.#source(ks, "positive");
    const negative = this.#source(ks, "negative");
    const clips = { positive: this.#chain(positive, "clip"), negative: this.#chain(negative, "clip") };
    const loras = this.#checkLoras(model.loras, clips.positive.loras, clips.negative.loras);
    const vaes = decodeNodes.map((d) => this.#source(d, "vae"));

    const latent = this.#source(ks, "latent_image");
    const denoise = this.#value<number>(ks, "denoise");
    let image: { initImage: Image; strength: number } | undefined;
    let size: { width: number; height: number; batchSize: number } | undefined;
    if (this.#class(latent) === "EmptyLatentImage") {
      if (denoise !== 1) {
        this.#fail(
          ks,
          `denoise ${denoise} needs an image to start from (a VAEEncode of a LoadImage); text to image (EmptyLatentImage) takes denoise 1`,
          "denoise",
        );
      }
      size = {
        width: this.#value(latent, "width"),
        height: this.#value(latent, "height"),
        batchSize: this.#value(latent, "batch_size"),
      };
    } else if (this.#class(latent) === "VAEEncode") {
      const pixels = this.#source(latent, "pixels");
      if (this.#class(pixels) !== "LoadImage") {
        this.#fail(
          latent,
          `pixels must come from a LoadImage, found node #${pixels} (${this.#class(pixels)}): this server runs one KSampler per prompt`,
          "pixels",
        );
      }
      const loaded = this.env.loadImage(this.#value(pixels, "image"));
      if ("error" in loaded) this.#fail(pixels, loaded.error, "image");
      image = { initImage: loaded, strength: denoise };
      vaes.push(this.#source(latent, "vae"));
    } else {
      this.#fail(
        ks,
        `latent_image must come from an EmptyLatentImage (text to image) or a VAEEncode (img2img), found node #${latent} (${this.#class(latent)}): this server runs one KSampler per prompt`,
        "latent_image",
      );
    }

    const loaders = [model.checkpoint, clips.positive.checkpoint, clips.negative.checkpoint, ...vaes];
    const names = loaders.map((id) => this.#value<string>(id, "ckpt_name"));
    const other = names.findIndex((n) => n !== names[0]);
    if (other >= 0) {
      this.#fail(
        loaders[other]!,
        `this server takes the model, CLIP and VAE from one checkpoint: node #${loaders[0]} loads "${names[0]}", this one "${names[other]}"`,
        "ckpt_name",
      );
    }
    const samplerName = this.#value<string>(ks, "sampler_name");
    const mapped = samplerOfComfy(samplerName, this.#value(ks, "scheduler"));
    if ("error" in mapped) this.#fail(ks, mapped.error, "sampler_name");

    const request: GenerationRequest = {
      model: names[0],
      prompt: this.#value(positive, "text"),
      negativePrompt: this.#value(negative, "text"),
      sampler: mapped.sampler,
      steps: this.#value(ks, "steps"),
      guidance: this.#value(ks, "cfg"),
      seed: this.#value(ks, "seed"),
      width: size?.width,
      height: size?.height,
      batchSize: size?.batchSize ?? 1,
      iterations: 1,
      initImage: image?.initImage,
      strength: image?.strength,
      loras,
    };
    try {
      checkRequest(request, this.env.catalog, this.env.limits);
    } catch (err) {
      if (err instanceof HttpError) throw new WorkflowError(comfyError("invalid_prompt", err.message));
      throw err;
    }
    return { request, samplerNode: ks, decodeNodes, outputs: outputs.map((id) => this.#output(id)) };
  }

  /**
   * The LoRAs of the model and of both prompts' CLIP: the engine applies each LoRA to the UNet and the text
   * encoder with one strength, so the three chains must hold the same LoraLoaders, each with strength_clip equal
   * to strength_model.
   */
  #checkLoras(model: string[], positive: string[], negative: string[]): GenerationRequest["loras"] {
    const chains = [
      ["the KSampler's model", model],
      ["the positive prompt's CLIP", positive],
      ["the negative prompt's CLIP", negative],
    ] as const;
    for (const id of new Set([...model, ...positive, ...negative])) {
      const on = chains.filter(([, c]) => c.includes(id)).map(([w]) => w);
      const off = chains.filter(([, c]) => !c.includes(id)).map(([w]) => w);
      if (off.length > 0) {
        this.#fail(
          id,
          `this LoRA changes ${on.join(" and ")} but not ${off.join(" and ")}; this server applies a LoRA to the model and CLIP together: route the KSampler's model and both CLIPTextEncode clips through it`,
        );
      }
      const strengthModel = this.#value<number>(id, "strength_model");
      const strengthClip = this.#value<number>(id, "strength_clip");
      if (strengthClip !== strengthModel) {
        this.#fail(
          id,
          `strength_clip ${strengthClip} differs from strength_model ${strengthModel}: this server applies one strength to the model and CLIP; give both the same value`,
          "strength_clip",
        );
      }
    }
    // from the checkpoint outwards, as they were chained
    return [...model].reverse().map((id) => ({
      name: this.#value<string>(id, "lora_name"),
      scale: this.#value<number>(id, "strength_model"),
    }));
  }

  #output(id: string): OutputNode {
    if (this.#class(id) === "PreviewImage")
      return { node: id, type: "temp", subfolder: "", prefix: "ComfyUI_temp" };
    const prefix = this.#value<string>(id, "filename_prefix");
    const parts = prefix.split("/");
    if (prefix.length > 120 || !parts.every((p) => /^[\w .-]+$/.test(p) && p !== "." && p !== "..")) {
      this.#fail(
        id,
        `filename_prefix must be a name of letters, digits, spaces and . _ - (in folders: "folder/name"), found ${show(prefix)}`,
        "filename_prefix",
      );
    }
    return { node: id, type: "output", subfolder: parts.slice(0, -1).join("/"), prefix: parts.at(-1)! };
  }
}
