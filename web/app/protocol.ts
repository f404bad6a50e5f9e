// What the page and its generation back ends exchange: the settings of a run, its images, its progress, and the
// messages between the page and the worker that computes in the browser (worker.ts).

/** 8-bit pixels, as the library's Image (1, 3 or 4 channels). */
export interface Pixels {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

/** A LoRA of a run: a file picked from disk (in the browser) or a name the server offers. */
export interface LoraChoice {
  name: string;
  scale: number;
  file?: File;
}

/** The settings of one run, as the form holds them. */
export interface RunRequest {
  prompt: string;
  negativePrompt: string;
  /** Sampler name; "" = the model's own. */
  sampler: string;
  steps: number;
  guidance: number;
  /** -1 = random. */
  seed: number;
  /** Image size; undefined = the model's (or the init image's). */
  width?: number;
  height?: number;
  batch: number;
  /** img2img / inpainting source. */
  initImage?: Pixels;
  /** Inpainting mask (white = repaint), the init image's size. */
  mask?: Pixels;
  strength?: number;
  loras: LoraChoice[];
  /** Server mode: the model's name on the server ("" = its default). */
  model?: string;
}

/** One finished image: a PNG with A1111's `parameters` chunk. */
export interface RunImage {
  png: Blob;
  parameters: string;
  seed: number;
}

/** Progress of a run or a download. */
export interface Progress {
  /** "download", "load", "sample", "decode", "queued". */
  stage: string;
  step: number;
  total: number;
  message?: string;
}

/** Callbacks of a run. */
export interface RunCallbacks {
  onProgress(progress: Progress): void;
  /** The images as they are now (browser runs only). */
  onPreview?(images: Pixels[]): void;
}

/** A model the page can load in the browser. */
export type ModelChoice =
  | {
      kind: "url";
      /** Its name in the page and in the PNG parameters. */
      name: string;
      /** The folder's URL. */
      base: string;
      /** Its files (relative names and sizes), fetched once and kept in the cache. */
      files: { name: string; size: number }[];
    }
  | {
      kind: "folder";
      name: string;
      /** A diffusers folder picked from disk: relative name -> file. */
      files: [string, File][];
    }
  | {
      kind: "file";
      name: string;
      /** A single-file .safetensors checkpoint picked from disk. */
      file: File;
      /** A tokenizer folder (single files carry none): relative name -> file. */
      tokenizer?: [string, File][];
    };

/** What the worker says about a loaded model. */
export interface ModelInfo {
  name: string;
  family: string;
  width: number;
  height: number;
  sampler: string;
  inpainting: boolean;
  device: string;
}

/** Which device the worker computes on. */
export type DeviceChoice = "auto" | "webgpu" | "cpu";

/** Page -> worker. */
export type ToWorker =
  | { type: "init"; id: number; device: DeviceChoice }
  | { type: "load"; id: number; model: ModelChoice }
  | { type: "generate"; id: number; request: RunRequest }
  | { type: "cancel"; id: number };

/** Worker -> page. */
export type FromWorker =
  | { type: "progress"; id: number; progress: Progress }
  | { type: "preview"; id: number; images: Pixels[] }
  | { type: "notice"; id: number; message: string }
  | { type: "ready"; id: number; device: string; notice?: string }
  | { type: "loaded"; id: number; info: ModelInfo }
  | { type: "result"; id: number; images: RunImage[]; warnings: string[] }
  | { type: "error"; id: number; name: string; message: string };
