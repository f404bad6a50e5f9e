// The latent consistency distillation trainer on a tiny teacher: the student starts as the teacher (zero guidance
// projection), the consistency loss of a fixed batch falls as it trains, and bad options are refused.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CLIPTextModel } from "../../src/models/clip/text-model.js";
import { CLIPTokenizer } from "../../src/models/clip/tokenizer.js";
import { AutoencoderKL } from "../../src/models/vae/autoencoder-kl.js";
import { LoraNetwork } from "../../src/nn/lora-network.js";
import { guidanceScaleEmbedding } from "../../src/pipelines/guidance.js";
import { LCMScheduler } from "../../src/schedulers/lcm.js";
import { noGrad } from "../../src/tensor/autograd.js";
import { tensor } from "../../src/tensor/create.js";
import { Generator } from "../../src/tensor/generator.js";
import {
  type LcmDistillOptions,
  LcmTrainer,
  resolveLcmOptions,
  studentFromTeacher,
} from "../../src/train/lcm-trainer.js";
import { unetLoraPaths } from "../../src/train/lora-targets.js";
import { lcmSchedulerConfig } from "../../src/train/run-lcm.js";
import { CaptionEncoder } from "../../src/train/text-latents.js";
import { encodeLatents } from "../../src/train/text-to-image-trainer.js";
import { randomTensor } from "../helpers.js";
import { fewEmoji, SHIPPED_EMOJI, tinyTeacher } from "./lcm-teacher.js";

const set = fewEmoji(4);

/** A trainer of a full student, or with `loraRank` of an LCM-LoRA on every linear and conv layer of the teacher. */
async function makeTrainer(opts: LcmDistillOptions, loraRank?: number): Promise<LcmTrainer> {
  const vae = await AutoencoderKL.fromPretrained(join(SHIPPED_EMOJI, "vae"));
  const textEncoder = await CLIPTextModel.fromPretrained(join(SHIPPED_EMOJI, "text_encoder"));
  const tokenizer = await CLIPTokenizer.fromPretrained(join(SHIPPED_EMOJI, "tokenizer"));
  const sched = JSON.parse(readFileSync(join(SHIPPED_EMOJI, "scheduler", "scheduler_config.json"), "utf8"));
  const teacher = tinyTeacher();
  const student = loraRank
    ? new LoraNetwork(teacher, unetLoraPaths(teacher, "all-linear+conv"), {
        rank: loraRank,
        generator: new Generator(5),
      })
    : studentFromTeacher(teacher);
  return new LcmTrainer(
    student,
    {
      teacher,
      scheduler: new LCMScheduler(lcmSchedulerConfig(sched, 20)),
      captions: new CaptionEncoder(textEncoder, tokenizer),
      set,
      latents: encodeLatents(vae, set),
    },
    opts,
  );
}

describe("LcmTrainer", () => {
  it("the student is the teacher plus a zero guidance projection: the same output for any guidance", () => {
    const teacher = tinyTeacher(3);
    const student = studentFromTeacher(teacher);
    assert.equal(student.config.time_cond_proj_dim, 256);
    assert.deepEqual(student.time_embedding.cond_proj!.weight.toFloat32Array(), new Float32Array(256 * 16));
    const x = randomTensor([2, 4, 8, 8], 1);
    const context = randomTensor([2, 5, 256], 2);
    noGrad(() => {
      const want = teacher.call(x, [999, 19], context).toFloat32Array();
      for (const w of [0, 2, 6.5]) {
        const got = student.call(x, [999, 19], context, {
          timestepCond: guidanceScaleEmbedding([w, w], 256),
        });
        assert.deepEqual(got.toFloat32Array(), want);
      }
    });
    assert.throws(
      () => studentFromTeacher(student),
      /already takes a guidance embedding \(time_cond_proj_dim 256\)/,
    );
  });

  it("the consistency loss of a fixed batch falls as the student trains", async () => {
    const trainer = await makeTrainer({ steps: 40, batchSize: 4, lr: 2e-3, warmupSteps: 0, seed: 1 });
    const moments = tensor(trainer.latents.moments, [4, 8, 8, 8]);
    const labels = [0, 1, 2, 3];
    // the same draws (latents, captions, timesteps, weights, noise) each time; the target network as trained
    const fixedLoss = () => {
      trainer.ema.copyTo(trainer.target!);
      return noGrad(() => trainer.consistencyLoss(moments, labels, new Generator(7)).item());
    };
    const before = fixedLoss();
    for (let i = 0; i < 40; i++) trainer.trainStep();
    const after = fixedLoss();
    assert.ok(Number.isFinite(before) && before > 0);
    assert.ok(after < 0.7 * before, `loss ${before} -> ${after}`);
    const losses = await trainer.readLosses();
    assert.equal(losses.length, 40);
  });

  it("an LCM-LoRA trains only its adapters: the teacher's weights stay, its step is computed without them", async () => {
    const trainer = await makeTrainer({ steps: 30, batchSize: 4, lr: 2e-3, warmupSteps: 0, seed: 1 }, 4);
    const lora = trainer.lora!;
    assert.equal(trainer.target, null);
    assert.equal(trainer.unet, trainer.teacher);
    assert.equal(trainer.unet.config.time_cond_proj_dim ?? null, null);
    const base = new Map([...trainer.teacher.stateDict()].map(([k, t]) => [k, t.toFloat32Array().slice()]));
    const x = randomTensor([2, 4, 8, 8], 1);
    const context = randomTensor([2, 77, 256], 2);
    const teacherOut = () => {
      lora.setScale(0);
      try {
        return noGrad(() => trainer.teacher.call(x, [999, 19], context).toFloat32Array());
      } finally {
        lora.setScale(1);
      }
    };
    const before = teacherOut();
    const moments = tensor(trainer.latents.moments, [4, 8, 8, 8]);
    const fixedLoss = () =>
      noGrad(() => trainer.consistencyLoss(moments, [0, 1, 2, 3], new Generator(7)).item());
    const lossBefore = fixedLoss();
    for (let i = 0; i < 30; i++) trainer.trainStep();
    const lossAfter = fixedLoss();
    assert.ok(lossAfter < 0.8 * lossBefore, `loss ${lossBefore} -> ${lossAfter}`);
    for (const [k, t] of trainer.teacher.stateDict()) assert.deepEqual(t.toFloat32Array(), base.get(k), k);
    assert.deepEqual(teacherOut(), before);
    // the adapters moved, so the adapted model differs from the teacher
    const adapted = noGrad(() => trainer.unet.call(x, [999, 19], context).toFloat32Array());
    assert.ok(adapted.some((v, i) => Math.abs(v - before[i]!) > 1e-4));
    assert.deepEqual(Object.keys(trainer.checkpointConfigs().lcmLora!).sort(), ["alpha", "paths", "rank"]);
  });

  it("refuses an LCM-LoRA on a UNet other than the teacher, or on a teacher with a guidance embedding", async () => {
    const trainer = await makeTrainer({ steps: 1, batchSize: 4 }, 2);
    const other = tinyTeacher(4);
    const net = new LoraNetwork(other, unetLoraPaths(other, "attn"), { rank: 2 });
    const parts = {
      teacher: trainer.teacher,
      scheduler: trainer.scheduler,
      captions: trainer.captions,
      set: trainer.set,
      latents: trainer.latents,
    };
    assert.throws(() => new LcmTrainer(net, parts, { steps: 1 }), /must be attached to the teacher UNet/);
    // a teacher that already takes a guidance embedding (an LCM student) is not one to distill an LCM-LoRA from
    const distilled = studentFromTeacher(tinyTeacher(4));
    const onDistilled = new LoraNetwork(distilled, unetLoraPaths(distilled, "attn"), { rank: 2 });
    assert.throws(
      () => new LcmTrainer(onDistilled, { ...parts, teacher: distilled }, { steps: 1 }),
      /already takes a guidance embedding \(time_cond_proj_dim 256\)/,
    );
  });

  it("refuses inverted guidance ranges, skips that do not divide T, unknown losses", () => {
    assert.throws(
      () => resolveLcmOptions({ steps: 1, wMin: 5, wMax: 2 }, 1000),
      /the guidance range is inverted: wMin 5 > wMax 2; give wMin <= wMax/,
    );
    assert.throws(() => resolveLcmOptions({ steps: 1, wMin: -1 }, 1000), /must be finite and >= 0/);
    assert.throws(() => resolveLcmOptions({ steps: 1, skip: 30 }, 1000), /dividing num_train_timesteps 1000/);
    assert.throws(
      () => resolveLcmOptions({ steps: 1, loss: "l1" as "l2" }, 1000),
      /loss must be one of l2, huber, got "l1"/,
    );
    const r = resolveLcmOptions({ steps: 10 }, 1000);
    assert.deepEqual(
      [r.skip, r.wMin, r.wMax, r.emaDecay, r.lr, r.batchSize, r.loss],
      [20, 1, 7, 0.95, 1e-4, 32, "l2"],
    );
  });
});
