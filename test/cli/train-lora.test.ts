// `diffuse train lora` end to end on the shipped emoji model (the LoRA file it writes is applied by
// `diffuse generate --lora`, and a run resumes from its file name), its option checks, and `diffuse eval --lora`.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildProgram } from "../../src/cli/main.js";
import { loraRunDir } from "../../src/cli/train-lora.js";
import { writePng } from "../../src/io/image.js";
import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import { zeros } from "../../src/tensor/create.js";
import { testRng } from "../helpers.js";
import { diffuse } from "./run-cli.js";

let dir: string;
let data: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-train-lora-"));
  data = join(dir, "data");
  mkdirSync(data);
  const rng = testRng(3);
  for (let i = 0; i < 3; i++) {
    const px = new Uint8Array(32 * 32 * 3).map(() => Math.floor(rng() * 256));
    writePng(join(data, `${i}.png`), { width: 32, height: 32, channels: 3, data: px });
    writeFileSync(join(data, `${i}.txt`), `noise pattern ${i}`);
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

const jsonLines = (stdout: string) =>
  stdout
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("diffuse train lora", () => {
  it("trains on models/emoji; generate --lora applies the file; --resume FILE continues", async () => {
    const out = join(dir, "my.safetensors");
    const common = ["--sample-every", "0", "--checkpoint-every", "0", "--json"];
    const r = diffuse(
      "train",
      "lora",
      "--base",
      "models/emoji",
      "--data",
      data,
      "--out",
      out,
      "--steps",
      "2",
      "--rank",
      "4",
      "--format",
      "peft",
      ...common,
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    assert.deepEqual(lines.at(-1), { type: "done", step: 2, out });
    assert.ok(lines.some((l) => l.type === "saved" && l.what === "lora" && l.path === out));
    assert.ok(existsSync(join(loraRunDir(out), "checkpoint", "trainer_state.json")));
    assert.ok(existsSync(join(loraRunDir(out), "samples", "base.png")));
    const meta = (await loadSafetensors(out)).metadata!;
    assert.equal(meta.diffuse_base_model, "emoji");
    assert.match(meta.diffuse_base_hash!, /^[0-9a-f]{10}$/);
    assert.equal(meta.ss_network_dim, "4");

    const png = join(dir, "seven.png");
    const g = diffuse(
      "generate",
      "--model",
      "models/emoji",
      "--lora",
      `${out}:1`,
      "noise pattern 1",
      "-o",
      png,
      "--steps",
      "2",
      "--seed",
      "1",
    );
    assert.equal(g.code, 0, g.stderr);
    const info = diffuse("info", png);
    assert.match(info.stdout, /Lora hashes +my: [0-9a-f]{12}/);

    // the recorded options (base, data, rank, format) come back; --steps extends the run
    const resumed = diffuse("train", "lora", "--resume", out, "--steps", "3", ...common);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(jsonLines(resumed.stdout).at(-1), { type: "done", step: 3, out });
    assert.equal((await loadSafetensors(out)).metadata?.ss_steps, "3");
    const clash = diffuse("train", "lora", "--resume", out, "--rank", "8", ...common);
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, /--rank 8 contradicts the resumed run's --rank 4/);
  });

  it("refuses bad input with what to do", async () => {
    const run = (...args: string[]) =>
      buildProgram().parseAsync(["node", "diffuse", "train", "lora", "--sample-every", "0", ...args]);
    const out = join(dir, "x.safetensors");
    const base = ["--base", "models/emoji", "--out", out];
    const empty = join(dir, "empty");
    mkdirSync(empty);
    const uncaptioned = join(dir, "uncaptioned");
    mkdirSync(uncaptioned);
    writePng(join(uncaptioned, "a.png"), { width: 2, height: 2, channels: 3, data: new Uint8Array(12) });
    const cases: [string[], RegExp][] = [
      [["--data", data], /--out FILE\.safetensors is required/],
      [
        ["--data", data, "--base", "models/emoji", "--out", join(dir, "x.pt")],
        /--out must name a \.safetensors file/,
      ],
      [["--out", out], /a new run needs --base MODEL .* and --data DIR/],
      [["--data", data, "--out", out, "--base", join(dir, "nowhere")], /--base .*nowhere does not exist/],
      [[...base, "--data", join(dir, "nodata")], /nodata does not exist; --data takes a folder of images/],
      [[...base, "--data", empty], /no images \(\.png, \.jpg, \.jpeg\) in the folder/],
      [[...base, "--data", uncaptioned], /1 of 1 images have no caption file: a\.png/],
      [[...base, "--data", data, "--rank", "0"], /--rank must be an integer >= 1, got "0"/],
      [[...base, "--data", data, "--alpha", "0"], /--alpha must be a number in/],
      [
        [...base, "--data", data, "--targets", "mlp"],
        /--targets must be one of attn, attn\+ff, all-linear\+conv, got "mlp"/,
      ],
      [
        [...base, "--data", data, "--format", "lycoris"],
        /--format must be kohya .* or peft .*, got "lycoris"/,
      ],
      [[...base, "--data", data, "--cond-dropout", "2"], /--cond-dropout must be a number in \[0, 1\]/],
      [["--resume", join(dir, "none.safetensors")], /resume: no checkpoint in .*none\.run/],
    ];
    for (const [args, re] of cases) await assert.rejects(run(...args), re, args.join(" "));
  });

  it("eval --lora loads the file with the model (a file that is not a LoRA is refused)", async () => {
    const notLora = join(dir, "weights.safetensors");
    await saveSafetensors(notLora, new Map([["conv.weight", zeros([2, 2])]]));
    await assert.rejects(
      buildProgram().parseAsync(["node", "diffuse", "eval", "--model", "models/emoji", "--lora", notLora]),
      /weights\.safetensors: not a LoRA file/,
    );
  });

  it("eval --lora applies to text-to-image models only", async () => {
    await assert.rejects(
      buildProgram().parseAsync(["node", "diffuse", "eval", "--lora", join(dir, "my.safetensors")]),
      /--lora applies to text-to-image models; .*mnist is a class-conditional model/,
    );
  });
});
