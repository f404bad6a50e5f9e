// The math of latent consistency distillation: the batched skip-step DDIM solver against DDIMScheduler's own step,
// the consistency function against LCMScheduler's `denoised` and its boundary condition f(x, 0) = x, the
// skipping-step pairs and the distances.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cat, mse_loss, narrow } from "../../src/ops/index.js";
import { DDIMScheduler } from "../../src/schedulers/ddim.js";
import { LCMScheduler } from "../../src/schedulers/lcm.js";
import {
  checkSkip,
  consistencyDistance,
  consistencyOutput,
  ddimSkipStep,
  timestepPairs,
} from "../../src/train/consistency.js";
import { assertClose, randomTensor } from "../helpers.js";

const SCHEDULES = [
  { beta_schedule: "squaredcos_cap_v2", prediction_type: "v_prediction" },
  { beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012, prediction_type: "epsilon" },
];

describe("latent consistency distillation math", () => {
  it("timestepPairs puts t_{n+k} on LCMScheduler's grid k - 1, 2k - 1, ... and t_n k below (0 at the end)", () => {
    assert.deepEqual(timestepPairs([0, 1, 49], 20), { start: [19, 39, 999], end: [0, 19, 979] });
    const lcm = new LCMScheduler({ original_inference_steps: 50 });
    lcm.setTimesteps(50);
    assert.deepEqual(
      [...lcm.timesteps].sort((a, b) => a - b),
      timestepPairs([...Array(50).keys()], 20).start,
    );
    assert.throws(
      () => checkSkip(30, 1000, "t"),
      /must be an integer in \[1, 1000\] dividing num_train_timesteps 1000/,
    );
    assert.throws(() => checkSkip(0, 1000, "t"), /got 0/);
    checkSkip(20, 1000, "t");
  });

  for (const schedule of SCHEDULES) {
    it(`the skip-step solver is DDIMScheduler's step, sample by sample (${schedule.prediction_type})`, () => {
      const k = 20;
      const indices = [0, 3, 17, 49];
      const pairs = timestepPairs(indices, k);
      const x = randomTensor([4, 4, 8, 8], 1);
      const output = randomTensor([4, 4, 8, 8], 2);
      // DDIM over the same grid: trailing spacing gives 999, 979, ..., 19 and a step of T / N = k; alpha-bar_0
      // after the last step, as the solver's t_n = 0
      const ddim = new DDIMScheduler({
        ...schedule,
        clip_sample: false,
        set_alpha_to_one: false,
        timestep_spacing: "trailing",
      });
      ddim.setTimesteps(1000 / k);
      const got = ddimSkipStep(output, x, pairs, ddim);
      const want = cat(
        pairs.start.map((t, i) => ddim.step(narrow(output, 0, i, 1), t, narrow(x, 0, i, 1)).prevSample),
        0,
      );
      assertClose(got.toFloat32Array(), want.toFloat32Array(), 1e-6);
    });

    it(`the consistency function is LCMScheduler's denoised, and f(x, 0) = x (${schedule.prediction_type})`, () => {
      const lcm = new LCMScheduler({ ...schedule, original_inference_steps: 50 });
      lcm.setTimesteps(4);
      const x = randomTensor([2, 4, 8, 8], 3);
      const output = randomTensor([2, 4, 8, 8], 4);
      const t = lcm.timesteps[1]!;
      const got = consistencyOutput(output, x, [t, t], lcm, 10);
      assertClose(got.toFloat32Array(), lcm.step(output, t, x).denoised!.toFloat32Array(), 1e-6);
      // the boundary condition: c_skip(0) = 1, c_out(0) = 0, whatever the network says
      const atZero = consistencyOutput(output, x, [0, 0], lcm, 10);
      assert.deepEqual(atZero.toFloat32Array(), x.toFloat32Array());
      // far from 0 the skip weight vanishes: f is the network's x0 estimate
      const high = consistencyOutput(output, x, [999, 0], lcm, 10);
      assert.notDeepEqual(narrow(high, 0, 0, 1).toFloat32Array(), narrow(x, 0, 0, 1).toFloat32Array());
      assert.deepEqual(narrow(high, 0, 1, 1).toFloat32Array(), narrow(x, 0, 1, 1).toFloat32Array());
    });
  }

  it("the distances: L2 is the MSE, pseudo-Huber is mean(sqrt(d^2 + c^2) - c)", () => {
    const a = randomTensor([2, 3], 5);
    const b = randomTensor([2, 3], 6);
    assert.equal(consistencyDistance(a, b, "l2", 0.001).item(), mse_loss(a, b).item());
    const av = a.toFloat32Array();
    const bv = b.toFloat32Array();
    const c = 0.1;
    let want = 0;
    for (let i = 0; i < av.length; i++) want += Math.sqrt((av[i]! - bv[i]!) ** 2 + c * c) - c;
    assert.ok(Math.abs(consistencyDistance(a, b, "huber", c).item() - want / av.length) < 1e-6);
  });
});
