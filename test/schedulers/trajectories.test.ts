// Every whole sampling run of fixtures/schedulers/trajectories.json: the diffusers pipeline loop with the README's
// analytic model and the stored per-step noise; x, model inputs/outputs, predicted x0 and LCM's denoised are
// compared with max-normalized error <= 1e-4 per tensor.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { F, type Tensor, tensor } from "../../src/index.js";
import { SCHEDULER_CLASSES, type StepResult } from "../../src/schedulers/index.js";
import { maxNormalizedError, skipWithoutFixtures } from "../helpers.js";
import { fixtureTensor, readFixtureJson } from "./fixture-data.js";

const TOLERANCE = 1e-4;
const skip = skipWithoutFixtures();

/**
 * The README's model: float32(0.5 * tanh(x)) + float32(0.1 * cos(t / 100)), tanh in float32 and the cosine term
 * in float64 from the exact timestep value.
 */
function model(x: Tensor, t: number): Tensor {
  return F.add(F.mul(F.tanh(x), 0.5), Math.fround(0.1 * Math.cos(t / 100)));
}

/** Stacks per-step tensors and compares with a stored [S, ...] tensor (one max-normalized error per tensor). */
function assertStack(got: Tensor[], name: string, what: string): void {
  const want = fixtureTensor(name);
  assert.equal(got.length, want.shape[0], `${what}: number of entries`);
  const flat = new Float32Array(want.size);
  const per = want.size / got.length;
  got.forEach((t, i) => {
    flat.set(t.toFloat32Array(), i * per);
  });
  const err = maxNormalizedError(flat, want.toFloat32Array());
  assert.ok(err <= TOLERANCE, `${what}: max-normalized error ${err.toExponential(3)} > ${TOLERANCE}`);
}

describe("scheduler trajectories", { skip }, () => {
  it("reproduces every stored trajectory", () => {
    const { trajectories } = readFixtureJson("trajectories.json");
    assert.equal(trajectories.length, 98);
    const initial = fixtureTensor("initial_noise");
    const stepNoise = fixtureTensor("step_noise");
    for (const r of trajectories) {
      const what = r.id as string;
      const sched = new SCHEDULER_CLASSES[r.class]!(r.config);
      sched.setTimesteps(r.num_inference_steps);
      assert.equal(sched.timesteps.length, r.num_step_calls, `${what}: step calls`);
      sched.timesteps.forEach((t, i) => {
        assert.ok(
          Math.abs(t - r.timesteps[i]) <= 1e-3,
          `${what}: timestep ${i} is ${t}, want ${r.timesteps[i]}`,
        );
      });
      let x = F.mul(initial, sched.initNoiseSigma);
      const xs = [x];
      const inputs: Tensor[] = [];
      const outputs: Tensor[] = [];
      const results: StepResult[] = [];
      sched.timesteps.forEach((t, i) => {
        const xin = sched.scaleModelInput(x, t);
        const out = model(xin, t);
        // steps that drew no noise in diffusers get a NaN tensor: using it would poison the trajectory
        const noise = r.noise_drawn[i]
          ? F.select(stepNoise, 0, i)
          : tensor(new Float32Array(x.size).fill(Number.NaN), [...x.shape]);
        const res = sched.step(out, t, x, { noise, ...(r.step_kwargs as object) });
        x = res.prevSample;
        inputs.push(xin);
        outputs.push(out);
        results.push(res);
        xs.push(x);
      });
      assertStack(xs, r.tensors.x, `${what} x`);
      assertStack(outputs, r.tensors.model_output, `${what} model_output`);
      if (r.tensors.model_input) assertStack(inputs, r.tensors.model_input, `${what} model_input`);
      else
        assert.ok(
          r.model_input_equals_x && inputs.every((xin, i) => xin === xs[i]),
          `${what}: input unscaled`,
        );
      if (r.tensors.pred_original_sample) {
        const preds = results.map((res) => res.predOriginalSample!);
        assertStack(preds, r.tensors.pred_original_sample, `${what} pred_original_sample`);
      }
      if (r.tensors.denoised)
        assertStack(
          results.map((res) => res.denoised!),
          r.tensors.denoised,
          `${what} denoised`,
        );
    }
  });
});
