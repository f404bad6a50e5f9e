// transformers' CLIPTextModel and CLIPTextModelWithProjection: the text encoders of Stable Diffusion 1.x/2.x and
// SDXL. Property paths equal the transformers state-dict keys (`text_model.encoder.layers.0.self_attn.q_proj.weight`,
// `text_projection.weight`), so checkpoints load without renaming.
import type { ModelSource } from "../../io/folder.js";
import {
  LayerNorm,
  type LayerOptions,
  Linear,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  Module,
  type StateDict,
} from "../../nn/index.js";
import { indexSelect, reshape } from "../../ops/index.js";
import { tensor } from "../../tensor/create.js";
import { type Device, DeviceError } from "../../tensor/device.js";
import { ArgumentError, DTypeError, ShapeError } from "../../tensor/errors.js";
import { formatShape } from "../../tensor/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { type CLIPTextConfig, type CLIPTextConfigInput, clipTextConfig } from "./config.js";
import { CLIPEncoder, CLIPTextEmbeddings } from "./layers.js";
import { type CLIPFromPretrainedOptions, loadCLIPPretrained } from "./load.js";

/** Options of a CLIP text model's forward pass. */
export interface CLIPTextForwardOptions {
  /**
   * Padding mask [B, L] (bool or numbers): 1/true = a real token, 0 = padding, as the tokenizer's
   * `attention_mask`. Combined with the causal mask. Stable Diffusion pipelines pass none.
   */
  attentionMask?: Tensor | null;
  /** Also return every layer's hidden state (default false). */
  outputHiddenStates?: boolean;
}

/** What a CLIP text model returns (transformers' `BaseModelOutputWithPooling`). */
export interface CLIPTextModelOutput {
  /** [B, L, hidden]: the last layer's output after `final_layer_norm`. */
  lastHiddenState: Tensor;
  /** [B, hidden]: `lastHiddenState` at each sequence's EOS token (see {@link eosPositions}). */
  pooledOutput: Tensor;
  /**
   * With `outputHiddenStates`: [embeddings, after layer 1, ..., after layer N], each [B, L, hidden] and before the
   * final layer norm (so the last entry is not `lastHiddenState`); else null.
   */
  hiddenStates: Tensor[] | null;
}

/** What {@link CLIPTextModelWithProjection} returns: the base outputs plus the projected pooled output. */
export interface CLIPTextModelWithProjectionOutput extends CLIPTextModelOutput {
  /** [B, projection_dim] = pooledOutput · text_projectionᵀ (SDXL's `pooled_prompt_embeds`). */
  textEmbeds: Tensor;
}

/** float32's lowest value: transformers fills masked scores with torch.finfo(float32).min, not -inf. */
const F32_MIN = -3.4028234663852886e38;

/**
 * Checks token ids [B, L] (int32/int64, 1 <= L <= max_position_embeddings, every id < vocab_size) and returns
 * them as numbers. `who` names the model in the error messages.
 */
export function readTokenIds(
  ids: Tensor,
  config: CLIPTextConfig,
  who: string,
): { batch: number; length: number; values: Int32Array } {
  if (ids.dtype !== "int32" && ids.dtype !== "int64") {
    throw new DTypeError(`${who}: input ids must be int32 or int64, got ${ids.dtype}`);
  }
  if (ids.ndim !== 2 || ids.shape[1] === 0) {
    throw new ShapeError(
      `${who}: input ids must be [batch, length] with length >= 1, got ${formatShape(ids.shape)}`,
    );
  }
  const [batch, length] = ids.shape as [number, number];
  if (length > config.max_position_embeddings) {
    throw new ShapeError(
      `${who}: sequence length ${length} exceeds max_position_embeddings (${config.max_position_embeddings}); truncate the prompt to ${config.max_position_embeddings} tokens (tokenizer truncation=true) or encode it in chunks`,
    );
  }
  if (ids.device !== "cpu") {
    throw new DeviceError(
      `${who}: pass the token ids on the CPU, as the tokenizer makes them (they are checked and read there); got ids on ${ids.device}`,
    );
  }
  const raw = ids.dataSync();
  const values = new Int32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = Number(raw[i]!);
    if (!(v >= 0 && v < config.vocab_size)) {
      throw new ArgumentError(
        `${who}: token id ${v} at [${Math.floor(i / length)}, ${i % length}] is outside the vocabulary (vocab_size ${config.vocab_size}, valid ids 0..${config.vocab_size - 1}); was the text tokenized with this model's tokenizer?`,
      );
    }
    values[i] = v;
  }
  return { batch, length, values };
}

/**
 * The pooled position of each sequence, as transformers' CLIPTextTransformer picks it: with the legacy
 * `eos_token_id == 2` the argmax of the ids (EOS has the largest id in CLIP's vocabulary; first one on ties),
 * else the first position equal to `eos_token_id` (position 0 when there is none, as torch's argmax of zeros).
 */
export function eosPositions(
  values: Int32Array,
  batch: number,
  length: number,
  eosTokenId: number,
): Int32Array {
  const out = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const row = values.subarray(b * length, (b + 1) * length);
    let pos = 0;
    if (eosTokenId === 2) {
      for (let i = 1; i < length; i++) if (row[i]! > row[pos]!) pos = i;
    } else {
      const first = row.indexOf(eosTokenId);
      pos = Math.max(first, 0); // absent (-1): position 0
    }
    out[b] = pos;
  }
  return out;
}

/**
 * The additive attention bias [B, 1, L, L] of a padding mask combined with causality, as transformers builds it:
 * finfo.min where j > i plus finfo.min where key j is padding (both: -inf after float32 rounding).
 */
function attentionBias(mask: Tensor, batch: number, length: number, who: string, device: Device): Tensor {
  if (mask.ndim !== 2 || mask.shape[0] !== batch || mask.shape[1] !== length) {
    throw new ShapeError(
      `${who}: attentionMask must be [${batch}, ${length}] like the input ids, got ${formatShape(mask.shape)}`,
    );
  }
  if (mask.device !== "cpu") {
    throw new DeviceError(
      `${who}: pass the attention mask on the CPU, as the tokenizer makes it; got it on ${mask.device}`,
    );
  }
  const raw = mask.dataSync();
  const out = new Float32Array(batch * length * length);
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < length; j++) {
      const v = Number(raw[b * length + j]!);
      if (v !== 0 && v !== 1) {
        throw new ArgumentError(
          `${who}: attentionMask values must be 0 (padding) or 1 (token), got ${v} at [${b}, ${j}]`,
        );
      }
      const pad = v === 1 ? 0 : F32_MIN;
      for (let i = 0; i < length; i++) {
        out[(b * length + i) * length + j] = (j > i ? F32_MIN : 0) + pad;
      }
    }
  }
  return tensor(out, [batch, 1, length, length], { device });
}

/** Embeddings, encoder and final layer norm (transformers' `CLIPTextTransformer`, the `text_model` child). */
export class CLIPTextTransformer extends Module<[Tensor, CLIPTextForwardOptions?], CLIPTextModelOutput> {
  readonly config: CLIPTextConfig;
  embeddings: CLIPTextEmbeddings;
  encoder: CLIPEncoder;
  final_layer_norm: LayerNorm;

  constructor(config: CLIPTextConfig, opts: LayerOptions = {}) {
    super();
    this.config = config;
    this.embeddings = new CLIPTextEmbeddings(config, opts);
    this.encoder = new CLIPEncoder(config, opts);
    this.final_layer_norm = new LayerNorm(config.hidden_size, {
      eps: config.layer_norm_eps,
      dtype: opts.dtype,
    });
  }

  override forward(ids: Tensor, opts: CLIPTextForwardOptions = {}): CLIPTextModelOutput {
    const who = "CLIPTextModel";
    const { batch, length, values } = readTokenIds(ids, this.config, who);
    const device = this.device;
    const mask = opts.attentionMask ? attentionBias(opts.attentionMask, batch, length, who, device) : null;
    const embedded = this.embeddings.call(ids);
    const hiddenStates = opts.outputHiddenStates ? [embedded] : null;
    const h = this.encoder.call(embedded, mask, hiddenStates ? (x) => hiddenStates.push(x) : undefined);
    const lastHiddenState = this.final_layer_norm.call(h);
    const pos = eosPositions(values, batch, length, this.config.eos_token_id);
    const rows = Tensor.fromStorage(
      Int32Array.from(pos, (p, b) => b * length + p),
      [batch],
      "int32",
    );
    const pooledOutput = indexSelect(reshape(lastHiddenState, [batch * length, -1]), 0, rows);
    return { lastHiddenState, pooledOutput, hiddenStates };
  }
}

/** Drops `text_model.embeddings.position_ids`, a buffer older transformers versions saved in checkpoints. */
function withoutPositionIds(sd: StateDict): StateDict {
  const key = "text_model.embeddings.position_ids";
  const map: ReadonlyMap<string, Tensor> = sd instanceof Map ? sd : new Map(Object.entries(sd));
  if (!map.has(key)) return sd;
  const out = new Map(map);
  out.delete(key);
  return out;
}

/**
 * The CLIP text encoder (transformers' `CLIPTextModel`; Stable Diffusion's `text_encoder`).
 *
 * @example
 * const te = await CLIPTextModel.fromPretrained("sd15/text_encoder");
 * const { lastHiddenState } = noGrad(() => te.call(ids)); // ids: int64 [B, 77] from the tokenizer
 */
export class CLIPTextModel extends Module<[Tensor, CLIPTextForwardOptions?], CLIPTextModelOutput> {
  readonly config: CLIPTextConfig;
  text_model: CLIPTextTransformer;

  /** `config`: a checked config or `config.json` contents. */
  constructor(config: CLIPTextConfig | CLIPTextConfigInput, opts: LayerOptions = {}) {
    super();
    this.config = clipTextConfig(config as CLIPTextConfigInput);
    this.text_model = new CLIPTextTransformer(this.config, opts);
  }

  override forward(ids: Tensor, opts: CLIPTextForwardOptions = {}): CLIPTextModelOutput {
    return this.text_model.call(ids, opts);
  }

  /** As Module.loadStateDict; a `text_model.embeddings.position_ids` entry is ignored. */
  override loadStateDict(sd: StateDict, opts?: LoadStateDictOptions): LoadStateDictResult {
    return super.loadStateDict(withoutPositionIds(sd), opts);
  }

  /**
   * Loads a transformers folder (a path in Node.js, a base URL or a map of files; see ModelSource): `config.json`
   * plus `model.safetensors` (or `model.fp16.safetensors`, or a sharded `*.safetensors.index.json`). Keys and shapes are checked strictly before any data is read.
   */
  static fromPretrained(dir: ModelSource, opts: CLIPFromPretrainedOptions = {}): Promise<CLIPTextModel> {
    return loadCLIPPretrained(dir, opts, "CLIPTextModel", false, (c, o) => new CLIPTextModel(c, o));
  }
}

/**
 * The CLIP text encoder with its projection head (transformers' `CLIPTextModelWithProjection`; SDXL's
 * `text_encoder_2`): `textEmbeds` = text_projection(pooledOutput), a bias-free [projection_dim, hidden] Linear.
 */
export class CLIPTextModelWithProjection extends Module<
  [Tensor, CLIPTextForwardOptions?],
  CLIPTextModelWithProjectionOutput
> {
  readonly config: CLIPTextConfig;
  text_model: CLIPTextTransformer;
  text_projection: Linear;

  /** `config`: a checked config or `config.json` contents (`projection_dim` sets the projection size). */
  constructor(config: CLIPTextConfig | CLIPTextConfigInput, opts: LayerOptions = {}) {
    super();
    this.config = clipTextConfig(config as CLIPTextConfigInput);
    this.text_model = new CLIPTextTransformer(this.config, opts);
    this.text_projection = new Linear(this.config.hidden_size, this.config.projection_dim, {
      ...opts,
      bias: false,
    });
  }

  override forward(ids: Tensor, opts: CLIPTextForwardOptions = {}): CLIPTextModelWithProjectionOutput {
    const out = this.text_model.call(ids, opts);
    return { ...out, textEmbeds: this.text_projection.call(out.pooledOutput) };
  }

  /** As Module.loadStateDict; a `text_model.embeddings.position_ids` entry is ignored. */
  override loadStateDict(sd: StateDict, opts?: LoadStateDictOptions): LoadStateDictResult {
    return super.loadStateDict(withoutPositionIds(sd), opts);
  }

  /** Loads a transformers folder, as {@link CLIPTextModel.fromPretrained}. */
  static fromPretrained(
    dir: ModelSource,
    opts: CLIPFromPretrainedOptions = {},
  ): Promise<CLIPTextModelWithProjection> {
    return loadCLIPPretrained(
      dir,
      opts,
      "CLIPTextModelWithProjection",
      true,
      (c, o) => new CLIPTextModelWithProjection(c, o),
    );
  }
}
