// The latent consistency distillation trainer on a tiny teacher: the student starts as the teacher (zero guidance
// projection), the consistency loss of a fixed batch falls as it trains, and bad options are refused.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CLIPTextModel } from "../../src/models/clip/text-model.js";
import { CLIPTokenizer } from "../../src/models/clip/tokenizer.js";
import { AutoencoderKL } from "../../src/models/vae/autoencoder-kl.js";
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
import { lcmSchedulerConfig } from "../../src/train/run-lcm.js";
import { CaptionEncoder } from "../../src/train/text-latents.js";
import { encodeLatents } from "../../src/train/text-to-image-trainer.js";
import { randomTensor } from "../helpers.js";
import { fewEmoji, SHIPPED_EMOJI, tinyTeacher } from "./lcm-teacher.js";

const set = fewEmoji(4);

async function makeTrainer(opts: LcmDistillOptions): Promise<LcmTrainer> {
  const vae = await AutoencoderKL.fromPretrained(join(SHIPPED_EMOJI, "vae"));
  const textEncoder = await CLIPTextModel.fromPretrained(join(SHIPPED_EMOJI, "text_encoder"));
  const tokenizer = await CLIPTokenizer.fromPretrained(join(SHIPPED_EMOJI, "tokenizer"));
  const sched = JSON.parse(readFileSync(join(SHIPPED_EMOJI, "scheduler", "scheduler_config.json"), "utf8"));
  const teacher = tinyTeacher();
  return new LcmTrainer(
    studentFromTeacher(teacher),
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
      trainer.ema.copyTo(trainer.target);
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
