import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { serializeSafetensors, Tensor, tensor } from "../../src/index.js";
import { writePng } from "../../src/io/image.js";
import { pngHeaderOnly } from "../helpers.js";
import { diffuse, repoRoot } from "./run-cli.js";

/** Runs the CLI from its TypeScript entry (no build needed). */
let dir: string;
let good: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-cli-"));
  good = join(dir, "model.safetensors");
  const bytes = serializeSafetensors(
    {
      "conv.weight": tensor(new Float32Array(2 * 3 * 3 * 3), [2, 3, 3, 3]),
      "conv.bias": tensor([0.5, -0.5], [2]),
      ids: Tensor.fromStorage(new BigInt64Array([1n, 2n, 3n]), [3], "int64"),
      half: Tensor.fromStorage(new Uint16Array(4), [2, 2], "float16"),
    },
    { format: "pt", note: "tiny test model" },
  );
  writeFileSync(good, bytes);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A failed command: exit code 1, nothing on stdout, one line on stderr without a stack trace. */
function assertOneLineError(r: ReturnType<typeof diffuse>, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^diffuse: /);
  assert.match(lines[0]!, pattern);
}

describe("diffuse CLI", () => {
  it("--version prints the package.json version; --help lists the info command", () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
    const v = diffuse("--version");
    assert.equal(v.code, 0);
    assert.equal(v.stdout.trim(), pkg.version);
    const h = diffuse("--help");
    assert.equal(h.code, 0);
    assert.match(h.stdout, /Usage: diffuse/);
    assert.match(h.stdout, /info \[options\] <path>/);
  });

  it("info prints names, dtypes, shapes, parameter count and metadata as a table", () => {
    const r = diffuse("info", good);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, /safetensors/);
    // 54 + 2 + 3 + 4 parameters in 4 tensors
    assert.match(r.stdout, /tensors: 4, parameters: 63 \(I64 x 1, F32 x 2, F16 x 1\)/);
    assert.match(r.stdout, /^ {2}format: pt$/m);
    assert.match(r.stdout, /^ {2}note: tiny test model$/m);
    assert.match(r.stdout, /^conv\.weight\s+F32\s+\[2, 3, 3, 3\]\s+54$/m);
    assert.match(r.stdout, /^conv\.bias\s+F32\s+\[2\]\s+2$/m);
    assert.match(r.stdout, /^ids\s+I64\s+\[3\]\s+3$/m);
    assert.match(r.stdout, /^half\s+F16\s+\[2, 2\]\s+4$/m);
  });

  it("info --json prints one JSON object", () => {
    const r = diffuse("info", good, "--json");
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.format, "safetensors");
    assert.equal(info.path, good);
    assert.equal(info.tensorCount, 4);
    assert.equal(info.parameterCount, 63);
    assert.equal(info.fileBytes, readFileSync(good).length);
    assert.deepEqual(info.dtypes, { I64: 1, F32: 2, F16: 1 });
    assert.deepEqual(info.metadata, { format: "pt", note: "tiny test model" });
    assert.deepEqual(
      info.tensors.map((t: { name: string; dtype: string; shape: number[]; parameters: number }) => [
        t.name,
        t.dtype,
        t.shape,
        t.parameters,
      ]),
      [
        ["ids", "I64", [3], 3],
        ["conv.bias", "F32", [2], 2],
        ["conv.weight", "F32", [2, 3, 3, 3], 54],
        ["half", "F16", [2, 2], 4],
      ],
    );
    assert.deepEqual(info.tensors[1].dataOffsets, [24, 32]);
  });

  it("info recognises a safetensors file by its content whatever the extension", () => {
    const other = join(dir, "weights.bin");
    writeFileSync(other, readFileSync(good));
    const r = diffuse("info", other, "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).tensorCount, 4);
  });

  it("a broken, missing or unknown file gives a one-line error and exit code 1", () => {
    const broken = join(dir, "broken.safetensors");
    const bytes = readFileSync(good);
    writeFileSync(broken, bytes.subarray(0, bytes.length - 10));
    assertOneLineError(diffuse("info", broken), /broken\.safetensors: .*truncated file/);

    const garbage = join(dir, "garbage.safetensors");
    writeFileSync(garbage, "this is not a safetensors file at all");
    assertOneLineError(diffuse("info", garbage, "--json"), /garbage\.safetensors: header length \d+ exceeds/);

    assertOneLineError(
      diffuse("info", join(dir, "missing.safetensors")),
      /missing\.safetensors: file not found/,
    );
    const text = join(dir, "notes.txt");
    writeFileSync(text, "hello");
    assertOneLineError(diffuse("info", text), /notes\.txt: unrecognised file type/);
    assertOneLineError(diffuse("info", dir), /is not a file/);
  });

  it("usage errors exit with code 1", () => {
    assert.equal(diffuse("info").code, 1);
    assert.equal(diffuse("no-such-command").code, 1);
  });
});

describe("info on a PNG with escape sequences in its text", () => {
  it("shows control characters as escapes, never raw", () => {
    const png = join(dir, "escapes.png");
    const image = { width: 2, height: 2, channels: 3 as const, data: new Uint8Array(12) };
    writePng(png, image, {
      parameters: "a \u001b[2Jcat\nSteps: 5, Sampler: \u001b]0;owned\u0007",
      Comment: "\u001b[31mred",
    });
    const r = diffuse("info", png);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes("\u001b") && !r.stdout.includes("\u0007"), "no raw control characters");
    assert.match(r.stdout, /\\x1b\[2Jcat/);
    assert.match(r.stdout, /Comment: \\x1b\[31mred/);
  });
});

describe("info on a PNG that claims a huge size", () => {
  it("is refused from its header, before any pixel is decoded", () => {
    const bomb = join(dir, "bomb.png");
    writeFileSync(bomb, pngHeaderOnly(20000, 20000));
    const r = diffuse("info", bomb);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /20000x20000 = 400000000 pixels; at most 67108864/);
  });
});
