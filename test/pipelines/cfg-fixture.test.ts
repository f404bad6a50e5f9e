// StableDiffusionPipeline against diffusers end to end: the tiny UNet / VAE / CLIP of ../shared/fixtures/models,
// the three classifier-free-guidance cases of pipeline/cfg (DDIM 7.5, DPM++ 2M 7.5, Euler 5 with a negative
// prompt): token ids, prompt embeddings, both guidance branches and the latents of every step, final latents,
// decoded image, float image (max-normalized 1e-4) and 8-bit image (+-1).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { Generator, loadSafetensors, noGrad, type Tensor } from "../../src/index.js";
import { AutoencoderKL, CLIPTextModel, CLIPTokenizer, UNet2DConditionModel } from "../../src/models/index.js";
import { clamp, narrow, permute } from "../../src/ops/index.js";
import { encodeSdPrompt, StableDiffusionPipeline } from "../../src/pipelines/index.js";
import { schedulerFromConfig } from "../../src/schedulers/index.js";
import { assertClose, fixturesDir, skipWithoutFixtures } from "../helpers.js";

const TOL = 1e-4;

interface CfgCase {
  id: string;
  scheduler: string;
  steps: number;
  guidance_scale: number;
  prompt: string;
  negative_prompt: string | null;
  scheduler_config: Record<string, unknown>;
  height: number;
  width: number;
  timesteps: number[];
  init_noise_sigma: number;
}

describe("StableDiffusionPipeline: pipeline/cfg fixture", { skip: skipWithoutFixtures() }, () => {
  let cases: CfgCase[];
  let seed: number;
  let io: Map<string, Tensor>;
  let parts: Omit<ConstructorParameters<typeof StableDiffusionPipeline>[0], "scheduler">;
  const get = (name: string): Tensor => {
    const t = io.get(name);
    assert.ok(t, `fixture tensor ${name} missing`);
    return t;
  };
  const pipeFor = (c: CfgCase) =>
    new StableDiffusionPipeline({
      ...parts,
      scheduler: schedulerFromConfig({ ...c.scheduler_config, _class_name: c.scheduler }),
    });

  before(async () => {
    const fx = fixturesDir()!;
    const m = join(fx, "models");
    const meta = JSON.parse(readFileSync(join(fx, "pipeline", "cfg.json"), "utf8"));
    cases = meta.cases;
    seed = meta.seed;
    io = (await loadSafetensors(join(fx, "pipeline", "cfg.safetensors"))).tensors;
    parts = {
      unet: await UNet2DConditionModel.fromPretrained(join(m, "tiny_unet")),
      vae: await AutoencoderKL.fromPretrained(join(m, "tiny_vae")),
      textEncoder: await CLIPTextModel.fromPretrained(join(m, "tiny_text_encoder")),
      tokenizer: await CLIPTokenizer.fromPretrained(join(m, "tiny_tokenizer")),
    };
  });

  it("token ids and prompt embeddings ([uncond; cond]) of every case", () => {
    for (const c of cases) {
      const negative = c.negative_prompt ?? "";
      const ids = parts.tokenizer.encodeBatch([negative, c.prompt]).inputIds;
      assert.deepEqual(
        Array.from(ids.toFloat32Array()),
        [
          ...Array.from(get(`${c.id}.uncond_input_ids`).toFloat32Array()),
          ...Array.from(get(`${c.id}.cond_input_ids`).toFloat32Array()),
        ],
        `${c.id} ids`,
      );
      const { embeds } = noGrad(() =>
        encodeSdPrompt(
          { tokenizer: parts.tokenizer, encoder: parts.textEncoder },
          c.prompt,
          negative,
          1,
          true,
        ),
      );
      assertClose(
        narrow(embeds, 0, 0, 1).toFloat32Array(),
        get(`${c.id}.uncond_embeds`).toFloat32Array(),
        TOL,
      );
      assertClose(narrow(embeds, 0, 1, 1).toFloat32Array(), get(`${c.id}.cond_embeds`).toFloat32Array(), TOL);
    }
  });

  for (const id of ["ddim_cfg7p5", "dpmpp_2m_cfg7p5", "euler_cfg5_neg"]) {
    it(`${id}: both branches and the latents of every step, final latents, decoded, image, image_uint8`, async () => {
      const c = cases.find((x) => x.id === id)!;
      const pipe = pipeFor(c);
      // record the UNet's output of each step (batch [uncond; cond])
      const outputs: Tensor[] = [];
      const forward = pipe.unet.forward.bind(pipe.unet);
      pipe.unet.forward = (...args) => {
        const out = forward(...args);
        outputs.push(out);
        return out;
      };
      const steps: Tensor[] = [];
      const seen: number[] = [];
      const result = await pipe.generate({
        prompt: c.prompt,
        negativePrompt: c.negative_prompt ?? undefined,
        steps: c.steps,
        guidanceScale: c.guidance_scale,
        width: c.width,
        height: c.height,
        latents: get(`${id}.initial_latents`),
        onProgress: (e) => {
          if (e.stage !== "sample") return;
          steps.push(e.sample!);
          seen.push(e.values!.t!);
        },
      });
      assert.deepEqual(seen, c.timesteps);
      const perStep = get(`${id}.latents_per_step`);
      const uncond = get(`${id}.noise_pred_uncond`);
      const cond = get(`${id}.noise_pred_cond`);
      assert.equal(steps.length, c.steps);
      assert.equal(outputs.length, c.steps);
      for (let i = 0; i < c.steps; i++) {
        assertClose(
          narrow(outputs[i]!, 0, 0, 1).toFloat32Array(),
          narrow(uncond, 0, i, 1).toFloat32Array(),
          TOL,
        );
        assertClose(
          narrow(outputs[i]!, 0, 1, 1).toFloat32Array(),
          narrow(cond, 0, i, 1).toFloat32Array(),
          TOL,
        );
        assertClose(
          steps[i]!.toFloat32Array(),
          narrow(perStep, 0, i + 1, 1).toFloat32Array(),
          TOL,
          `step ${i}`,
        );
      }
      assertClose(result.latents.toFloat32Array(), get(`${id}.final_latents`).toFloat32Array(), TOL, "final");
      const decoded = pipe.decodeLatents(result.latents);
      assertClose(decoded.toFloat32Array(), get(`${id}.decoded`).toFloat32Array(), TOL, "decoded");
      const image = noGrad(() => permute(clamp(decoded.mul(0.5).add(0.5), 0, 1), [0, 2, 3, 1]));
      assertClose(image.toFloat32Array(), get(`${id}.image`).toFloat32Array(), TOL, "image");
      const want = get(`${id}.image_uint8`).toFloat32Array();
      const got = result.images[0]!.data;
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++) {
        assert.ok(Math.abs(got[i]! - want[i]!) <= 1, `image_uint8[${i}]: ${got[i]} vs ${want[i]}`);
      }
      assert.equal(result.settings.guidanceScale, c.guidance_scale);
      assert.equal(result.settings.steps, c.steps);
    });
  }

  it("the seed path: one generator seeded as the fixture draws each case's initial latents in order", async () => {
    const generator = new Generator(seed);
    for (const c of cases) {
      const pipe = pipeFor(c);
      let first: Tensor | null = null;
      await pipe.generate({
        prompt: c.prompt,
        negativePrompt: c.negative_prompt ?? undefined,
        steps: c.steps,
        guidanceScale: c.guidance_scale,
        width: c.width,
        height: c.height,
        generator,
        onProgress: (e) => {
          if (e.stage === "sample" && e.step === 1) first = e.sample!;
        },
      });
      assertClose(
        first!.toFloat32Array(),
        narrow(get(`${c.id}.latents_per_step`), 0, 1, 1).toFloat32Array(),
        TOL,
      );
    }
    // and `seed` alone gives the first case's starting noise
    const c = cases[0]!;
    const r = await pipeFor(c).generate({
      prompt: c.prompt,
      steps: c.steps,
      guidanceScale: c.guidance_scale,
      seed,
      width: 16,
      height: 16,
    });
    assertClose(r.latents.toFloat32Array(), get(`${c.id}.final_latents`).toFloat32Array(), TOL);
    assert.equal(r.settings.seed, seed);
  });
});
