// Classifier-free guidance arithmetic on hand-computed values: the [uncond; cond] split, e_u + g (e_c - e_u),
// guidance rescale (per-sample unbiased std), the burn-out warning and the guidance-scale embedding.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tensor } from "../../src/index.js";
import {
  applyGuidance,
  checkGuidance,
  checkGuidanceInterval,
  conditionalHalf,
  formatGuidanceInterval,
  guidanceBatch,
  guidanceScaleEmbedding,
  guidanceWarning,
  guidedAt,
  PipelineError,
  parseGuidanceInterval,
  rescaleGuidance,
  timestepSigma,
  usesGuidance,
} from "../../src/pipelines/index.js";
import { DDIMScheduler } from "../../src/schedulers/ddim.js";
import { DDPMScheduler } from "../../src/schedulers/ddpm.js";
import { assertAllClose } from "../helpers.js";

describe("classifier-free guidance", () => {
  it("mixes the halves of the batch as e_u + g (e_c - e_u)", () => {
    // batch of 2 (B = 1): uncond [1, 2], cond [3, 5]
    const out = tensor([1, 2, 3, 5], [2, 2]);
    const { guided, cond, uncond } = applyGuidance(out, 2);
    assert.deepEqual(Array.from(guided.toFloat32Array()), [5, 8]);
    assert.deepEqual(Array.from(cond.toFloat32Array()), [3, 5]);
    assert.deepEqual(Array.from(uncond.toFloat32Array()), [1, 2]);
    assert.deepEqual(Array.from(applyGuidance(out, 1).guided.toFloat32Array()), [3, 5], "g = 1: conditional");
    assert.deepEqual(
      Array.from(applyGuidance(out, 0).guided.toFloat32Array()),
      [1, 2],
      "g = 0: unconditional",
    );
    assert.throws(() => applyGuidance(tensor([1, 2, 3], [3, 1]), 2), PipelineError);
  });

  it("doubles the input batch only when guided (diffusers: g > 1)", () => {
    const x = tensor([1, 2], [1, 2]);
    assert.deepEqual(guidanceBatch(x, true).shape, [2, 2]);
    assert.equal(guidanceBatch(x, false), x);
    assert.equal(usesGuidance(1), false);
    assert.equal(usesGuidance(1.01), true);
  });

  it("rescale: phi * guided * std(cond) / std(guided) + (1 - phi) * guided, per sample", () => {
    // sample 0: guided [0, 4] (std 2*sqrt(2)), cond [1, 2] (std sqrt(2)/2): ratio 1/4
    // sample 1: guided [1, 3] (std sqrt(2)), cond [0, 2] (std sqrt(2)): ratio 1
    const guided = tensor([0, 4, 1, 3], [2, 2]);
    const cond = tensor([1, 2, 0, 2], [2, 2]);
    assertAllClose(rescaleGuidance(guided, cond, 1).toFloat32Array(), [0, 1, 1, 3], 1e-6, 1e-6);
    assertAllClose(rescaleGuidance(guided, cond, 0.5).toFloat32Array(), [0, 2.5, 1, 3], 1e-6, 1e-6);
    assertAllClose(rescaleGuidance(guided, cond, 0).toFloat32Array(), [0, 4, 1, 3], 0, 0);
    // through applyGuidance: uncond [2, 0, 1], cond [2, 1.5, 2], g = 2 -> guided = 2 cond - uncond = [2, 3, 3]
    const out = tensor([2, 0, 1, 2, 1.5, 2], [2, 3]);
    const got = applyGuidance(out, 2, 0.7).guided.toFloat32Array();
    const std = (v: number[]) => {
      const m = v.reduce((a, b) => a + b) / v.length;
      return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
    };
    const raw = [2, 3, 3];
    const ratio = std([2, 1.5, 2]) / std(raw);
    assertAllClose(
      got,
      raw.map((v) => 0.7 * v * ratio + 0.3 * v),
      1e-6,
      1e-6,
    );
  });

  it("warns above guidance 15 and suggests 7-10; rejects bad values", () => {
    assert.equal(guidanceWarning(15), null);
    assert.equal(guidanceWarning(7.5), null);
    const w = guidanceWarning(15.5);
    assert.ok(w);
    assert.match(w, /burn out/);
    assert.match(w, /7-10/);
    assert.throws(() => checkGuidance(Number.NaN, 0), /guidanceScale must be/);
    assert.throws(() => checkGuidance(-1, 0), /guidanceScale must be/);
    assert.throws(() => checkGuidance(7, 1.5), /guidanceRescale must be in \[0, 1\]/);
    checkGuidance(0, 1);
  });

  it("guidance-scale embedding: [sin(w 1000 f_i) | cos(w 1000 f_i)], f_i = 10000^(-i / (half - 1))", () => {
    const e = guidanceScaleEmbedding([0.5, 0], 6).toFloat32Array();
    const freqs = [1, 10000 ** -0.5, 1e-4];
    const want = [
      ...freqs.map((f) => Math.sin(500 * f)),
      ...freqs.map((f) => Math.cos(500 * f)),
      0,
      0,
      0,
      1,
      1,
      1,
    ];
    assertAllClose(e, want, 2e-4, 1e-4);
  });

  it("guidance interval: sigma of a timestep from alpha-bar, log-interpolated between integer timesteps", () => {
    const s = new DDPMScheduler({ beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 });
    const ac = s.alphasCumprod;
    const sigma = (t: number) => Math.sqrt((1 - ac[t]!) / ac[t]!);
    for (const t of [0, 1, 500, 999]) assertAllClose([timestepSigma(s, t)], [sigma(t)], 1e-6, 0);
    // halfway in log sigma between 400 and 401
    assertAllClose([timestepSigma(s, 400.5)], [Math.sqrt(sigma(400) * sigma(401))], 1e-6, 0);
    // clamped to the schedule
    assert.equal(timestepSigma(s, -3), timestepSigma(s, 0));
    assert.equal(timestepSigma(s, 1200), timestepSigma(s, 999));
    // guided when sigmaMin < sigma <= sigmaMax; always without an interval
    const interval = { sigmaMin: sigma(200), sigmaMax: sigma(700) };
    assert.equal(guidedAt(s, 700, interval), true);
    assert.equal(guidedAt(s, 701, interval), false);
    assert.equal(guidedAt(s, 200, interval), false);
    assert.equal(guidedAt(s, 201, interval), true);
    assert.equal(guidedAt(s, 999, undefined), true);
    assert.equal(guidedAt(s, 999, { sigmaMin: 0, sigmaMax: Number.POSITIVE_INFINITY }), true);
    // zero terminal SNR: alpha-bar 0 at the last timestep is infinite noise (not NaN), guided by an open interval
    const zsnr = new DDIMScheduler({ beta_schedule: "scaled_linear", rescale_betas_zero_snr: true });
    assert.equal(zsnr.alphasCumprod[999], 0);
    assert.equal(timestepSigma(zsnr, 999), Number.POSITIVE_INFINITY);
    assert.equal(timestepSigma(zsnr, 998.5), Number.POSITIVE_INFINITY);
    assert.equal(guidedAt(zsnr, 999, { sigmaMin: 0.28, sigmaMax: Number.POSITIVE_INFINITY }), true);
    assert.equal(guidedAt(zsnr, 999, { sigmaMin: 0.28, sigmaMax: 5.42 }), false);
  });

  it("guidance interval: parses and formats LO,HI (inf allowed); refuses the impossible ones", () => {
    assert.deepEqual(parseGuidanceInterval("0.3, 5"), { sigmaMin: 0.3, sigmaMax: 5 });
    assert.deepEqual(parseGuidanceInterval("0,inf"), { sigmaMin: 0, sigmaMax: Number.POSITIVE_INFINITY });
    for (const i of [
      { sigmaMin: 0.25, sigmaMax: 2.5 },
      { sigmaMin: 1, sigmaMax: Number.POSITIVE_INFINITY },
    ]) {
      assert.deepEqual(parseGuidanceInterval(formatGuidanceInterval(i)), i);
    }
    for (const bad of ["2", "1,2,3", "a,2", "", ",", "1,"]) {
      assert.throws(() => parseGuidanceInterval(bad), /SIGMA_MIN,SIGMA_MAX/, bad);
    }
    for (const bad of ["2,1", "1,1", "-1,2", "inf,inf"]) {
      assert.throws(() => parseGuidanceInterval(bad), /0 <= sigmaMin < sigmaMax/, bad);
    }
    assert.throws(() => checkGuidanceInterval({ sigmaMin: 0, sigmaMax: Number.NaN }), PipelineError);
    assert.deepEqual(Array.from(conditionalHalf(tensor([1, 2, 3, 4], [4, 1])).toFloat32Array()), [3, 4]);
    assert.throws(() => conditionalHalf(tensor([1, 2, 3], [3, 1])), /even/);
  });
});
