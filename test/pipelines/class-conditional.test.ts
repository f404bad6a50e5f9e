import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { UNet2DModel } from "../../src/models/unet/unet-2d.js";
import { add, clamp, mul, sub } from "../../src/ops/index.js";
import { generateClassImages, loadClassConditionalPipeline } from "../../src/pipelines/class-conditional.js";
import { saveClassConditionalPipeline } from "../../src/pipelines/class-conditional-save.js";
import { type GuidanceInterval, timestepSigma } from "../../src/pipelines/guidance.js";
import { DDIMScheduler } from "../../src/schedulers/ddim.js";
import { DDPMScheduler } from "../../src/schedulers/ddpm.js";
import { samplerFromName } from "../../src/schedulers/samplers.js";
import { noGrad } from "../../src/tensor/autograd.js";
import { randn } from "../../src/tensor/create.js";
import { Generator } from "../../src/tensor/generator.js";
import { TINY_UNET, tinyUNet } from "../train/tiny.js";

const unet = tinyUNet(3);
const ddpmConfig = { ...new DDPMScheduler({}).config, _class_name: "DDPMScheduler" };
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-cc-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("generateClassImages", () => {
  it("mixes one batched null-class + cond UNet call as e_u + g (e_c - e_u) (one DDIM step, checked by hand)", async () => {
    const g = 2.5;
    const out = await generateClassImages(unet, new DDIMScheduler(ddpmConfig), {
      classLabels: [4, 7],
      guidanceScale: g,
      steps: 1,
      seed: 11,
    });
    const ddim = new DDIMScheduler(ddpmConfig);
    ddim.setTimesteps(1);
    const t = ddim.timesteps[0]!;
    const x = randn([2, 1, 32, 32], { generator: new Generator(11) });
    const want = noGrad(() => {
      const ec = unet.call(x, t, [4, 7]);
      const eu = unet.call(x, t, [10, 10]);
      const e = add(eu, mul(sub(ec, eu), g));
      return clamp(ddim.step(e, t, x).prevSample, -1, 1);
    });
    assert.deepEqual(out.shape, [2, 1, 32, 32]);
    const a = out.toFloat32Array();
    const b = want.toFloat32Array();
    let err = 0;
    for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
    assert.ok(err < 1e-5, `max difference ${err}`);
  });

  it("runs with every scheduler class through the scaleModelInput / step protocol, in [-1, 1]", async () => {
    for (const name of [
      "ddpm",
      "ddim",
      "pndm",
      "lms",
      "euler",
      "euler-a",
      "heun",
      "dpmpp-2m",
      "dpmpp-2m-sde",
      "unipc",
    ]) {
      const events: number[] = [];
      const x = await generateClassImages(unet, samplerFromName(name, ddpmConfig), {
        classLabels: [1],
        steps: 3,
        seed: 0,
        onProgress: (e) => events.push(e.step),
      });
      const v = x.toFloat32Array();
      assert.ok(
        v.every((p) => Number.isFinite(p) && p >= -1 && p <= 1),
        name,
      );
      assert.equal(events.at(-1), events.length, `${name}: progress counts every model call`);
    }
  });

  it("is reproducible from a seed or a generator, and guidance <= 1 needs no null class", async () => {
    const a = await generateClassImages(unet, samplerFromName("euler-a", ddpmConfig), {
      classLabels: [2, 3],
      steps: 2,
      seed: 9,
    });
    const b = await generateClassImages(unet, samplerFromName("euler-a", ddpmConfig), {
      classLabels: [2, 3],
      steps: 2,
      generator: new Generator(9),
    });
    assert.deepEqual(a.toFloat32Array(), b.toFloat32Array());
    const c = await generateClassImages(unet, samplerFromName("euler-a", ddpmConfig), {
      classLabels: [2, 3],
      steps: 2,
      seed: 10,
    });
    assert.notDeepEqual(a.toFloat32Array(), c.toFloat32Array());
    const one = await generateClassImages(unet, samplerFromName("ddim", ddpmConfig), {
      classLabels: [5],
      steps: 2,
      guidanceScale: 1,
    });
    assert.deepEqual(one.shape, [1, 1, 32, 32]);
  });

  it("guidance interval: guided steps run [null; cond], the others the conditional branch alone", async () => {
    const run = async (opts: { guidanceScale?: number; guidanceInterval?: GuidanceInterval }) => {
      const batches: number[] = [];
      const labelBatches: unknown[] = [];
      // spy on the model's own calls (an Object.create copy would lose the Module's private fields)
      const call = unet.call;
      unet.call = (x, t, labels) => {
        batches.push(x.shape[0]!);
        labelBatches.push(labels);
        return call.call(unet, x, t, labels);
      };
      try {
        const x = await generateClassImages(unet, samplerFromName("dpmpp-2m", ddpmConfig), {
          classLabels: [2, 5],
          steps: 4,
          seed: 3,
          ...opts,
        });
        return { x: x.toFloat32Array(), batches, labels: labelBatches };
      } finally {
        delete (unet as { call?: unknown }).call;
      }
    };
    const everyStep = await run({ guidanceScale: 3 });
    assert.deepEqual(everyStep.batches, [4, 4, 4, 4]);
    assert.deepEqual(
      everyStep.labels[0],
      [10, 10, 2, 5],
      "the null class first, as diffusers' [uncond; cond]",
    );
    const weak = await run({ guidanceScale: 0.5 });
    assert.deepEqual(weak.batches, [2, 2, 2, 2], "guidance <= 1 runs no guided batch (diffusers)");
    assert.deepEqual(weak.x, (await run({ guidanceScale: 1 })).x);
    const all = await run({ guidanceScale: 3, guidanceInterval: { sigmaMin: 0, sigmaMax: Infinity } });
    assert.deepEqual(all.x, everyStep.x, "an interval holding every sigma is no interval");
    const none = await run({ guidanceScale: 3, guidanceInterval: { sigmaMin: 1e6, sigmaMax: 2e6 } });
    assert.deepEqual(none.batches, [2, 2, 2, 2]);
    assert.deepEqual(none.x, (await run({ guidanceScale: 1 })).x, "no step guided = the conditional model");
    // dpmpp-2m, 4 steps, leading spacing: timesteps 800, 600, 400, 200
    const sampler = samplerFromName("dpmpp-2m", ddpmConfig);
    sampler.setTimesteps(4);
    const sigmas = sampler.timesteps.map((t) => timestepSigma(sampler, t));
    const mid = await run({
      guidanceScale: 3,
      guidanceInterval: { sigmaMin: sigmas[2]!, sigmaMax: sigmas[1]! },
    });
    assert.deepEqual(mid.batches, [2, 4, 2, 2], "only the step with sigma in (lo, hi] is guided");
    await assert.rejects(
      generateClassImages(unet, sampler, {
        classLabels: [1],
        guidanceInterval: { sigmaMin: 2, sigmaMax: 1 },
      }),
      /sigmaMin < sigmaMax/,
    );
  });

  it("rejects labels outside the classes, the null class itself, a negative guidance and an aborted signal", async () => {
    const s = samplerFromName("ddim", ddpmConfig);
    await assert.rejects(generateClassImages(unet, s, { classLabels: [10] }), /classes 0\.\.9/);
    await assert.rejects(generateClassImages(unet, s, { classLabels: [-1] }), /out of range/);
    await assert.rejects(generateClassImages(unet, s, { classLabels: [] }), /empty/);
    await assert.rejects(
      generateClassImages(unet, s, { classLabels: [0], guidanceScale: -1 }),
      /guidanceScale must be a finite number >= 0, got -1/,
    );
    const plain = new UNet2DModel({ ...TINY_UNET, num_class_embeds: null }, { skipInit: true });
    await assert.rejects(generateClassImages(plain, s, { classLabels: [0] }), /not class-conditional/);
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(
      generateClassImages(unet, s, { classLabels: [0], signal: controller.signal }),
      /stop/,
    );
  });
});

describe("class-conditional pipeline folders", () => {
  it("save and load round-trip the weights, the UNet config and the scheduler config", async () => {
    const out = join(dir, "pipe");
    await saveClassConditionalPipeline(out, unet, { ...ddpmConfig, prediction_type: "v_prediction" });
    const index = JSON.parse(readFileSync(join(out, "model_index.json"), "utf8"));
    assert.equal(index._class_name, "ClassConditionalPipeline");
    assert.deepEqual(index.scheduler, ["diffusers", "DDPMScheduler"]);
    const loaded = await loadClassConditionalPipeline(out);
    assert.equal(loaded.scheduler.className, "DDPMScheduler");
    assert.equal(loaded.scheduler.config.prediction_type, "v_prediction");
    assert.deepEqual(loaded.unet.config.block_out_channels, TINY_UNET.block_out_channels);
    const want = unet.stateDict();
    for (const [k, t] of loaded.unet.stateDict()) {
      assert.deepEqual(t.toFloat32Array(), want.get(k)!.toFloat32Array(), k);
    }
  });

  it("stores float16 when asked", async () => {
    const out = join(dir, "pipe16");
    await saveClassConditionalPipeline(out, unet, ddpmConfig, { dtype: "float16" });
    const loaded = await loadClassConditionalPipeline(out);
    const w = loaded.unet.conv_in.weight.toFloat32Array();
    const src = unet.conv_in.weight.toFloat32Array();
    assert.ok(w.every((v, i) => Math.abs(v - src[i]!) <= 1e-3 * Math.max(1, Math.abs(src[i]!))));
  });

  it("keep a default guidance interval in model_index.json (null = no upper bound); refuse a broken one", async () => {
    const out = join(dir, "interval");
    await saveClassConditionalPipeline(out, unet, ddpmConfig, {
      guidanceInterval: { sigmaMin: 0.5, sigmaMax: Infinity },
    });
    const index = JSON.parse(readFileSync(join(out, "model_index.json"), "utf8"));
    assert.deepEqual(index.guidance_interval, [0.5, null]);
    assert.deepEqual((await loadClassConditionalPipeline(out)).guidanceInterval, {
      sigmaMin: 0.5,
      sigmaMax: Infinity,
    });
    const plain = join(dir, "no-interval");
    await saveClassConditionalPipeline(plain, unet, ddpmConfig);
    assert.equal((await loadClassConditionalPipeline(plain)).guidanceInterval, undefined);
    for (const bad of [[2, 1], "0,2", [0]]) {
      writeFileSync(join(out, "model_index.json"), JSON.stringify({ ...index, guidance_interval: bad }));
      await assert.rejects(loadClassConditionalPipeline(out), /guidance_interval|sigmaMin < sigmaMax/);
    }
  });

  it("refuses a folder whose model_index.json names another pipeline", async () => {
    const out = join(dir, "sd");
    await saveClassConditionalPipeline(out, unet, ddpmConfig);
    writeFileSync(
      join(out, "model_index.json"),
      JSON.stringify({ _class_name: "StableDiffusionPipeline", unet: ["diffusers", "UNet2DConditionModel"] }),
    );
    await assert.rejects(loadClassConditionalPipeline(out), /not a class-conditional UNet2DModel pipeline/);
  });
});
