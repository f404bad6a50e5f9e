// Config JSON with Python's bare non-finite numbers: read, written, and round-tripped unchanged.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfigJson, stringifyConfigJson } from "../../src/io/config-json.js";
import { DPMSolverMultistepScheduler } from "../../src/schedulers/index.js";

describe("config JSON", () => {
  it("writes -Infinity / NaN bare as diffusers does and reads them back", () => {
    const text = stringifyConfigJson(
      { lambda_min_clipped: -Infinity, a: [NaN, Infinity], s: "-Infinity" },
      2,
    );
    assert.match(text, /"lambda_min_clipped": -Infinity/);
    assert.match(text, /NaN,\s+Infinity/);
    assert.match(text, /"s": "-Infinity"/, "a string stays a string");
    assert.deepEqual(parseConfigJson(text), {
      lambda_min_clipped: "-Infinity",
      a: ["NaN", "Infinity"],
      s: "-Infinity",
    });
    assert.throws(() => parseConfigJson("{ not json"));
  });

  it("a scheduler config written and read keeps lambda_min_clipped; a null there means the default", () => {
    const s = new DPMSolverMultistepScheduler({ beta_schedule: "squaredcos_cap_v2" });
    const back = new DPMSolverMultistepScheduler(
      parseConfigJson(stringifyConfigJson(s.config)) as Record<string, unknown>,
    );
    assert.equal(back.config.lambda_min_clipped, Number.NEGATIVE_INFINITY);
    const fromNull = new DPMSolverMultistepScheduler({ ...JSON.parse(JSON.stringify(s.config)) });
    assert.equal(fromNull.config.lambda_min_clipped, Number.NEGATIVE_INFINITY);
    s.setTimesteps(6);
    fromNull.setTimesteps(6);
    assert.deepEqual([...fromNull.timesteps], [...s.timesteps]);
  });
});
