// The building blocks of transformers' CLIP text transformer (modeling_clip.py): embeddings, causal
// self-attention, MLP and the pre-LN encoder layer. Property names are the state-dict names.

import { Embedding } from "../../nn/embedding.js";
import { LayerNorm, Linear, ModuleList } from "../../nn/index.js";
import { Module } from "../../nn/module.js";
import type { LayerOptions } from "../../nn/options.js";
import {
  add,
  gelu,
  mul,
  relu,
  reshape,
  scaled_dot_product_attention,
  sigmoid,
  transpose,
} from "../../ops/index.js";
import { Tensor } from "../../tensor/tensor.js";
import type { CLIPActivation, CLIPTextConfig } from "./config.js";

/** Applies a CLIP `hidden_act`: quick_gelu is x·sigmoid(1.702x) (the OpenAI CLIP approximation). */
export function activate(x: Tensor, act: CLIPActivation): Tensor {
  switch (act) {
    case "quick_gelu":
      return mul(x, sigmoid(mul(x, 1.702)));
    case "gelu":
      return gelu(x, "none");
    case "gelu_new":
    case "gelu_pytorch_tanh":
    case "gelu_fast":
      // all three are 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))) (Hendrycks & Gimpel 2016, eq. 2)
      return gelu(x, "tanh");
    case "relu":
      return relu(x);
  }
}

/** Token plus learned absolute position embeddings (`CLIPTextEmbeddings`). */
export class CLIPTextEmbeddings extends Module<[Tensor], Tensor> {
  token_embedding: Embedding;
  position_embedding: Embedding;

  constructor(config: CLIPTextConfig, opts: LayerOptions = {}) {
    super();
    this.token_embedding = new Embedding(config.vocab_size, config.hidden_size, opts);
    this.position_embedding = new Embedding(config.max_position_embeddings, config.hidden_size, opts);
  }

  /** ids [B, L] (checked by the caller) -> [B, L, hidden]; positions are 0..L-1. */
  override forward(ids: Tensor): Tensor {
    const len = ids.shape[ids.ndim - 1]!;
    const positions = Tensor.fromStorage(
      Int32Array.from({ length: len }, (_, i) => i),
      [len],
      "int32",
    );
    return add(this.token_embedding.call(ids), this.position_embedding.call(positions));
  }
}

/**
 * Multi-head self-attention (`CLIPAttention`): softmax(q kᵀ / sqrt(head_dim) + mask) v per head, then out_proj.
 * With no mask the attention is causal; a given additive mask [B, 1, L, L] must already include causality.
 */
export class CLIPAttention extends Module<[Tensor, Tensor | null], Tensor> {
  readonly numHeads: number;
  readonly headDim: number;
  k_proj: Linear;
  v_proj: Linear;
  q_proj: Linear;
  out_proj: Linear;

  constructor(config: CLIPTextConfig, opts: LayerOptions = {}) {
    super();
    const d = config.hidden_size;
    this.numHeads = config.num_attention_heads;
    this.headDim = d / this.numHeads;
    this.k_proj = new Linear(d, d, opts);
    this.v_proj = new Linear(d, d, opts);
    this.q_proj = new Linear(d, d, opts);
    this.out_proj = new Linear(d, d, opts);
  }

  override forward(x: Tensor, mask: Tensor | null): Tensor {
    const [b, len, d] = x.shape as [number, number, number];
    const heads = (t: Tensor) => transpose(reshape(t, [b, len, this.numHeads, this.headDim]), 1, 2);
    const q = heads(this.q_proj.call(x));
    const k = heads(this.k_proj.call(x));
    const v = heads(this.v_proj.call(x));
    const o = scaled_dot_product_attention(q, k, v, mask ? { attnMask: mask } : { isCausal: true });
    return this.out_proj.call(reshape(transpose(o, 1, 2), [b, len, d]));
  }
}

/** fc1 -> hidden_act -> fc2 (`CLIPMLP`). */
export class CLIPMLP extends Module<[Tensor], Tensor> {
  readonly act: CLIPActivation;
  fc1: Linear;
  fc2: Linear;

  constructor(config: CLIPTextConfig, opts: LayerOptions = {}) {
    super();
    this.act = config.hidden_act;
    this.fc1 = new Linear(config.hidden_size, config.intermediate_size, opts);
    this.fc2 = new Linear(config.intermediate_size, config.hidden_size, opts);
  }

  override forward(x: Tensor): Tensor {
    return this.fc2.call(activate(this.fc1.call(x), this.act));
  }
}

/** Pre-LN transformer layer (`CLIPEncoderLayer`): x + attn(ln1(x)), then x + mlp(ln2(x)). */
export class CLIPEncoderLayer extends Module<[Tensor, Tensor | null], Tensor> {
  self_attn: CLIPAttention;
  layer_norm1: LayerNorm;
  mlp: CLIPMLP;
  layer_norm2: LayerNorm;

  constructor(config: CLIPTextConfig, opts: LayerOptions = {}) {
    super();
    const ln = { eps: config.layer_norm_eps, dtype: opts.dtype };
    this.self_attn = new CLIPAttention(config, opts);
    this.layer_norm1 = new LayerNorm(config.hidden_size, ln);
    this.mlp = new CLIPMLP(config, opts);
    this.layer_norm2 = new LayerNorm(config.hidden_size, ln);
  }

  override forward(x: Tensor, mask: Tensor | null): Tensor {
    const h = add(x, this.self_attn.call(this.layer_norm1.call(x), mask));
    return add(h, this.mlp.call(this.layer_norm2.call(h)));
  }
}

/** The stack of encoder layers (`CLIPEncoder`, children `layers.0`, `layers.1`, ...). */
export class CLIPEncoder extends Module<[Tensor, Tensor | null, ((h: Tensor) => void)?], Tensor> {
  layers: ModuleList<CLIPEncoderLayer>;

  constructor(config: CLIPTextConfig, opts: LayerOptions = {}) {
    super();
    this.layers = new ModuleList(
      Array.from({ length: config.num_hidden_layers }, () => new CLIPEncoderLayer(config, opts)),
    );
  }

  /** Runs every layer; `onLayer` (if given) sees each layer's output in order. */
  override forward(x: Tensor, mask: Tensor | null, onLayer?: (h: Tensor) => void): Tensor {
    let h = x;
    for (const layer of this.layers) {
      h = layer.call(h, mask);
      onLayer?.(h);
    }
    return h;
  }
}
