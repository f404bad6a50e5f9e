// OpenCLIP text towers (SD 2.x, SDXL's second encoder) converted to the transformers layout: the fused q/k/v
// projection is split in the right order, checked on slices and against an OpenCLIP-layout forward pass written
// out here in plain float64 loops (token + positional embedding, pre-LN residual blocks with causal multi-head
// attention through in_proj / out_proj and a GELU MLP through c_fc / c_proj, ln_final, x[eos] @ text_projection).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { noGrad, type Tensor, tensor } from "../../../src/index.js";
import { applyTransform, openCLIPPlan, type ShapeMap } from "../../../src/io/ldm/index.js";
import { CLIPTextModelWithProjection, clipTextConfig } from "../../../src/models/clip/index.js";
import { assertClose, randomTensor } from "../../helpers.js";
import { openClipShapes } from "./synthetic.js";

const D = 8;
const HEADS = 2;
const FF = 16;
const VOCAB = 20;
const POS = 6;
const PROJ = 4;
const PREFIX = "cond_stage_model.model.";

/** Random OpenCLIP weights (norm scales around 1) under PREFIX, with `layers` resblocks. */
function openClipWeights(layers: number): Map<string, Tensor> {
  const shapes = openClipShapes(PREFIX, {
    layers,
    hidden: D,
    intermediate: FF,
    vocab: VOCAB,
    positions: POS,
    projection: PROJ,
  });
  const w = new Map<string, Tensor>();
  let seed = 1;
  for (const [k, s] of shapes) {
    const isScale = /(ln_\d|ln_final)\.weight$/.test(k);
    w.set(k, randomTensor(s, seed++, isScale ? 0.5 : -0.5, isScale ? 1.5 : 0.5));
  }
  return w;
}

type Mat = number[][];
const rows = (t: Tensor): Mat => {
  const a = t.toFloat32Array();
  const [r, c] = [t.shape[0]!, t.shape[1] ?? 1];
  return Array.from({ length: r }, (_, i) => Array.from(a.subarray(i * c, (i + 1) * c)));
};
const vec = (t: Tensor): number[] => Array.from(t.toFloat32Array());

function layerNorm(x: number[], g: number[], b: number[]): number[] {
  const m = x.reduce((a, v) => a + v, 0) / x.length;
  const v = x.reduce((a, u) => a + (u - m) ** 2, 0) / x.length;
  return x.map((u, i) => ((u - m) / Math.sqrt(v + 1e-5)) * g[i]! + b[i]!);
}
/** x W^T + b for W [out, in]. */
const affine = (x: number[], W: Mat, b?: number[]): number[] =>
  W.map((row, o) => row.reduce((a, w, i) => a + w * x[i]!, b ? b[o]! : 0));
/** erf, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-a * a);
  return s * y;
}
const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** OpenCLIP's text tower on one sequence: [hidden after ln_final per position, pooled @ text_projection]. */
function openClipForward(w: Map<string, Tensor>, ids: number[], layers: number): [Mat, number[]] {
  const g = (k: string) => w.get(PREFIX + k)!;
  const tok = rows(g("token_embedding.weight"));
  const pos = rows(g("positional_embedding"));
  let x: Mat = ids.map((id, p) => tok[id]!.map((v, i) => v + pos[p]![i]!));
  const dh = D / HEADS;
  for (let l = 0; l < layers; l++) {
    const r = (k: string) => g(`transformer.resblocks.${l}.${k}`);
    const inW = rows(r("attn.in_proj_weight"));
    const inB = vec(r("attn.in_proj_bias"));
    const h = x.map((xi) => layerNorm(xi, vec(r("ln_1.weight")), vec(r("ln_1.bias"))));
    const qkv = h.map((hi) => affine(hi, inW, inB)); // [q | k | v], nn.MultiheadAttention's order
    const attn = x.map((_, p) => {
      const out: number[] = [];
      for (let hd = 0; hd < HEADS; hd++) {
        const q = qkv[p]!.slice(hd * dh, (hd + 1) * dh);
        const scores = qkv.slice(0, p + 1).map((kv) => {
          const k = kv.slice(D + hd * dh, D + (hd + 1) * dh);
          return q.reduce((a, qi, i) => a + qi * k[i]!, 0) / Math.sqrt(dh);
        });
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, v) => a + v, 0);
        for (let i = 0; i < dh; i++)
          out.push(e.reduce((a, ei, j) => a + (ei / z) * qkv[j]![2 * D + hd * dh + i]!, 0));
      }
      return affine(out, rows(r("attn.out_proj.weight")), vec(r("attn.out_proj.bias")));
    });
    x = x.map((xi, p) => xi.map((v, i) => v + attn[p]![i]!));
    const m = x.map((xi) => {
      const hi = layerNorm(xi, vec(r("ln_2.weight")), vec(r("ln_2.bias")));
      const f = affine(hi, rows(r("mlp.c_fc.weight")), vec(r("mlp.c_fc.bias"))).map(gelu);
      return affine(f, rows(r("mlp.c_proj.weight")), vec(r("mlp.c_proj.bias")));
    });
    x = x.map((xi, p) => xi.map((v, i) => v + m[p]![i]!));
  }
  x = x.map((xi) => layerNorm(xi, vec(g("ln_final.weight")), vec(g("ln_final.bias"))));
  const eos = ids.indexOf(Math.max(...ids)); // OpenCLIP pools at text.argmax(-1)
  const P = rows(g("text_projection")); // [D, PROJ], applied as x @ P
  const pooled = Array.from({ length: PROJ }, (_, j) => x[eos]!.reduce((a, v, i) => a + v * P[i]![j]!, 0));
  return [x, pooled];
}

describe("OpenCLIP -> transformers CLIP text encoder", () => {
  const weights = openClipWeights(3);
  const shapes: ShapeMap = new Map([...weights].map(([k, t]) => [k, t.shape]));

  it("splits in_proj_weight / in_proj_bias into q, k, v rows and transposes text_projection", () => {
    const plan = openCLIPPlan(shapes, PREFIX, { layers: 3, projection: true });
    const w = weights.get(`${PREFIX}transformer.resblocks.1.attn.in_proj_weight`)!.toFloat32Array();
    const b = weights.get(`${PREFIX}transformer.resblocks.1.attn.in_proj_bias`)!.toFloat32Array();
    ["q_proj", "k_proj", "v_proj"].forEach((name, i) => {
      const mw = plan.tensors.get(`text_model.encoder.layers.1.self_attn.${name}.weight`)!;
      const mb = plan.tensors.get(`text_model.encoder.layers.1.self_attn.${name}.bias`)!;
      assert.deepEqual(mw.shape, [D, D]);
      const gotW = applyTransform(weights.get(mw.source)!, mw.transform);
      const gotB = applyTransform(weights.get(mb.source)!, mb.transform);
      assert.deepEqual(gotW.toFloat32Array(), w.subarray(i * D * D, (i + 1) * D * D), `${name}.weight`);
      assert.deepEqual(gotB.toFloat32Array(), b.subarray(i * D, (i + 1) * D), `${name}.bias`);
    });
    const p = plan.tensors.get("text_projection.weight")!;
    assert.deepEqual(p.shape, [PROJ, D]);
    const P = weights.get(`${PREFIX}text_projection`)!.toFloat32Array();
    const got = applyTransform(weights.get(p.source)!, p.transform).toFloat32Array();
    for (let j = 0; j < PROJ; j++) for (let i = 0; i < D; i++) assert.equal(got[j * D + i], P[i * PROJ + j]);
    assert.deepEqual([...plan.skipped.keys()], [`${PREFIX}logit_scale`]);
  });

  it("the converted model computes what OpenCLIP computes (SD 2.x style: the last resblock dropped)", () => {
    const keep = 2;
    const plan = openCLIPPlan(shapes, PREFIX, { layers: keep, projection: true });
    assert.deepEqual(
      [...plan.skipped.keys()].filter((k) => k.includes("resblocks.2.")).length,
      12,
      "the 12 tensors of the last resblock are skipped",
    );
    const config = clipTextConfig({
      vocab_size: VOCAB,
      hidden_size: D,
      intermediate_size: FF,
      num_hidden_layers: keep,
      num_attention_heads: HEADS,
      max_position_embeddings: POS,
      hidden_act: "gelu",
      bos_token_id: 0,
      eos_token_id: 2, // legacy configs: pool at the argmax of the ids, as OpenCLIP does
      pad_token_id: 1,
      projection_dim: PROJ,
    });
    const model = new CLIPTextModelWithProjection(config, { skipInit: true });
    model.loadStateDict(
      new Map([...plan.tensors].map(([k, m]) => [k, applyTransform(weights.get(m.source)!, m.transform)])),
    );
    const ids = [
      [0, 5, 7, 19, 1, 1],
      [0, 3, 18, 4, 4, 4],
    ];
    const out = noGrad(() => model.call(tensor(Int32Array.from(ids.flat()), [2, POS], { dtype: "int32" })));
    const last = out.lastHiddenState.toFloat32Array();
    const embeds = out.textEmbeds.toFloat32Array();
    ids.forEach((seq, b) => {
      const [x, pooled] = openClipForward(weights, seq, keep);
      assertClose(
        last.subarray(b * POS * D, (b + 1) * POS * D),
        x.flat(),
        1e-5,
        `last hidden state, row ${b}`,
      );
      assertClose(
        embeds.subarray(b * PROJ, (b + 1) * PROJ),
        pooled,
        1e-5,
        `projected pooled output, row ${b}`,
      );
    });
  });

  it("half-precision tensors stay half-precision through the split and the transpose", () => {
    const w = weights.get(`${PREFIX}transformer.resblocks.0.attn.in_proj_weight`)!;
    const half = w.half();
    for (const index of [0, 1, 2]) {
      const t = { kind: "chunk", index, count: 3 } as const;
      const got = applyTransform(half, t);
      assert.equal(got.dtype, "float16");
      assert.deepEqual(got.toFloat32Array(), applyTransform(w, t).half().toFloat32Array());
    }
    const p = weights.get(`${PREFIX}text_projection`)!;
    const tp = applyTransform(p.half(), { kind: "transpose" });
    assert.equal(tp.dtype, "float16");
    assert.deepEqual(tp.toFloat32Array(), applyTransform(p, { kind: "transpose" }).half().toFloat32Array());
  });

  it("refuses more layers than the checkpoint has", () => {
    assert.throws(
      () => openCLIPPlan(shapes, PREFIX, { layers: 4 }),
      /the model has 4 layers but the checkpoint only 3 \(transformer\.resblocks\.0-2\)/,
    );
  });
});
