// Real Stable Diffusion 1.5 shapes: ../shared/bench/sd15_down_block_0 (see its README) holds down_blocks.0 with
// random weights and diffusers' outputs. Building and loading it is quick and always checked; its forward pass
// (219 GFLOP) and the full-size UNets are opt-in: DIFFUSE_SLOW_TESTS=1 node scripts/run-tests.js sd15-down-block
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { loadSafetensors, noGrad, type Tensor } from "../../../src/index.js";
import {
  buildDownBlock,
  type CrossAttnDownBlock2D,
  loadWeights,
  planUNet,
  UNet2DConditionConfig,
  UNet2DConditionModel,
} from "../../../src/models/index.js";
import { assertClose, benchCasesDir } from "../../helpers.js";

const slow =
  process.env.DIFFUSE_SLOW_TESTS === "1"
    ? false
    : "set DIFFUSE_SLOW_TESTS=1 to run (219 GFLOP: ~6 s with the native backend, ~6 min on the reference one)";
const bench = benchCasesDir();
const caseDir = bench && join(bench, "sd15_down_block_0");

/** down_blocks.0 of UNet2DConditionConfig.sd15(), built as the UNet builds it. */
function sd15DownBlock0(): CrossAttnDownBlock2D {
  const cfg = UNet2DConditionConfig.sd15();
  return buildDownBlock(cfg, planUNet(cfg), 0, { skipInit: true }) as CrossAttnDownBlock2D;
}

describe("SD 1.5 down_blocks.0 (bench case)", { skip: bench ? false : "../shared/bench not found" }, () => {
  let block: CrossAttnDownBlock2D;

  before(async () => {
    block = sd15DownBlock0().eval();
    await loadWeights(block, [join(caseDir!, "weights.safetensors")], {
      label: "down_blocks.0",
      renameKey: (k) => k.replace(/^down_blocks\.0\./, ""),
    });
  });

  it("has the real block's 10,524,480 parameters under diffusers' names", () => {
    assert.equal(block.numParameters(), 10_524_480);
    assert.deepEqual(
      block.stateDict().get("attentions.1.transformer_blocks.0.attn2.to_k.weight")!.shape,
      [320, 768],
    );
  });

  it("matches diffusers' outputs and skip states", { skip: slow }, async () => {
    const io = (await loadSafetensors(join(caseDir!, "io.safetensors"))).tensors;
    const get = (k: string): Tensor => io.get(k)!;
    const t0 = Date.now();
    const out = noGrad(() => block.call(get("hidden_states"), get("temb"), get("encoder_hidden_states")));
    console.log(`sd15 down_blocks.0 forward: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assertClose(out.hidden.toFloat32Array(), get("h").toFloat32Array(), 1e-4, "h");
    assert.equal(out.skips.length, 3);
    for (const [i, s] of out.skips.entries()) {
      assertClose(s.toFloat32Array(), get(`res${i}`).toFloat32Array(), 1e-4, `res${i}`);
    }
  });
});

describe("full-size UNets", { skip: slow }, () => {
  it("SD 1.5 and SD 2.1 have the released models' parameter counts and key counts", () => {
    const sd15 = new UNet2DConditionModel(UNet2DConditionConfig.sd15(), { skipInit: true });
    assert.equal(sd15.numParameters(), 859_520_964);
    assert.equal(sd15.stateDict().size, 686);
    const sd21 = new UNet2DConditionModel(UNet2DConditionConfig.sd21(), { skipInit: true });
    assert.equal(sd21.numParameters(), 865_910_724);
  });
});
