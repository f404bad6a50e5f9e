// Properties that hold whatever diffusers does: an oracle noise prediction makes DDIM recover x0 exactly; every
// sampler converges to x0 on a Gaussian toy distribution with its exact denoiser, and the deterministic ones
// converge to the exact probability-flow ODE solution; seeded runs are bit-identical.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { F, Generator, randn, type Tensor } from "../../src/index.js";
import { DDIMScheduler, SAMPLERS, samplerFromName } from "../../src/schedulers/index.js";
import { assertClose } from "../helpers.js";
import { gaussianEpsModel, rms, runPipeline, SD15_CONFIG, seededNoise, sigmaAtTimestep } from "./toy.js";

const SHAPE = [1, 4, 16, 16];

describe("DDIM with an oracle noise prediction", () => {
  const x0 = F.mul(seededNoise(SHAPE, 3), 0.7);
  const eps = seededNoise(SHAPE, 4);

  it("predicts x0 exactly from x_t at every timestep", () => {
    for (const spacing of ["leading", "trailing", "linspace"]) {
      const ddim = DDIMScheduler.fromConfig({ ...SD15_CONFIG, timestep_spacing: spacing });
      ddim.setTimesteps(50);
      for (const t of ddim.timesteps) {
        const xt = ddim.addNoise(x0, eps, t);
        const { predOriginalSample } = ddim.step(eps, t, xt);
        assertClose(predOriginalSample!.toFloat32Array(), x0.toFloat32Array(), 2e-5, `${spacing} t=${t}`);
      }
    }
  });

  it("lands exactly on x0 when started from any timestep", () => {
    const ddim = DDIMScheduler.fromConfig({ ...SD15_CONFIG, set_alpha_to_one: true });
    ddim.setTimesteps(20);
    for (let start = 0; start < ddim.timesteps.length; start += 3) {
      let x = ddim.addNoise(x0, eps, ddim.timesteps[start]!);
      for (const t of ddim.timesteps.slice(start)) x = ddim.step(eps, t, x).prevSample;
      assertClose(x.toFloat32Array(), x0.toFloat32Array(), 2e-5, `start ${ddim.timesteps[start]}`);
    }
  });

  it("predicts x0 exactly from the oracle velocity (v-prediction)", () => {
    const ddim = DDIMScheduler.fromConfig({ ...SD15_CONFIG, prediction_type: "v_prediction" });
    ddim.setTimesteps(10);
    for (const t of ddim.timesteps) {
      const xt = ddim.addNoise(x0, eps, t);
      const v = ddim.getVelocity(x0, eps, t);
      const { predOriginalSample } = ddim.step(v, t, xt);
      assertClose(predOriginalSample!.toFloat32Array(), x0.toFloat32Array(), 2e-5, `t=${t}`);
    }
  });
});

describe("Gaussian toy distribution with its exact denoiser", () => {
  it("every named sampler converges to x0", () => {
    const s = 0.02;
    const mu = F.mul(seededNoise(SHAPE, 10), 0.5);
    for (const spec of SAMPLERS) {
      const sched = samplerFromName(spec.name, SD15_CONFIG);
      sched.setTimesteps(spec.name === "lcm" ? 4 : 25);
      const model = gaussianEpsModel(mu, s, sched.alphasCumprod);
      const x = runPipeline(sched, model, seededNoise(SHAPE, 11), new Generator().manualSeed(12));
      const err = rms(F.sub(x, mu));
      assert.ok(err < 0.06, `${spec.name}: rms(x - x0) = ${err}`);
    }
  });

  it("deterministic samplers converge to the exact probability-flow ODE solution", () => {
    // For N(mu, s^2), the PF-ODE keeps z = (x_ve - mu) / sqrt(s^2 + sigma^2) constant: the exact end point of a
    // run from sigma_T to sigma_final is mu + sqrt(s^2 + sigma_final^2) z (VE; VP samples are scaled by alpha).
    const s = 0.5;
    const mu = F.mul(seededNoise(SHAPE, 20), 0.5);
    const ve = new Set(["EulerDiscreteScheduler", "HeunDiscreteScheduler", "LMSDiscreteScheduler"]);
    for (const name of ["ddim", "pndm", "lms", "euler", "heun", "dpmpp-2m", "dpmpp-2m-karras", "unipc"]) {
      const errors = [10, 80].map((n) => {
        const sched = samplerFromName(name, SD15_CONFIG);
        sched.setTimesteps(n);
        const sigmaOf = sigmaAtTimestep(sched.alphasCumprod);
        const noise = seededNoise(SHAPE, 21);
        const x = runPipeline(sched, gaussianEpsModel(mu, s, sched.alphasCumprod), noise);
        const isVe = ve.has(sched.className);
        const sigmaT = sched.sigmas ? sched.sigmas[0]! : sigmaOf(sched.timesteps[0]!);
        let sigmaF: number;
        if (sched.sigmas) sigmaF = sched.sigmas[sched.sigmas.length - 1]!;
        else {
          const abar = (sched as unknown as { finalAlphaCumprod: number }).finalAlphaCumprod;
          sigmaF = Math.sqrt((1 - abar) / abar);
        }
        const xT = F.mul(noise, sched.initNoiseSigma);
        const xTve = isVe ? xT : F.mul(xT, Math.sqrt(1 + sigmaT * sigmaT));
        const ratio = Math.sqrt(s * s + sigmaF * sigmaF) / Math.sqrt(s * s + sigmaT * sigmaT);
        let exact: Tensor = F.add(mu, F.mul(F.sub(xTve, mu), ratio));
        if (!isVe) exact = F.div(exact, Math.sqrt(1 + sigmaF * sigmaF));
        return rms(F.sub(x, exact));
      });
      assert.ok(errors[1]! < 0.02, `${name}: error ${errors[1]} after 80 steps`);
      assert.ok(
        errors[1]! < 0.3 * errors[0]!,
        `${name}: error ${errors[0]} -> ${errors[1]} (10 -> 80 steps)`,
      );
    }
  });
});

describe("seeded randomness", () => {
  const stochastic = ["ddpm", "euler-a", "dpmpp-2m-sde", "dpmpp-3m-sde", "lcm"];

  it("the same generator seed gives bit-identical trajectories", () => {
    for (const name of stochastic) {
      const run = (seed: number) => {
        const sched = samplerFromName(name, SD15_CONFIG);
        sched.setTimesteps(8);
        const g = new Generator().manualSeed(seed);
        const noise = randn(SHAPE, { generator: g });
        return runPipeline(sched, (x) => F.mul(F.tanh(x), 0.5), noise, g).toFloat32Array();
      };
      const a = run(42);
      assert.deepEqual(run(42), a, `${name}: same seed`);
      assert.notDeepEqual(run(43), a, `${name}: different seed`);
    }
  });

  it("drawing with a generator equals passing the same draws as step noise", () => {
    for (const name of stochastic) {
      const make = () => {
        const sched = samplerFromName(name, SD15_CONFIG);
        sched.setTimesteps(6);
        return sched;
      };
      const model = (x: Tensor) => F.mul(F.tanh(x), 0.5);
      const init = seededNoise(SHAPE, 5);
      const a = runPipeline(make(), model, init, new Generator().manualSeed(7));
      // the same stream, drawn up front: one draw per step that uses noise
      const sched = make();
      const g = new Generator().manualSeed(7);
      let x = F.mul(init, sched.initNoiseSigma);
      sched.timesteps.forEach((t, i) => {
        const out = model(sched.scaleModelInput(x, t));
        const needsNoise =
          !(name === "ddpm" && t === 0) && !(name === "lcm" && i === sched.timesteps.length - 1);
        x = sched.step(out, t, x, needsNoise ? { noise: randn(SHAPE, { generator: g }) } : {}).prevSample;
      });
      assert.deepEqual(x.toFloat32Array(), a.toFloat32Array(), name);
    }
  });
});
