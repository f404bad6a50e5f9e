// The k-diffusion-style samplers and the diffusers-shaped classes share their update rules: run on the same model
// and noise, they agree; and the small helpers obey their defining identities.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { F, type Tensor } from "../../src/index.js";
import {
  appendZero,
  type Denoiser,
  DiscreteSigmaScheduler,
  DPMSolverMultistepScheduler,
  discreteDenoiser,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  getAncestralStep,
  HeunDiscreteScheduler,
  karrasSigmas,
  LMSDiscreteScheduler,
  lmsCoefficient,
  type Scheduler,
  sampleDpmpp2m,
  sampleDpmpp2mSde,
  sampleDpmpp3mSde,
  sampleEuler,
  sampleEulerAncestral,
  sampleHeun,
  sampleLms,
  sampleUniPc,
  sigmaToT,
  trainSigmas,
  UniPCMultistepScheduler,
} from "../../src/schedulers/index.js";
import { type ProgressEvent, progressJson } from "../../src/tensor/progress.js";
import { assertClose } from "../helpers.js";
import { SD15_CONFIG, seededNoise } from "./toy.js";

const SHAPE = [1, 4, 8, 8];
const epsModel = (x: Tensor, t: number) => F.add(F.mul(F.tanh(x), 0.5), 0.1 * Math.cos(t / 100));

/** Runs a class through the pipeline loop with noise[i] at step i; returns the final sample as VE. */
function runClass(sched: Scheduler, init: Tensor, noises: Tensor[]): Tensor {
  let x = F.mul(init, sched.initNoiseSigma);
  sched.timesteps.forEach((t, i) => {
    const out = epsModel(sched.scaleModelInput(x, t), t);
    x = sched.step(out, t, x, { noise: noises[i]! }).prevSample;
  });
  return x;
}

describe("functional samplers agree with the scheduler classes", () => {
  const init = seededNoise(SHAPE, 1);
  const noises = Array.from({ length: 20 }, (_, i) => seededNoise(SHAPE, 100 + i));
  const cases: [string, () => Scheduler, (d: Denoiser, x: Tensor, s: number[]) => Tensor][] = [
    [
      "euler",
      () => new EulerDiscreteScheduler({ ...SD15_CONFIG, timestep_spacing: "trailing" }),
      sampleEuler,
    ],
    [
      "euler-a",
      () => new EulerAncestralDiscreteScheduler({ ...SD15_CONFIG, timestep_spacing: "trailing" }),
      (d, x, s) => sampleEulerAncestral(d, x, s, { noise: (i) => noises[i]! }),
    ],
    ["heun", () => new HeunDiscreteScheduler({ ...SD15_CONFIG, timestep_spacing: "trailing" }), sampleHeun],
    ["lms", () => new LMSDiscreteScheduler({ ...SD15_CONFIG, timestep_spacing: "trailing" }), sampleLms],
    ["dpmpp-2m", () => new DPMSolverMultistepScheduler(SD15_CONFIG), sampleDpmpp2m],
    [
      "dpmpp-2m-sde",
      () => new DPMSolverMultistepScheduler({ ...SD15_CONFIG, algorithm_type: "sde-dpmsolver++" }),
      (d, x, s) => sampleDpmpp2mSde(d, x, s, { noise: (i) => noises[i]! }),
    ],
    [
      "dpmpp-3m-sde",
      () =>
        new DPMSolverMultistepScheduler({
          ...SD15_CONFIG,
          algorithm_type: "sde-dpmsolver++",
          solver_order: 3,
        }),
      (d, x, s) => sampleDpmpp3mSde(d, x, s, { noise: (i) => noises[i]! }),
    ],
    [
      "unipc",
      () => new UniPCMultistepScheduler({ ...SD15_CONFIG, solver_order: 3 }),
      (d, x, s) => sampleUniPc(d, x, s, { order: 3 }),
    ],
  ];
  for (const [name, make, sample] of cases) {
    it(name, () => {
      const sched = make();
      sched.setTimesteps(10);
      const viaClass = runClass(sched, init, noises);
      const sigmas = sched.sigmas!;
      const denoiser = discreteDenoiser(epsModel, sched.alphasCumprod);
      // the classes start from noise * initNoiseSigma; in VE that is noise * sigma_max (VP classes: noise * 1)
      const x0 =
        sched instanceof DiscreteSigmaScheduler
          ? F.mul(init, sched.initNoiseSigma)
          : F.mul(init, Math.sqrt(1 + sigmas[0]! ** 2));
      const viaFunction = sample(denoiser, x0, sigmas);
      assertClose(viaFunction.toFloat32Array(), viaClass.toFloat32Array(), 2e-5, name);
    });
  }
});

describe("helpers", () => {
  it("functional samplers report each step as a ProgressEvent with the sample and the denoised estimate", () => {
    const sigmas = [2, 1, 0];
    const x0 = F.mul(seededNoise(SHAPE, 5), 2);
    const denoiser: Denoiser = (x) => F.mul(x, 0.5);
    const events: ProgressEvent[] = [];
    sampleEuler(denoiser, x0, sigmas, { onProgress: (e) => events.push(e) });
    assert.deepEqual(events.map(progressJson), [
      { stage: "sample", step: 1, total: 2, values: { sigma: 2, sigmaNext: 1 } },
      { stage: "sample", step: 2, total: 2, values: { sigma: 1, sigmaNext: 0 } },
    ]);
    assert.ok(events.every((e) => e.sample?.shape.length === 4 && e.denoised?.shape.length === 4));
    let last: Tensor | undefined;
    const out = sampleHeun(denoiser, x0, sigmas, { onProgress: (e) => (last = e.sample) });
    assert.deepEqual(last!.toFloat32Array(), out.toFloat32Array());
  });

  it("karrasSigmas runs from sigma_max to sigma_min, denser at the low end", () => {
    const s = karrasSigmas(0.03, 14.6, 10);
    assert.equal(s.length, 10);
    assert.ok(Math.abs(s[0]! - 14.6) < 1e-12 && Math.abs(s[9]! - 0.03) < 1e-12);
    for (let i = 1; i < 9; i++) assert.ok(s[i - 1]! - s[i]! > s[i]! - s[i + 1]!);
    assert.deepEqual(appendZero([2, 1]), [2, 1, 0]);
  });

  it("getAncestralStep splits the variance: sigma_down^2 + sigma_up^2 = sigma_to^2", () => {
    for (const [from, to, eta] of [
      [10, 5, 1],
      [1, 0.3, 0.5],
      [2, 0, 1],
      [3, 1, 0],
    ] as const) {
      const { sigmaDown, sigmaUp } = getAncestralStep(from, to, eta);
      assert.ok(Math.abs(sigmaDown ** 2 + sigmaUp ** 2 - to ** 2) < 1e-12);
      if (eta === 0) assert.equal(sigmaUp, 0);
    }
  });

  it("LMS coefficients integrate polynomials exactly", () => {
    // the weights of order k reproduce the integral of any polynomial of degree < k through the nodes
    const sigmas = [5, 3, 2, 1.2, 0.5];
    const i = 3;
    const f = (s: number) => 1 + 2 * s - s * s + 0.5 * s ** 3;
    const F3 = (s: number) => s + s * s - s ** 3 / 3 + s ** 4 / 8;
    const approx = [0, 1, 2, 3].reduce(
      (acc, j) => acc + lmsCoefficient(4, sigmas, i, j) * f(sigmas[i - j]!),
      0,
    );
    assert.ok(Math.abs(approx - (F3(sigmas[i + 1]!) - F3(sigmas[i]!))) < 1e-12);
  });

  it("sigmaToT inverts the training sigmas", () => {
    const sched = new EulerDiscreteScheduler(SD15_CONFIG);
    const logSigmas = trainSigmas(sched.alphasCumprod).map((s) => Math.fround(Math.log(s)));
    const train = trainSigmas(sched.alphasCumprod);
    for (const t of [0, 1, 250, 500, 998, 999]) assert.equal(sigmaToT(train[t]!, logSigmas), t);
    const mid = Math.exp((Math.log(train[100]!) + Math.log(train[101]!)) / 2);
    assert.ok(Math.abs(sigmaToT(mid, logSigmas) - 100.5) < 1e-4);
  });
});
