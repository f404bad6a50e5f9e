// CLIP text encoder against the transformers fixtures (tiny_text_encoder + clip_io), plus hand-checked pooling,
// projection, masking, gradients and input errors.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import {
  ArgumentError,
  DTypeError,
  Generator,
  loadSafetensors,
  noGrad,
  ShapeError,
  type Tensor,
  tensor,
} from "../../../src/index.js";
import {
  activate,
  CLIPTextModel,
  CLIPTextModelWithProjection,
  clipTextConfig,
  eosPositions,
  SD1_TEXT_ENCODER,
  SD2_TEXT_ENCODER,
  SDXL_TEXT_ENCODER,
  SDXL_TEXT_ENCODER_2,
  textEmbeddings,
} from "../../../src/models/clip/index.js";
import {
  assertClose,
  fixturesDir,
  gradcheck,
  maxNormalizedError,
  skipWithoutFixtures,
} from "../../helpers.js";

const TOL = 1e-4;

/** Row `b`, position `i` of a [B, L, D] tensor as a Float32Array. */
function rowAt(t: Tensor, b: number, i: number): Float32Array {
  const [, len, d] = t.shape as [number, number, number];
  return t.toFloat32Array().slice((b * len + i) * d, (b * len + i + 1) * d);
}

describe("CLIPTextModel vs transformers fixtures", { skip: skipWithoutFixtures() }, () => {
  let model: CLIPTextModel;
  let io: Map<string, Tensor>;
  let masks: number[][];
  const ids = () => io.get("input_ids")!;

  before(async () => {
    const dir = join(fixturesDir()!, "models");
    model = await CLIPTextModel.fromPretrained(join(dir, "tiny_text_encoder"));
    io = (await loadSafetensors(join(dir, "clip_io.safetensors"))).tensors;
    const models = JSON.parse(readFileSync(join(dir, "models.json"), "utf8"));
    masks = models.tokenizer.cases.map((c: { attention_mask: number[] }) => c.attention_mask);
  });

  it("state-dict keys are exactly the transformers keys of the file", async () => {
    const file = await loadSafetensors(
      join(fixturesDir()!, "models", "tiny_text_encoder", "model.safetensors"),
    );
    assert.deepEqual([...model.stateDict().keys()].sort(), [...file.tensors.keys()].sort());
    for (const [k, t] of model.stateDict()) assert.deepEqual(t.shape, file.tensors.get(k)!.shape, k);
  });

  it("last_hidden_state, pooler_output and every hidden state match", () => {
    const out = noGrad(() => model.call(ids(), { outputHiddenStates: true }));
    assert.deepEqual(out.lastHiddenState.shape, [6, 77, 32]);
    assert.deepEqual(out.pooledOutput.shape, [6, 32]);
    assertClose(
      out.lastHiddenState.toFloat32Array(),
      io.get("last_hidden_state")!.toFloat32Array(),
      TOL,
      "last",
    );
    assertClose(out.pooledOutput.toFloat32Array(), io.get("pooler_output")!.toFloat32Array(), TOL, "pooled");
    assert.equal(out.hiddenStates!.length, 3);
    out.hiddenStates!.forEach((h, i) => {
      assertClose(
        h.toFloat32Array(),
        io.get(`hidden_states.${i}`)!.toFloat32Array(),
        TOL,
        `hidden_states.${i}`,
      );
    });
  });

  it("hiddenStates is null unless asked for; int32 ids give the same result", () => {
    const i32 = tensor(Int32Array.from(ids().dataSync() as BigInt64Array, Number), [6, 77]);
    const out = noGrad(() => model.call(i32));
    assert.equal(out.hiddenStates, null);
    assertClose(out.lastHiddenState.toFloat32Array(), io.get("last_hidden_state")!.toFloat32Array(), TOL);
  });

  it("textEmbeddings: SD clip skip 1 = final_layer_norm(hidden_states[-2]); SDXL style = raw hidden_states[-2]", () => {
    noGrad(() => {
      const sd0 = textEmbeddings(model, ids());
      assertClose(sd0.embeds.toFloat32Array(), io.get("last_hidden_state")!.toFloat32Array(), TOL, "skip 0");
      assertClose(sd0.pooled.toFloat32Array(), io.get("pooler_output")!.toFloat32Array(), TOL, "pooled");
      const sd1 = textEmbeddings(model, ids(), { clipSkip: 1 });
      const want = io.get("penultimate_final_layer_norm")!.toFloat32Array();
      assertClose(sd1.embeds.toFloat32Array(), want, TOL, "skip 1");
      const xl = textEmbeddings(model, ids(), { style: "sdxl" });
      assertClose(xl.embeds.toFloat32Array(), io.get("hidden_states.1")!.toFloat32Array(), TOL, "sdxl");
      const xl1 = textEmbeddings(model, ids(), { style: "sdxl", clipSkip: 1 });
      assertClose(
        xl1.embeds.toFloat32Array(),
        io.get("hidden_states.0")!.toFloat32Array(),
        TOL,
        "sdxl skip 1",
      );
      const sd2 = textEmbeddings(model, ids(), { clipSkip: 2 });
      assert.ok(maxNormalizedError(sd2.embeds.toFloat32Array(), want) > 1e-2, "skip 2 differs from skip 1");
    });
    assert.throws(
      () => textEmbeddings(model, ids(), { clipSkip: 3 }),
      /clipSkip must be an integer in 0\.\.2/,
    );
    assert.throws(() => textEmbeddings(model, ids(), { style: "sdxl", clipSkip: 2 }), /0\.\.1/);
    assert.throws(() => textEmbeddings(model, ids(), { clipSkip: -1 }), ArgumentError);
  });

  it("a padding mask leaves the real tokens as without mask (causal) and changes only the padding", () => {
    const mask = tensor(masks.flat(), [6, 77], { dtype: "int64" });
    const out = noGrad(() => model.call(ids(), { attentionMask: mask }));
    const want = io.get("last_hidden_state")!;
    assertClose(out.pooledOutput.toFloat32Array(), io.get("pooler_output")!.toFloat32Array(), TOL, "pooled");
    const got = out.lastHiddenState.toFloat32Array();
    assert.ok(got.every(Number.isFinite));
    masks.forEach((m, b) => {
      const real = m.lastIndexOf(1);
      for (const i of [0, real])
        assertClose(rowAt(out.lastHiddenState, b, i), rowAt(want, b, i), TOL, `[${b}, ${i}]`);
      if (real < 76) {
        const err = maxNormalizedError(rowAt(out.lastHiddenState, b, real + 1), rowAt(want, b, real + 1));
        assert.ok(err > 1e-3, `padding row [${b}, ${real + 1}] should change (err ${err})`);
      }
    });
    const ones = noGrad(() =>
      model.call(ids(), { attentionMask: tensor(new Array(6 * 77).fill(true), [6, 77]) }),
    );
    assertClose(ones.lastHiddenState.toFloat32Array(), want.toFloat32Array(), TOL, "all-ones mask");
  });

  it("a fully masked causal row stays finite (transformers' finfo.min, not -inf)", () => {
    const x = tensor([[672, 320, 541, 673]], undefined, { dtype: "int64" });
    const out = noGrad(() => model.call(x, { attentionMask: tensor([[0, 1, 1, 1]]) }));
    assert.ok(out.lastHiddenState.toFloat32Array().every(Number.isFinite));
  });

  it("pooling: eos_token_id 2 takes the argmax of the ids, otherwise the first EOS", async () => {
    const weights = model.stateDict();
    const x = tensor([[672, 320, 673, 541, 673]], undefined, { dtype: "int64" });
    const byEos = (eos: number) => {
      const m = new CLIPTextModel({ ...model.config, eos_token_id: eos }, { skipInit: true });
      m.loadStateDict(weights);
      return noGrad(() => m.call(x));
    };
    for (const [eos, pos] of [
      [2, 2], // legacy: argmax -> the first 673
      [320, 1],
      [541, 3],
      [99, 0], // absent: position 0
    ] as const) {
      const out = byEos(eos);
      assert.deepEqual(out.pooledOutput.toFloat32Array(), rowAt(out.lastHiddenState, 0, pos), `eos ${eos}`);
    }
  });
});

describe("CLIP pooling positions and activations", () => {
  it("eosPositions follows transformers' two rules", () => {
    const v = Int32Array.from([5, 9, 3, 9, 1, 7, 7, 0]);
    assert.deepEqual([...eosPositions(v, 2, 4, 2)], [1, 1]);
    assert.deepEqual([...eosPositions(v, 2, 4, 9)], [1, 0]);
    assert.deepEqual([...eosPositions(v, 2, 4, 7)], [0, 1]);
    assert.deepEqual([...eosPositions(v, 2, 4, 3)], [2, 0]);
  });

  it("hidden_act values at x = 1 and x = -2", () => {
    const x = tensor([1, -2]);
    const q = (v: number) => v / (1 + Math.exp(-1.702 * v));
    const tanhGelu = (v: number) =>
      0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    const close = (got: Tensor, want: number[]) => {
      const g = got.toFloat32Array();
      want.forEach((w, i) => {
        assert.ok(Math.abs(g[i]! - w) < 1e-6, `${g[i]} vs ${w}`);
      });
    };
    close(activate(x, "quick_gelu"), [q(1), q(-2)]);
    close(activate(x, "gelu"), [0.8413447460685429, -0.04550026389635842]);
    for (const a of ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"] as const)
      close(activate(x, a), [tanhGelu(1), tanhGelu(-2)]);
    close(activate(x, "relu"), [1, 0]);
  });
});

/** A small random model (seeded PyTorch-style init). */
function tinyConfig(over: Record<string, unknown> = {}) {
  return clipTextConfig({
    vocab_size: 20,
    hidden_size: 8,
    intermediate_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    max_position_embeddings: 6,
    hidden_act: "gelu",
    eos_token_id: 19,
    bos_token_id: 18,
    pad_token_id: 19,
    projection_dim: 5,
    ...over,
  });
}

describe("CLIPTextModelWithProjection", () => {
  it("has text_projection.weight [projection_dim, hidden] and textEmbeds = pooled · Wᵀ", () => {
    const cfg = tinyConfig();
    const m = new CLIPTextModelWithProjection(cfg, { generator: new Generator().manualSeed(3) });
    const keys = [...m.stateDict().keys()];
    assert.equal(keys.at(-1), "text_projection.weight");
    assert.ok(!keys.includes("text_projection.bias"));
    assert.deepEqual(m.text_projection.weight.shape, [5, 8]);
    const ids = tensor(
      [
        [18, 3, 7, 19, 19],
        [18, 19, 19, 19, 19],
      ],
      undefined,
      { dtype: "int64" },
    );
    const out = noGrad(() => m.call(ids));
    assert.deepEqual(out.textEmbeds.shape, [2, 5]);
    const pooled = out.pooledOutput.toFloat32Array();
    const w = m.text_projection.weight.toFloat32Array();
    const want = new Float32Array(10);
    for (let b = 0; b < 2; b++)
      for (let o = 0; o < 5; o++) {
        let s = 0;
        for (let i = 0; i < 8; i++) s += pooled[b * 8 + i]! * w[o * 8 + i]!;
        want[b * 5 + o] = s;
      }
    assertClose(out.textEmbeds.toFloat32Array(), want, 1e-6, "textEmbeds");
    // pooled at the first EOS (eos_token_id 19 is not the legacy 2)
    assert.deepEqual(out.pooledOutput.toFloat32Array().slice(0, 8), rowAt(out.lastHiddenState, 0, 3));
    assert.deepEqual(out.pooledOutput.toFloat32Array().slice(8), rowAt(out.lastHiddenState, 1, 1));
    // the same tower as CLIPTextModel with the same weights
    const base = new CLIPTextModel(cfg, { skipInit: true });
    base.loadStateDict(new Map([...m.stateDict()].filter(([k]) => k.startsWith("text_model."))));
    const b = noGrad(() => base.call(ids));
    assert.deepEqual(b.lastHiddenState.toFloat32Array(), out.lastHiddenState.toFloat32Array());
    const te = noGrad(() => textEmbeddings(m, ids));
    assert.deepEqual(te.pooled.toFloat32Array(), out.textEmbeds.toFloat32Array());
  });
});

describe("CLIP text model gradients", () => {
  it("match finite differences through causal and padding-masked attention", () => {
    const m = new CLIPTextModel(tinyConfig({ hidden_act: "quick_gelu" }), {
      generator: new Generator().manualSeed(5),
    });
    const ids = tensor(
      [
        [18, 4, 9, 19],
        [18, 2, 19, 19],
      ],
      undefined,
      { dtype: "int64" },
    );
    const mask = tensor([
      [1, 1, 1, 1],
      [1, 1, 1, 0],
    ]);
    const layer = m.text_model.encoder.layers[0]!;
    for (const attentionMask of [null, mask]) {
      const fn = () => {
        const o = m.call(ids, { attentionMask });
        return o.lastHiddenState.add(o.pooledOutput.unsqueeze(1));
      };
      gradcheck(
        fn,
        [layer.self_attn.q_proj.weight, layer.mlp.fc1.weight, m.text_model.embeddings.token_embedding.weight],
        {
          maxElements: 12,
        },
      );
    }
  });
});

describe("CLIP input checks", () => {
  const m = new CLIPTextModel(tinyConfig(), { generator: new Generator().manualSeed(1) });
  const ids = (rows: number[][]) => tensor(rows, undefined, { dtype: "int64" });

  it("rejects ids outside the vocabulary, naming the id, its position and vocab_size", () => {
    assert.throws(
      () => m.call(ids([[18, 3, 20]])),
      (e: Error) => {
        assert.ok(e instanceof ArgumentError);
        assert.match(e.message, /token id 20 at \[0, 2\].*vocab_size 20/);
        return true;
      },
    );
    assert.throws(() => m.call(ids([[18, -1]])), /token id -1 at \[0, 1\]/);
  });

  it("rejects sequences longer than max_position_embeddings", () => {
    assert.throws(
      () => m.call(ids([[18, 1, 2, 3, 4, 5, 19]])),
      (e: Error) =>
        e instanceof ShapeError && /length 7 exceeds max_position_embeddings \(6\)/.test(e.message),
    );
  });

  it("rejects float ids, non-2-D ids, empty sequences and bad masks", () => {
    assert.throws(() => m.call(tensor([[1, 2]])), DTypeError);
    assert.throws(() => m.call(tensor([1, 2], undefined, { dtype: "int64" })), /\[batch, length\]/);
    assert.throws(() => m.call(tensor(new BigInt64Array(0), [1, 0])), /length >= 1/);
    assert.throws(
      () => m.call(ids([[18, 19]]), { attentionMask: tensor([[1, 1, 1]]) }),
      /attentionMask must be \[1, 2\]/,
    );
    assert.throws(() => m.call(ids([[18, 19]]), { attentionMask: tensor([[1, 2]]) }), /0 \(padding\) or 1/);
  });
});

describe("CLIP text configs", () => {
  it("named configs are valid and keep the published sizes", () => {
    for (const c of [SD1_TEXT_ENCODER, SD2_TEXT_ENCODER, SDXL_TEXT_ENCODER, SDXL_TEXT_ENCODER_2]) {
      assert.deepEqual(clipTextConfig(c as unknown as Record<string, unknown>), c);
      assert.equal(c.eos_token_id, 2);
    }
    assert.equal(SD1_TEXT_ENCODER.hidden_act, "quick_gelu");
    assert.equal(SD2_TEXT_ENCODER.num_hidden_layers, 23);
    assert.equal(SDXL_TEXT_ENCODER_2.hidden_size / SDXL_TEXT_ENCODER_2.num_attention_heads, 64);
    assert.equal(SDXL_TEXT_ENCODER_2.projection_dim, 1280);
  });

  it("fills transformers' defaults, reads a nested CLIPConfig and names bad keys", () => {
    const d = clipTextConfig({});
    assert.equal(d.hidden_size, 512);
    assert.equal(d.eos_token_id, 49407);
    const nested = clipTextConfig({
      projection_dim: 7,
      text_config: { hidden_size: 16, num_attention_heads: 4, projection_dim: 3 },
    });
    assert.equal(nested.hidden_size, 16);
    assert.equal(nested.projection_dim, 7);
    assert.throws(
      () => clipTextConfig({ hidden_size: 30, num_attention_heads: 8 }),
      /divisible by num_attention_heads/,
    );
    assert.throws(() => clipTextConfig({ hidden_act: "swish" }), /hidden_act "swish" is not supported/);
    assert.throws(
      () => clipTextConfig({ num_hidden_layers: 0 }),
      /num_hidden_layers must be a positive integer/,
    );
    assert.throws(() => clipTextConfig({ layer_norm_eps: -1 }), /layer_norm_eps/);
  });
});
