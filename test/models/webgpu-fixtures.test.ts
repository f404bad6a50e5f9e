// The fixture models on WebGPU: the tiny UNet (the four unet_io cases), VAE (encode, decode), CLIP text encoder,
// a LoRA (merged and as an adapter) and the three classifier-free-guidance pipeline cases, against diffusers'
// numbers with the fixtures' tolerance (max-normalized 1e-4, float32); the UNet in float16 within 1e-2.
// Skips without fixtures or without a WebGPU adapter (Mesa's lavapipe or SwiftShader serve on CPU-only machines).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { initWebGpu } from "../../src/backend/webgpu/index.js";
import { loadSafetensors, noGrad, type Tensor } from "../../src/index.js";
import { AutoencoderKL, CLIPTextModel, CLIPTokenizer, UNet2DConditionModel } from "../../src/models/index.js";
import * as F from "../../src/ops/index.js";
import { StableDiffusionPipeline } from "../../src/pipelines/index.js";
import { applyLora, loadLora } from "../../src/pipelines/lora.js";
import { schedulerFromConfig } from "../../src/schedulers/index.js";
import { assertClose, fixturesDir, skipWithoutFixtures } from "../helpers.js";

const TOL = 1e-4;
const HALF_TOL = 1e-2;

let skip: string | false = skipWithoutFixtures();
if (!skip) {
  try {
    await initWebGpu();
  } catch (e) {
    skip = `no WebGPU adapter: ${(e as Error).message}`;
  }
}

const gpu = (t: Tensor): Tensor => F.toDevice(t, "webgpu");
async function check(got: Tensor, want: Tensor, what: string, tol = TOL): Promise<void> {
  assert.equal(got.device, "webgpu", `${what} device`);
  assert.deepEqual(got.shape, want.shape, `${what} shape`);
  assertClose(await got.toFloat32ArrayAsync(), want.toFloat32Array(), tol, what);
}

describe("fixture models on WebGPU", { skip }, () => {
  const dir = () => join(fixturesDir()!, "models");
  let unetIo: Map<string, Tensor>;
  const io = (name: string): Tensor => {
    const t = unetIo.get(name);
    assert.ok(t, `fixture tensor ${name} missing`);
    return t;
  };

  before(async () => {
    unetIo = (await loadSafetensors(join(dir(), "unet_io.safetensors"))).tensors;
  });

  it("UNet: the four unet_io cases (float32)", async () => {
    const unet = await UNet2DConditionModel.fromPretrained(join(dir(), "tiny_unet"), { device: "webgpu" });
    const sample = gpu(io("sample"));
    const outs = noGrad(() => ({
      a: unet.call(sample, 500, gpu(io("ehs1"))),
      b: unet.call(sample, [10, 981], gpu(io("ehs1"))),
      c: unet.call(sample, 500, gpu(io("ehs2"))),
      d: unet.call(sample, 623.4567, gpu(io("ehs1"))),
    }));
    for (const [k, v] of Object.entries(outs)) await check(v, io(`out_${k}`), `out_${k}`);
  });

  it("UNet in float16 (half weights on the GPU) within 1e-2 of float32 diffusers", async () => {
    const unet = await UNet2DConditionModel.fromPretrained(join(dir(), "tiny_unet"), {
      device: "webgpu",
      dtype: "float16",
    });
    assert.equal(unet.parameters()[0]!.dtype, "float16");
    const out = noGrad(() => unet.call(gpu(io("sample")), 500, gpu(io("ehs1"))));
    await check(out, io("out_a"), "out_a (float16)", HALF_TOL);
  });

  it("VAE: encode and decode", async () => {
    const vae = await AutoencoderKL.fromPretrained(join(dir(), "tiny_vae"), { device: "webgpu" });
    const v = (await loadSafetensors(join(dir(), "vae_io.safetensors"))).tensors;
    const dist = noGrad(() => vae.encode(gpu(v.get("image")!)).latentDist);
    await check(dist.mean, v.get("latent_mean")!, "latent_mean");
    await check(dist.logvar, v.get("latent_logvar")!, "latent_logvar");
    await check(
      noGrad(() => vae.decode(gpu(v.get("latent_sample")!))),
      v.get("decoded_sample")!,
      "decoded",
    );
  });

  it("CLIP text encoder: last hidden state and pooled output", async () => {
    const te = await CLIPTextModel.fromPretrained(join(dir(), "tiny_text_encoder"), { device: "webgpu" });
    const c = (await loadSafetensors(join(dir(), "clip_io.safetensors"))).tensors;
    const out = noGrad(() => te.call(c.get("input_ids")!));
    await check(out.lastHiddenState, c.get("last_hidden_state")!, "last_hidden_state");
    await check(out.pooledOutput, c.get("pooler_output")!, "pooler_output");
  });

  it("LoRA (peft file, scale 1), merged and as an adapter", async () => {
    const unet = await UNet2DConditionModel.fromPretrained(join(dir(), "tiny_unet"), { device: "webgpu" });
    const lora = await loadLora(join(fixturesDir()!, "lora", "lora_peft.safetensors"));
    const want = (await loadSafetensors(join(fixturesDir()!, "lora", "lora_io.safetensors"))).tensors;
    for (const mode of ["merge", "adapter"] as const) {
      const h = applyLora({ unet }, lora, { scale: 1, mode });
      await check(
        noGrad(() => unet.call(gpu(io("sample")), 500, gpu(io("ehs1")))),
        want.get("out_scale_1")!,
        `lora ${mode}`,
      );
      h.remove();
    }
  });

  describe("StableDiffusionPipeline: the pipeline/cfg cases", () => {
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
    }
    let cases: CfgCase[];
    let cfg: Map<string, Tensor>;
    let parts: Omit<ConstructorParameters<typeof StableDiffusionPipeline>[0], "scheduler">;
    before(async () => {
      const fx = fixturesDir()!;
      cases = JSON.parse(readFileSync(join(fx, "pipeline", "cfg.json"), "utf8")).cases;
      cfg = (await loadSafetensors(join(fx, "pipeline", "cfg.safetensors"))).tensors;
      const opts = { device: "webgpu" } as const;
      parts = {
        unet: await UNet2DConditionModel.fromPretrained(join(dir(), "tiny_unet"), opts),
        vae: await AutoencoderKL.fromPretrained(join(dir(), "tiny_vae"), opts),
        textEncoder: await CLIPTextModel.fromPretrained(join(dir(), "tiny_text_encoder"), opts),
        tokenizer: await CLIPTokenizer.fromPretrained(join(dir(), "tiny_tokenizer")),
      };
    });

    for (const id of ["ddim_cfg7p5", "dpmpp_2m_cfg7p5", "euler_cfg5_neg"]) {
      it(`${id}: final latents and image`, async () => {
        const c = cases.find((x) => x.id === id)!;
        const pipe = new StableDiffusionPipeline({
          ...parts,
          scheduler: schedulerFromConfig({ ...c.scheduler_config, _class_name: c.scheduler }),
        });
        const result = await pipe.generate({
          prompt: c.prompt,
          negativePrompt: c.negative_prompt ?? undefined,
          steps: c.steps,
          guidanceScale: c.guidance_scale,
          width: c.width,
          height: c.height,
          latents: cfg.get(`${id}.initial_latents`)!,
        });
        await check(result.latents, cfg.get(`${id}.final_latents`)!, "final latents");
        const want = cfg.get(`${id}.image_uint8`)!.toFloat32Array();
        const got = result.images[0]!.data;
        assert.equal(got.length, want.length);
        for (let i = 0; i < want.length; i++) {
          assert.ok(Math.abs(got[i]! - want[i]!) <= 1, `image_uint8[${i}]: ${got[i]} vs ${want[i]}`);
        }
      });
    }
  });
});
