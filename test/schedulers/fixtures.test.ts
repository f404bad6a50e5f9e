// Every record of fixtures/schedulers/noise_schedules.json, timesteps.json and forward_process.json (diffusers
// 0.38 / PyTorch 1.13), compared with the README's tolerances.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DDPMScheduler, SCHEDULER_CLASSES, trainSigmas } from "../../src/schedulers/index.js";
import { assertClose, skipWithoutFixtures } from "../helpers.js";
import { fixtureNumber, fixtureTensor, readFixtureJson } from "./fixture-data.js";

const skip = skipWithoutFixtures();

function assertRelative(got: ArrayLike<number>, want: readonly unknown[], tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const w = fixtureNumber(want[i]);
    const g = got[i]!;
    if (w === g) continue; // covers Infinity and exact zeros
    const rel = Math.abs(g - w) / Math.abs(w);
    assert.ok(rel <= tol, `${what}[${i}]: got ${g}, want ${w} (relative error ${rel})`);
  }
}

const EULER_FAMILY = new Set([
  "EulerDiscreteScheduler",
  "EulerAncestralDiscreteScheduler",
  "HeunDiscreteScheduler",
  "LMSDiscreteScheduler",
]);

describe("schedulers fixtures", { skip }, () => {
  it("noise_schedules.json: betas, alphas_cumprod and train sigmas of every schedule", () => {
    const { schedules } = readFixtureJson("noise_schedules.json");
    assert.equal(schedules.length, 10);
    for (const s of schedules) {
      const sched = new DDPMScheduler(s.config);
      assertRelative(sched.betas, s.betas, 1e-5, `${s.name} betas`);
      assertRelative(sched.alphasCumprod, s.alphas_cumprod, 1e-5, `${s.name} alphas_cumprod`);
      assertRelative(trainSigmas(sched.alphasCumprod), s.train_sigmas, 1e-5, `${s.name} train_sigmas`);
    }
  });

  it("timesteps.json: timesteps, sigmas and init_noise_sigma of every table, and the error cases", () => {
    const { tables } = readFixtureJson("timesteps.json");
    let cases = 0;
    let errors = 0;
    for (const table of tables) {
      for (const [n, rec] of Object.entries<Record<string, unknown>>(table.by_num_inference_steps)) {
        const what = `${table.variant} ${table.timestep_spacing} N=${n}`;
        const sched = new SCHEDULER_CLASSES[table.class]!(table.config);
        if (rec.error) {
          assert.throws(() => sched.setTimesteps(Number(n)), /num_inference_steps/, what);
          errors++;
          continue;
        }
        sched.setTimesteps(Number(n));
        const want = rec.timesteps as number[];
        assert.equal(sched.timesteps.length, want.length, `${what}: number of timesteps`);
        if (EULER_FAMILY.has(table.class)) {
          want.forEach((w, i) => {
            const d = Math.abs(sched.timesteps[i]! - w);
            assert.ok(d <= 1e-3, `${what}: timestep ${i} is ${sched.timesteps[i]}, want ${w}`);
          });
        } else {
          assert.deepEqual(sched.timesteps, want, `${what}: timesteps`);
        }
        if (rec.sigmas) {
          assert.ok(sched.sigmas, `${what}: scheduler has no sigmas`);
          assertRelative(sched.sigmas!, rec.sigmas as number[], 1e-5, `${what} sigmas`);
        }
        const init = rec.init_noise_sigma as number;
        assert.ok(Math.abs(sched.initNoiseSigma - init) <= 1e-5 * init, `${what}: init_noise_sigma`);
        cases++;
      }
    }
    assert.equal(errors, 3);
    assert.ok(cases > 300, `only ${cases} cases`);
  });

  it("forward_process.json: add_noise and get_velocity of every case", () => {
    const fp = readFixtureJson("forward_process.json");
    const x0 = fixtureTensor(fp.tensors.original_samples);
    const noise = fixtureTensor(fp.tensors.noise);
    assert.equal(fp.cases.length, 4);
    for (const c of fp.cases) {
      const sched = new SCHEDULER_CLASSES[c.class]!(c.config);
      if (c.num_inference_steps) sched.setTimesteps(c.num_inference_steps);
      const noisy = sched.addNoise(x0, noise, c.timesteps);
      assertClose(noisy.toFloat32Array(), fixtureTensor(c.noisy).toFloat32Array(), 1e-5, `${c.id} noisy`);
      if (c.velocity) {
        const v = sched.getVelocity(x0, noise, c.timesteps);
        assertClose(v.toFloat32Array(), fixtureTensor(c.velocity).toFloat32Array(), 1e-5, `${c.id} velocity`);
      }
    }
  });
});
