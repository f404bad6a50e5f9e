// The web app's wording of the errors it meets: each kind the issue names (no WebGPU, out of GPU memory, a
// checkpoint of an unknown family, a LoRA for another family) and the others become a sentence with what to do.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeError } from "../../web/app/errors.js";

const named = (name: string, message: string) => Object.assign(new Error(message), { name });

describe("web app: error messages", () => {
  it("words each kind of error for the page", () => {
    const cases: [Error, string, RegExp][] = [
      [named("AbortError", "cancelled"), "info", /^Cancelled\.$/],
      [
        named("DeviceError", "webgpu error on nvidia: Out of memory"),
        "error",
        /^The GPU ran out of memory .*choose the CPU/,
      ],
      [
        named("DeviceError", "webgpu: a buffer of 9 bytes is larger than this adapter binds (8 bytes, x)"),
        "error",
        /^The GPU ran out of memory/,
      ],
      [
        named("DeviceError", "webgpu device lost (destroyed: gone)"),
        "error",
        /^WebGPU is not usable here .*Choose the CPU/,
      ],
      [
        named("CheckpointError", "x.safetensors: expected an original Stable Diffusion checkpoint"),
        "error",
        /^This model cannot be loaded\. x\.safetensors: expected/,
      ],
      [
        named("LoraMismatchError", 'LoRA "a" does not fit the loaded model'),
        "error",
        /^This LoRA cannot be used with the loaded model\. LoRA "a" does not fit/,
      ],
      [named("ServerError", "steps must be <= 150"), "error", /^The server refused: steps must be <= 150$/],
      [
        new RangeError("Steps must be a whole number from 1 to 150"),
        "error",
        /^Steps must be a whole number/,
      ],
      [
        new TypeError("x is not a function"),
        "error",
        /^Something went wrong \(TypeError\): x is not a function$/,
      ],
    ];
    for (const [err, kind, text] of cases) {
      const got = describeError(err);
      assert.equal(got.kind, kind, err.message);
      assert.match(got.text, text);
    }
    assert.match(describeError("a string").text, /a string/);
  });
});
