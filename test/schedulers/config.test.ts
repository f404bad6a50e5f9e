// Configs as diffusers writes them: fromConfig / schedulerFromConfig / loadScheduler, switching samplers, unknown
// keys, invalid values, and the named-sampler table.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DiffuseError, F, zeros } from "../../src/index.js";
import {
  DDIMScheduler,
  DDPMScheduler,
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  LCMScheduler,
  loadScheduler,
  normalizeSamplerName,
  PNDMScheduler,
  parseSchedulerConfigJson,
  SAMPLERS,
  SCHEDULER_CLASSES,
  SchedulerError,
  samplerFromName,
  samplersMarkdownTable,
  schedulerFromConfig,
  UniPCMultistepScheduler,
} from "../../src/schedulers/index.js";
import { SD15_CONFIG } from "./toy.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

function expectSchedulerError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SchedulerError && err instanceof DiffuseError, `not a SchedulerError: ${err}`);
    assert.match((err as Error).message, pattern);
    return true;
  });
}

describe("scheduler configs", () => {
  it("fromConfig keeps every given key, fills diffusers' defaults and records the class name", () => {
    const ddim = DDIMScheduler.fromConfig(SD15_CONFIG);
    assert.equal(ddim.config._class_name, "DDIMScheduler");
    assert.equal(ddim.config.beta_schedule, "scaled_linear");
    assert.equal(ddim.config.skip_prk_steps, true); // a PNDM key, kept
    assert.equal(ddim.config.timestep_spacing, "leading"); // DDIM's default
    assert.equal(ddim.config.prediction_type, "epsilon");
    assert.ok(Object.isFrozen(ddim.config));
  });

  it("switching sampler keeps the model's schedule", () => {
    const ddim = DDIMScheduler.fromConfig({ ...SD15_CONFIG, prediction_type: "v_prediction" });
    const euler = EulerDiscreteScheduler.fromConfig(ddim.config);
    assert.equal(euler.config._class_name, "EulerDiscreteScheduler");
    assert.equal(euler.config.prediction_type, "v_prediction");
    assert.equal(euler.config.set_alpha_to_one, false);
    assert.deepEqual(euler.alphasCumprod, ddim.alphasCumprod);
    const back = DDIMScheduler.fromConfig(euler.config);
    for (const [k, v] of Object.entries(ddim.config)) assert.deepEqual(back.config[k], v, k);
    assert.equal(back.config.timestep_type, "discrete"); // Euler's keys travel along, as in diffusers
  });

  it("schedulerFromConfig picks the class by _class_name", () => {
    for (const name of Object.keys(SCHEDULER_CLASSES)) {
      const s = schedulerFromConfig({ ...SD15_CONFIG, _class_name: name });
      assert.equal(s.className, name);
      assert.ok(s instanceof SCHEDULER_CLASSES[name]!);
    }
    assert.ok(schedulerFromConfig(SD15_CONFIG) instanceof PNDMScheduler);
    expectSchedulerError(() => schedulerFromConfig({ num_train_timesteps: 1000 }), /_class_name/);
    expectSchedulerError(
      () => schedulerFromConfig({ _class_name: "KarrasVeScheduler" }),
      /unknown scheduler class/,
    );
  });

  it("reports an unknown key once, keeps it, and stays silent about keys of other schedulers", () => {
    const messages: string[] = [];
    const logger = (m: string) => messages.push(m);
    const a = new DDIMScheduler({ ...SD15_CONFIG, frobnicate_schedule: 3 }, { logger });
    new EulerDiscreteScheduler({ ...a.config }, { logger });
    assert.equal(a.config.frobnicate_schedule, 3);
    assert.equal(messages.length, 1);
    assert.match(messages[0]!, /DDIMScheduler: unknown config key "frobnicate_schedule"/);
  });

  it("rejects invalid values with an error naming the option", () => {
    expectSchedulerError(() => new DDPMScheduler({ beta_schedule: "cosine" }), /beta_schedule.*"cosine"/);
    expectSchedulerError(() => new EulerDiscreteScheduler({ prediction_type: "flow" }), /prediction_type/);
    expectSchedulerError(() => new DDIMScheduler({ timestep_spacing: "uniform" }), /timestep_spacing/);
    expectSchedulerError(
      () => new DDIMScheduler({ num_train_timesteps: "1000" }),
      /num_train_timesteps.*number/,
    );
    expectSchedulerError(() => new DDIMScheduler({ num_train_timesteps: 0 }), /num_train_timesteps/);
    expectSchedulerError(
      () => new DPMSolverMultistepScheduler({ solver_order: 4 }),
      /solver_order.*\[1, 3\]/,
    );
    expectSchedulerError(
      () => new DPMSolverMultistepScheduler({ algorithm_type: "dpmsolver" }),
      /algorithm_type/,
    );
    expectSchedulerError(() => new DPMSolverMultistepScheduler({ use_lu_lambdas: true }), /use_lu_lambdas/);
    expectSchedulerError(
      () => new EulerAncestralDiscreteScheduler({ prediction_type: "sample" }),
      /prediction_type/,
    );
    expectSchedulerError(() => new UniPCMultistepScheduler({ solver_type: "bh1" }), /bh1.*sigma_min/);
    expectSchedulerError(
      () => new DDPMScheduler({ trained_betas: [0.1, 0.2], num_train_timesteps: 3 }),
      /trained_betas/,
    );
    expectSchedulerError(() => new EulerDiscreteScheduler({ timestep_type: "edm" }), /timestep_type/);
  });

  it("rejects more steps than training steps, and step() before setTimesteps()", () => {
    for (const cls of Object.values(SCHEDULER_CLASSES)) {
      const s = new cls(SD15_CONFIG);
      expectSchedulerError(() => s.setTimesteps(1001), /num_inference_steps.*1001.*1000/);
      expectSchedulerError(() => s.setTimesteps(0), /num_inference_steps/);
    }
    const ddim = new DDIMScheduler(SD15_CONFIG);
    expectSchedulerError(() => ddim.step(zeros([1, 4, 2, 2]), 981, zeros([1, 4, 2, 2])), /setTimesteps/);
    const euler = new EulerDiscreteScheduler(SD15_CONFIG);
    euler.setTimesteps(2);
    let x = zeros([1, 4, 2, 2]);
    for (const t of euler.timesteps) x = euler.step(x, t, x).prevSample;
    expectSchedulerError(() => euler.step(x, euler.timesteps[1]!, x), /timesteps are done/);
    const lcm = new LCMScheduler(SD15_CONFIG);
    expectSchedulerError(() => lcm.setTimesteps(60), /original_inference_steps/);
  });

  it("reads non-finite numbers as diffusers writes them", () => {
    const text =
      '{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "note": "-Infinity"}';
    const cfg = parseSchedulerConfigJson(text);
    assert.equal(cfg.note, "-Infinity");
    const s = schedulerFromConfig(cfg) as DPMSolverMultistepScheduler;
    assert.equal(s.config.lambda_min_clipped, Number.NEGATIVE_INFINITY);
    const quoted = new DPMSolverMultistepScheduler({ lambda_min_clipped: "-Infinity" });
    assert.equal(quoted.config.lambda_min_clipped, Number.NEGATIVE_INFINITY);
  });

  it("lambda_min_clipped cuts the noisiest timesteps of the cosine schedule", () => {
    const base = { beta_schedule: "squaredcos_cap_v2", timestep_spacing: "linspace" };
    const clipped = new DPMSolverMultistepScheduler({ ...base, lambda_min_clipped: -5.1 });
    const full = new DPMSolverMultistepScheduler(base);
    clipped.setTimesteps(10);
    full.setTimesteps(10);
    assert.equal(full.timesteps[0], 999);
    assert.ok(clipped.timesteps[0]! < 999, `first timestep ${clipped.timesteps[0]}`);
  });

  it("loadScheduler reads scheduler/scheduler_config.json and names the file in errors", async () => {
    const dir = mkdtempSync(join(tmpdir(), "diffuse-sched-"));
    try {
      mkdirSync(join(dir, "scheduler"));
      const file = join(dir, "scheduler", "scheduler_config.json");
      writeFileSync(file, JSON.stringify({ ...SD15_CONFIG, _class_name: "EulerDiscreteScheduler" }, null, 2));
      const s = await loadScheduler(dir);
      assert.ok(s instanceof EulerDiscreteScheduler);
      assert.equal(s.config.beta_schedule, "scaled_linear");
      assert.ok((await loadScheduler(join(dir, "scheduler"))) instanceof EulerDiscreteScheduler);
      writeFileSync(file, "{ not json");
      await assert.rejects(
        loadScheduler(dir),
        (e: Error) => e instanceof SchedulerError && e.message.includes(file),
      );
      writeFileSync(file, JSON.stringify({ _class_name: "DDIMScheduler", beta_schedule: "nope" }));
      await assert.rejects(
        loadScheduler(dir),
        (e: Error) => e.message.includes(file) && /beta_schedule/.test(e.message),
      );
      await assert.rejects(loadScheduler(join(dir, "missing")), /scheduler_config\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("addNoise checks its timesteps and shapes", () => {
    const ddpm = new DDPMScheduler(SD15_CONFIG);
    const x = zeros([2, 1, 2, 2]);
    expectSchedulerError(() => ddpm.addNoise(x, x, [1, 2, 3]), /3 timesteps.*batch of 2/);
    expectSchedulerError(() => ddpm.addNoise(x, x, 1000), /\[0, 999\]/);
    expectSchedulerError(() => ddpm.addNoise(x, zeros([2, 1, 2, 3]), 1), /shape/);
    const euler = new EulerDiscreteScheduler(SD15_CONFIG);
    euler.setTimesteps(10);
    expectSchedulerError(() => euler.addNoise(x, x, 500.5), /not one of/);
    const noisy = ddpm.addNoise(F.add(x, 1), F.add(x, 1), [0, 999]);
    const [a, b] = [noisy.toFloat32Array()[0]!, noisy.toFloat32Array()[4]!];
    assert.ok(a > 1 && b > 1 && a !== b);
  });
});

describe("named samplers", () => {
  it("every name builds its diffusers class with its overrides on the model's config", () => {
    assert.equal(SAMPLERS.length, 14);
    for (const spec of SAMPLERS) {
      const s = samplerFromName(spec.name, { ...SD15_CONFIG, use_karras_sigmas: true });
      assert.equal(s.className, spec.className, spec.name);
      for (const [k, v] of Object.entries(spec.overrides))
        assert.deepEqual(s.config[k], v, `${spec.name} ${k}`);
      assert.equal(s.config.beta_schedule, "scaled_linear");
    }
    const k = samplerFromName("dpmpp-2m-sde-karras", SD15_CONFIG) as DPMSolverMultistepScheduler;
    assert.equal(k.algorithmType, "sde-dpmsolver++");
    assert.equal(k.config.use_karras_sigmas, true);
  });

  it("accepts A1111 / ComfyUI spellings and rejects unknown names", () => {
    assert.equal(normalizeSamplerName("DPM++ 2M Karras"), "dpmpp-2m-karras");
    assert.equal(normalizeSamplerName("Euler a"), "euler-a");
    assert.equal(normalizeSamplerName("euler_ancestral"), "euler-a");
    assert.equal(normalizeSamplerName("dpmpp_2m_sde"), "dpmpp-2m-sde");
    assert.equal(normalizeSamplerName("k_lms"), "lms");
    assert.equal(normalizeSamplerName("PLMS"), "pndm");
    assert.equal(samplerFromName("UniPC").className, "UniPCMultistepScheduler");
    expectSchedulerError(
      () => samplerFromName("dpm-adaptive"),
      /unknown sampler "dpm-adaptive"; known: ddpm/,
    );
  });

  it("docs/samplers.md holds the current table", () => {
    // compare cell by cell: a markdown formatter may pad the columns
    const rows = (md: string) =>
      md
        .split("\n")
        .filter((line) => line.startsWith("|"))
        .map((line) => line.split("|").map((cell) => cell.trim()))
        .filter((cells) => !cells.every((c) => /^-*$/.test(c)));
    const doc = readFileSync(join(repoRoot, "docs", "samplers.md"), "utf8");
    assert.deepEqual(rows(doc), rows(samplersMarkdownTable()), "regenerate the table in docs/samplers.md");
  });
});

describe("config carried over from another scheduler", () => {
  it("DPM-Solver++ accepts DDPM's fixed variance_type, as diffusers ignores it", async () => {
    const { DPMSolverMultistepScheduler } = await import("../../src/schedulers/index.js");
    const s = DPMSolverMultistepScheduler.fromConfig({
      num_train_timesteps: 1000,
      variance_type: "fixed_small",
    });
    s.setTimesteps(10);
    assert.equal(s.timesteps.length, 10);
    assert.throws(
      () => DPMSolverMultistepScheduler.fromConfig({ variance_type: "learned_range" }),
      /variance_type/,
    );
  });
});
