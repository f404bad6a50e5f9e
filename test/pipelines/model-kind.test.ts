// What a model folder holds, as the CLI decides it from the files: the shipped folders' kinds, and which latent
// consistency folders take no guidance embedding (an LCM-LoRA fused into its teacher, sampled without guidance).
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  isFusedLcmFolder,
  isStableDiffusionModel,
  modelSchedulerClass,
} from "../../src/pipelines/model-kind.js";

const models = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "models");

describe("model kinds", () => {
  it("tells the shipped folders apart: text-to-image, fused LCM-LoRA, class-conditional", async () => {
    assert.equal(await isStableDiffusionModel(join(models, "emoji")), true);
    assert.equal(await modelSchedulerClass(join(models, "emoji-lcm")), "LCMScheduler");
    assert.equal(await isFusedLcmFolder(join(models, "emoji-lcm")), true);
    assert.equal(await isFusedLcmFolder(join(models, "emoji")), false);
    assert.equal(await isFusedLcmFolder(join(models, "mnist")), false);
  });

  it("an LCM folder whose UNet takes a guidance embedding is not a fused one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "diffuse-kind-"));
    try {
      cpSync(join(models, "emoji-lcm"), dir, { recursive: true });
      const path = join(dir, "unet", "config.json");
      const config = JSON.parse(readFileSync(path, "utf8"));
      writeFileSync(path, JSON.stringify({ ...config, time_cond_proj_dim: 256 }));
      assert.equal(await isFusedLcmFolder(dir), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
