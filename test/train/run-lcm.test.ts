// A distillation run into a pipeline folder from a tiny teacher: the folder (student UNet with time_cond_proj_dim,
// LCMScheduler, the teacher's VAE / text encoder / tokenizer) generates at 1, 2 and 4 steps; a resumed run ends with
// the weights of an unbroken one; teacher folders that cannot be distilled are refused.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { UNet2DConditionModel } from "../../src/models/unet/unet-2d-condition.js";
import { applyLora, loadLora } from "../../src/pipelines/lora.js";
import { StableDiffusionPipeline } from "../../src/pipelines/stable-diffusion.js";
import { noGrad } from "../../src/tensor/autograd.js";
import { readTrainerState } from "../../src/train/checkpoint.js";
import { LCM_LORA_FILE, trainLcm } from "../../src/train/run-lcm.js";
import { withEmaWeights } from "../../src/train/trainer-base.js";
import { randomTensor } from "../helpers.js";
import { fewEmoji, writeTinyTeacher } from "./lcm-teacher.js";

const set = fewEmoji(8);
const train = { steps: 4, batchSize: 4, seed: 2 };

let dir: string;
let teacher: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-lcm-"));
  teacher = join(dir, "teacher");
  mkdirSync(teacher);
  await writeTinyTeacher(teacher);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function weightsOf(path: string): Promise<Map<string, number[]>> {
  const { tensors } = await loadSafetensors(path);
  return new Map([...tensors].map(([k, t]) => [k, Array.from(t.toFloat32Array())]));
}

describe("trainLcm", () => {
  it("writes an LCM pipeline folder that generates at 1, 2 and 4 steps; a resumed run equals an unbroken one", async () => {
    const full = join(dir, "full");
    const r = await trainLcm({ outDir: full, data: set, teacherFrom: teacher, train, sampleEvery: 2 });
    assert.equal(r.stopped, false);
    for (const part of [
      "model_index.json",
      "unet",
      "vae",
      "text_encoder",
      "tokenizer",
      "scheduler",
      "teacher_unet",
    ])
      assert.ok(existsSync(join(full, part)), part);
    for (const step of ["000002", "000004"]) assert.ok(existsSync(join(full, "samples", `step-${step}.png`)));
    const index = JSON.parse(readFileSync(join(full, "model_index.json"), "utf8"));
    assert.deepEqual(index.scheduler, ["diffusers", "LCMScheduler"]);
    const sched = JSON.parse(readFileSync(join(full, "scheduler", "scheduler_config.json"), "utf8"));
    assert.equal(sched._class_name, "LCMScheduler");
    assert.equal(sched.original_inference_steps, 50);
    assert.equal(sched.prediction_type, "v_prediction");
    assert.equal(sched.beta_schedule, "squaredcos_cap_v2");
    const unet = JSON.parse(readFileSync(join(full, "unet", "config.json"), "utf8"));
    assert.equal(unet.time_cond_proj_dim, 256);

    const pipe = await StableDiffusionPipeline.fromPretrained(full);
    assert.equal(pipe.scheduler.className, "LCMScheduler");
    assert.equal(pipe.defaultSampler, "lcm");
    for (const steps of [1, 2, 4]) {
      const out = await pipe.generate({ prompt: "red heart", steps, guidanceScale: 3, seed: 0 });
      assert.equal(out.images[0]!.width, 32);
      assert.equal(out.settings.sampler, "lcm");
    }

    const parts = join(dir, "parts");
    const stop = new AbortController();
    const first = await trainLcm({
      outDir: parts,
      data: set,
      teacherFrom: teacher,
      train,
      sampleEvery: 0,
      signal: stop.signal,
      onProgress: (e) => {
        if (e.stage === "train" && e.step === 2) stop.abort();
      },
    });
    assert.equal(first.stopped, true);
    assert.equal(readTrainerState(join(parts, "checkpoint")).step, 2);
    const resumed = await trainLcm({ outDir: parts, data: set, train, resumeFrom: parts, sampleEvery: 0 });
    assert.equal(resumed.trainer.step, 4);
    for (const file of ["model.safetensors", "ema.safetensors"])
      assert.deepEqual(
        await weightsOf(join(parts, "checkpoint", file)),
        await weightsOf(join(full, "checkpoint", file)),
      );
    assert.deepEqual(resumed.trainer.losses, r.trainer.losses);
  });

  it("an LCM-LoRA run writes a kohya file that the package's loader puts on the teacher as trained; it resumes", async () => {
    const out = join(dir, "lcm-lora");
    const r = await trainLcm({
      outDir: out,
      data: set,
      teacherFrom: teacher,
      train,
      lora: { rank: 4 },
      sampleEvery: 4,
    });
    assert.ok(existsSync(join(out, "samples", "step-000004.png")));
    const sched = JSON.parse(readFileSync(join(out, "scheduler", "scheduler_config.json"), "utf8"));
    assert.equal(sched._class_name, "LCMScheduler");
    const lora = await loadLora(join(out, LCM_LORA_FILE));
    assert.equal(lora.format, "kohya");
    assert.equal(lora.metadata?.diffuse_base_model, "teacher");
    assert.match(lora.metadata?.ss_training_comment ?? "", /^diffuse train lcm --lora 4 /);
    assert.equal(lora.entries.length, r.trainer.lora!.layers.length);
    // the teacher as loaded by a user, with the file applied = the trainer's adapted teacher with the EMA weights
    const x = randomTensor([2, 4, 8, 8], 1);
    const context = randomTensor([2, 77, 256], 2);
    const want = await withEmaWeights(r.trainer, () =>
      noGrad(() => r.trainer.unet.call(x, [999, 39], context).toFloat32Array()),
    );
    const unet = await UNet2DConditionModel.fromPretrained(join(teacher, "unet"));
    const plain = noGrad(() => unet.call(x, [999, 39], context).toFloat32Array());
    applyLora({ unet }, lora);
    const got = noGrad(() => unet.call(x, [999, 39], context).toFloat32Array());
    let err = 0;
    let size = 0;
    let moved = 0;
    for (let i = 0; i < want.length; i++) {
      err = Math.max(err, Math.abs(got[i]! - want[i]!));
      size = Math.max(size, Math.abs(want[i]!));
      moved = Math.max(moved, Math.abs(plain[i]! - want[i]!));
    }
    assert.ok(err <= 1e-5 * size, `max |loaded - trained| ${err} (output max ${size})`);
    assert.ok(moved > 1e-3 * size, "the LoRA changes the teacher's output");
    // the run folder is also a pipeline: the teacher with the LoRA merged, LCMScheduler, no guidance by default
    const fused = await StableDiffusionPipeline.fromPretrained(out);
    assert.equal(fused.defaultSampler, "lcm");
    assert.equal(fused.defaultGuidance, 1);
    const merged = noGrad(() => fused.unet.call(x, [999, 39], context).toFloat32Array());
    let mergedErr = 0;
    for (let i = 0; i < want.length; i++) mergedErr = Math.max(mergedErr, Math.abs(merged[i]! - want[i]!));
    assert.ok(mergedErr <= 1e-5 * size, `max |fused - trained| ${mergedErr} (output max ${size})`);
    const image = await fused.generate({ prompt: "red heart", seed: 0 });
    assert.deepEqual([image.settings.guidanceScale, image.settings.steps], [1, 4]);

    const parts = join(dir, "lcm-lora-parts");
    const stop = new AbortController();
    await trainLcm({
      outDir: parts,
      data: set,
      teacherFrom: teacher,
      train,
      lora: { rank: 4 },
      sampleEvery: 0,
      signal: stop.signal,
      onProgress: (e) => {
        if (e.stage === "train" && e.step === 2) stop.abort();
      },
    });
    await assert.rejects(
      trainLcm({ outDir: parts, data: set, train, resumeFrom: parts, lora: { rank: 8 } }),
      /is an LCM-LoRA run of rank 4, not an LCM-LoRA of rank 8/,
    );
    const resumed = await trainLcm({ outDir: parts, data: set, train, resumeFrom: parts, sampleEvery: 0 });
    assert.ok(resumed.trainer.lora);
    assert.deepEqual(resumed.trainer.losses, r.trainer.losses);
    assert.deepEqual(await weightsOf(join(parts, LCM_LORA_FILE)), await weightsOf(join(out, LCM_LORA_FILE)));
  });

  it("refuses a missing teacher, a teacher without a text encoder or UNet, the teacher folder as output, bad options", async () => {
    const run = (teacherFrom: string, outDir = join(dir, "bad")) =>
      trainLcm({ outDir, data: set, teacherFrom, train });
    await assert.rejects(run(join(dir, "nowhere")), /teacher folder .*nowhere not found/);
    for (const part of ["text_encoder", "unet"]) {
      const partial = join(dir, `no-${part}`);
      mkdirSync(partial);
      await writeTinyTeacher(partial, part);
      await assert.rejects(
        run(partial),
        new RegExp(`has no ${part}/.*distillation needs a full text-to-image folder`),
      );
    }
    await assert.rejects(run(teacher, teacher), /is the teacher folder; write the student elsewhere/);
    // options are checked before anything is copied or encoded
    const inverted = join(dir, "inverted");
    await assert.rejects(
      trainLcm({ outDir: inverted, data: set, teacherFrom: teacher, train: { ...train, wMin: 5, wMax: 1 } }),
      /the guidance range is inverted: wMin 5 > wMax 1/,
    );
    await assert.rejects(
      trainLcm({ outDir: inverted, data: set, teacherFrom: teacher, train: { ...train, skip: 30 } }),
      /dividing num_train_timesteps 1000/,
    );
    assert.ok(!existsSync(inverted));
    await assert.rejects(
      trainLcm({ outDir: join(dir, "bad"), data: set, train, resumeFrom: teacher }),
      /no checkpoint in/,
    );
  });
});
