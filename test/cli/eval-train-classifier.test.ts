import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openSafetensors } from "../../src/io/safetensors.js";
import { diffuse } from "./run-cli.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-train-classifier-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("diffuse train classifier", () => {
  it("trains, reports held-out accuracy and writes config.json + model.safetensors", async () => {
    const out = join(dir, "clf");
    const r = diffuse(
      "train",
      "classifier",
      "--out",
      out,
      "--steps",
      "3",
      "--batch",
      "8",
      "--seed",
      "1",
      "--json",
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    const progress = lines.filter((l) => l.type === "progress");
    assert.deepEqual(
      progress.map((p) => p.step),
      [1, 2, 3],
    );
    assert.ok(progress.every((p) => p.stage === "train" && p.total === 3 && p.values.loss > 0));
    const result = lines.at(-1);
    assert.equal(result.type, "result");
    assert.equal(result.trainDigits, 9000);
    assert.equal(result.heldOutDigits, 1000);
    assert.ok(result.heldOutAccuracy >= 0 && result.heldOutAccuracy <= 1);
    assert.equal(result.heldOutPerClass.length, 10);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    assert.equal(config._class_name, "DigitClassifier");
    const file = await openSafetensors(join(out, "model.safetensors"));
    try {
      assert.ok(file.entries.some((e) => e.name === "head.weight" && e.dtype === "F32"));
      assert.equal(file.header.metadata?.held_out_accuracy, result.heldOutAccuracy.toFixed(4));
    } finally {
      file.close();
    }
  });

  it("--data emoji: one class per emoji name, scored on the real images", async () => {
    const out = join(dir, "emoji-clf");
    const r = diffuse(
      "train",
      "classifier",
      "--data",
      "emoji",
      "--out",
      out,
      "--steps",
      "2",
      "--batch",
      "4",
      "--json",
    );
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout.trimEnd().split("\n").at(-1)!);
    assert.equal(result.trainDigits, 3786);
    assert.equal(result.heldOutDigits, 3786);
    assert.equal(result.heldOutPerClass, undefined);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    assert.equal(config.in_channels, 3);
    assert.equal(config.num_classes, 1911);
    const bad = diffuse("train", "classifier", "--out", join(dir, "x"), "--vae", dir);
    assert.match(bad.stderr, /--vae applies to --data emoji only/);
  });

  it("rejects bad numbers and an --out that is a file, in one line", () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    for (const [args, pattern] of [
      [["--out", file], /--out .*a-file exists and is not a folder/],
      [["--out", join(dir, "x"), "--steps", "0"], /--steps must be an integer >= 1, got "0"/],
      [["--out", join(dir, "x"), "--lr", "-1"], /--lr must be a positive number/],
    ] as const) {
      // the first spelling, `train-classifier`, is kept as an alias
      const r = diffuse(...(args.length > 2 ? ["train", "classifier"] : ["train-classifier"]), ...args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr.trim(), /^diffuse: /);
      assert.match(r.stderr, pattern);
    }
    assert.ok(!existsSync(join(dir, "x")));
  });
});
