import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  loadSafetensors,
  openSafetensors,
  openSafetensorsSync,
  parseSafetensors,
  SafetensorsError,
  saveSafetensors,
  serializeSafetensors,
  Tensor,
  tensor,
} from "../../src/index.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-safetensors-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** One tensor of every dtype, with edge values (fp16/bf16 given as raw bit patterns). */
function everyDtype(): Record<string, Tensor> {
  return {
    f32: tensor([1.5, -0, Number.POSITIVE_INFINITY, -3.25e-38, 7], [5]),
    f16: Tensor.fromStorage(
      new Uint16Array([0x3c00, 0x8000, 0x7c00, 0x0001, 0x7bff, 0x7e00]),
      [2, 3],
      "float16",
    ),
    bf16: Tensor.fromStorage(new Uint16Array([0x3f80, 0xc040, 0x7f80]), [3], "bfloat16"),
    i64: Tensor.fromStorage(new BigInt64Array([-(2n ** 63n), 2n ** 53n + 1n, -1n]), [3, 1], "int64"),
    i32: Tensor.fromStorage(new Int32Array([-(2 ** 31), 2 ** 31 - 1]), [2], "int32"),
    i16: Tensor.fromStorage(new Int16Array([-32768, 32767, 5]), [1, 3], "int16"),
    i8: Tensor.fromStorage(new Int8Array([-128, 127]), [2], "int8"),
    u8: Tensor.fromStorage(new Uint8Array([0, 255, 17]), [3], "uint8"),
    bool: Tensor.fromStorage(new Uint8Array([1, 0, 1, 1]), [2, 2], "bool"),
    scalar: tensor([42], []),
    empty: Tensor.fromStorage(new Float32Array(0), [0, 3], "float32"),
  };
}

function assertSameTensors(got: ReadonlyMap<string, Tensor>, want: Record<string, Tensor>): void {
  assert.deepEqual([...got.keys()].sort(), Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const g = got.get(name)!;
    assert.equal(g.dtype, w.dtype, `${name} dtype`);
    assert.deepEqual(g.shape, w.shape, `${name} shape`);
    assert.deepEqual(g.dataSync(), w.dataSync(), `${name} data`);
  }
}

describe("safetensors round trip", () => {
  const metadata = { format: "pt", note: 'ünïcode ✓ "quoted"\nnewline', __proto__x: "x", "": "empty key" };

  it("every dtype survives save -> open/get, load, parse(serialize)", async () => {
    const want = everyDtype();
    const path = join(dir, "all.safetensors");
    await saveSafetensors(path, want, metadata);

    const file = await openSafetensors(path);
    assert.deepEqual(file.metadata, metadata);
    assert.deepEqual(file.keys().sort(), Object.keys(want).sort());
    const viaGet = new Map(file.keys().map((k) => [k, file.get(k)]));
    assert.equal(file.entry("f16").byteLength, 12);
    file.close();
    assertSameTensors(viaGet, want);

    const loaded = await loadSafetensors(path);
    assert.deepEqual(loaded.metadata, metadata);
    assertSameTensors(loaded.tensors, want);

    const bytes = serializeSafetensors(new Map(Object.entries(want)), metadata);
    assert.deepEqual(new Uint8Array(readFileSync(path)), bytes, "file and in-memory serialization agree");
    const parsed = parseSafetensors(bytes);
    assert.deepEqual(parsed.metadata, metadata);
    assertSameTensors(parsed.tensors, want);
  });

  it("writes strided views row-major, and no metadata as null", async () => {
    const base = tensor(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      [2, 3],
    );
    const path = join(dir, "view.safetensors");
    await saveSafetensors(path, new Map([["t", base.transpose(0, 1)]]));
    const { tensors, metadata } = await loadSafetensors(path);
    assert.equal(metadata, null);
    assert.deepEqual(tensors.get("t")!.shape, [3, 2]);
    assert.deepEqual(Array.from(tensors.get("t")!.dataSync() as Float32Array), [1, 4, 2, 5, 3, 6]);
  });

  it("lays the file out as the reference implementation: sorted, aligned, space-padded header", () => {
    const bytes = serializeSafetensors(
      {
        b: tensor([1, 2], [2]),
        "10": Tensor.fromStorage(new Uint8Array([9, 8, 7]), [3], "uint8"),
        a: Tensor.fromStorage(new BigInt64Array([5n]), [1], "int64"),
      },
      { format: "pt" },
    );
    const json =
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"10":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}}';
    const n = Math.ceil(json.length / 8) * 8;
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    assert.equal(view.getBigUint64(0, true), BigInt(n));
    assert.equal(new TextDecoder().decode(bytes.subarray(8, 8 + n)), json.padEnd(n, " "));
    assert.equal(bytes.length, 8 + n + 19);
    assert.equal(view.getBigInt64(8 + n, true), 5n);
    assert.equal(view.getFloat32(8 + n + 8, true), 1);
    assert.equal(view.getFloat32(8 + n + 12, true), 2);
    assert.deepEqual(Array.from(bytes.subarray(8 + n + 16)), [9, 8, 7]);
  });

  it("saves atomically: replaces an existing file and leaves no temporary files", async () => {
    const sub = mkdtempSync(join(dir, "atomic-"));
    const path = join(sub, "m.safetensors");
    writeFileSync(path, "old contents");
    await saveSafetensors(path, { x: tensor([3], [1]) });
    assert.deepEqual(readdirSync(sub), ["m.safetensors"]);
    assert.equal((await loadSafetensors(path)).tensors.get("x")!.item(), 3);
    await assert.rejects(
      saveSafetensors(join(sub, "missing-dir", "m.safetensors"), { x: tensor([1], [1]) }),
      (e: unknown) => e instanceof SafetensorsError && /cannot write .*missing-dir/.test(e.message),
    );
    await assert.rejects(saveSafetensors(path, { __metadata__: tensor([1], [1]) }), SafetensorsError);
    await assert.rejects(
      saveSafetensors(path, { x: tensor([1], [1]) }, { k: 1 as unknown as string }),
      SafetensorsError,
    );
    assert.deepEqual(readdirSync(sub), ["m.safetensors"]);
  });
});

describe("safetensors lazy reading", () => {
  it("reads tensors from the file on demand (positioned reads after open)", () => {
    const path = join(dir, "lazy.safetensors");
    writeFileSync(path, serializeSafetensors({ a: tensor([1, 2, 3], [3]), b: tensor([4, 5], [2]) }));
    const file = openSafetensorsSync(path);
    assert.deepEqual(file.keys(), ["a", "b"]);
    assert.deepEqual(file.entry("b").dataOffsets, [12, 20]);
    // cut the last tensor's bytes after opening: reading "a" still works, reading "b" hits the end of the file
    truncateSync(path, file.header.dataStart + 16);
    assert.deepEqual(Array.from(file.get("a").dataSync() as Float32Array), [1, 2, 3]);
    assert.throws(
      () => file.get("b"),
      (e: unknown) => e instanceof SafetensorsError && /unexpected end of file/.test(e.message),
    );
    assert.throws(() => file.get("nope"), /no tensor named "nope"/);
    file.close();
    file.close();
    assert.throws(() => file.get("a"), /file is closed/);
  });

  it("converts F64, U16, U32 and lists (but refuses to read) U64", () => {
    const header = JSON.stringify({
      d: { dtype: "F64", shape: [2], data_offsets: [0, 16] },
      q: { dtype: "U64", shape: [1], data_offsets: [16, 24] },
      w: { dtype: "U32", shape: [1], data_offsets: [24, 28] },
      h: { dtype: "U16", shape: [2], data_offsets: [28, 32] },
    });
    const data = new DataView(new ArrayBuffer(32));
    data.setFloat64(0, 0.1, true);
    data.setFloat64(8, -2.5, true);
    data.setBigUint64(16, 2n ** 64n - 1n, true);
    data.setUint32(24, 4294967295, true);
    data.setUint16(28, 65535, true);
    data.setUint16(30, 1, true);
    const bytes = fileBytes(header, new Uint8Array(data.buffer));
    const path = join(dir, "wide.safetensors");
    writeFileSync(path, bytes);
    const file = openSafetensorsSync(path);
    assert.deepEqual(file.keys(), ["d", "q", "w", "h"]);
    const d = file.get("d");
    assert.equal(d.dtype, "float32");
    assert.deepEqual(Array.from(d.dataSync() as Float32Array), [Math.fround(0.1), -2.5]);
    assert.deepEqual(Array.from(file.get("w").dataSync() as BigInt64Array), [4294967295n]);
    assert.equal(file.get("w").dtype, "int64");
    assert.deepEqual(Array.from(file.get("h").dataSync() as Int32Array), [65535, 1]);
    assert.throws(() => file.get("q"), /dtype U64, which cannot be read/);
    file.close();
  });
});

/** Assembles a file from a header string and data bytes (no padding). */
function fileBytes(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe("safetensors validation", () => {
  const t = (dtype: string, shape: unknown, offsets: unknown) =>
    JSON.stringify({ x: { dtype, shape, data_offsets: offsets } });
  const cases: [string, Uint8Array, RegExp][] = [
    ["too short", new Uint8Array(5), /shorter than the 8-byte header length/],
    ["header length 1", fileBytes(" "), /header length 1 is too small/],
    ["header length > 100 MB", withLength(fileBytes("{}"), 100_000_001n), /exceeds the 100000000-byte limit/],
    ["header length 2^64-1", withLength(fileBytes("{}"), 2n ** 64n - 1n), /exceeds the 100000000-byte limit/],
    ["header past the end", withLength(fileBytes("{}"), 3n), /exceeds the 2 bytes after the length field/],
    ["invalid UTF-8", fileBytes("{}").fill(0xff, 9, 10), /not valid UTF-8/],
    ["leading space", fileBytes(" {}"), /does not start with "\{"/],
    ["bad JSON", fileBytes('{"x": }'), /not valid JSON/],
    ["JSON array", fileBytes("[1]  "), /does not start with/],
    ["entry not an object", fileBytes('{"x": 3}'), /tensor "x" must be an object/],
    ["unknown dtype", fileBytes(t("F128", [1], [0, 16]), new Uint8Array(16)), /unknown dtype "F128"/],
    [
      "missing dtype",
      fileBytes(JSON.stringify({ x: { shape: [], data_offsets: [0, 0] } })),
      /unknown dtype missing/,
    ],
    ["negative dim", fileBytes(t("F32", [-1], [0, 4]), new Uint8Array(4)), /shape \[-1\]; expected a list/],
    ["float dim", fileBytes(t("F32", [1.5], [0, 4]), new Uint8Array(4)), /shape \[1.5\]/],
    ["huge dim", fileBytes(t("F32", [1e300], [0, 4]), new Uint8Array(4)), /shape \[1e\+300\]/],
    [
      "overflowing shape",
      fileBytes(t("U8", [2 ** 30, 2 ** 30, 2 ** 30], [0, 1]), new Uint8Array(1)),
      /overflows/,
    ],
    ["three offsets", fileBytes(t("U8", [1], [0, 1, 2]), new Uint8Array(1)), /expected \[begin, end\]/],
    ["string offset", fileBytes(t("U8", [1], ["0", 1]), new Uint8Array(1)), /expected \[begin, end\]/],
    ["begin > end", fileBytes(t("U8", [0], [1, 0]), new Uint8Array(1)), /begin > end/],
    [
      "end past data",
      fileBytes(t("U8", [4], [0, 4]), new Uint8Array(3)),
      /past the end of the 3-byte data section/,
    ],
    [
      "size mismatch",
      fileBytes(t("F32", [2], [0, 4]), new Uint8Array(4)),
      /F32 \[2\] needs 8 bytes but .* hold 4/,
    ],
    [
      "gap at start",
      fileBytes(t("U8", [1], [1, 2]), new Uint8Array(2)),
      /leaves a gap of 1 bytes after the start/,
    ],
    [
      "trailing bytes",
      fileBytes(t("U8", [1], [0, 1]), new Uint8Array(2)),
      /cover 1 bytes but the data section has 2/,
    ],
    [
      "overlap",
      fileBytes(
        JSON.stringify({
          a: { dtype: "U8", shape: [2], data_offsets: [0, 2] },
          b: { dtype: "U8", shape: [2], data_offsets: [1, 3] },
        }),
        new Uint8Array(3),
      ),
      /tensor "b" .* overlaps tensor "a"/,
    ],
    ["metadata not strings", fileBytes('{"__metadata__":{"k":1}}'), /"k" is 1/],
    ["metadata an array", fileBytes('{"__metadata__":["k"]}'), /__metadata__ must be an object/],
  ];
  for (const [what, bytes, pattern] of cases) {
    it(`rejects: ${what}`, () => {
      const path = join(dir, `bad-${what.replace(/\W+/g, "_")}.safetensors`);
      writeFileSync(path, bytes);
      const check = (e: unknown) => {
        assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
        assert.match(e.message, pattern);
        return true;
      };
      assert.throws(() => parseSafetensors(bytes, "mem.safetensors"), check);
      assert.throws(
        () => openSafetensorsSync(path),
        (e: unknown) => check(e) && (e as Error).message.includes(path),
      );
    });
  }

  it("rejects a truncated real file and a missing file, naming them", async () => {
    const bytes = serializeSafetensors({ a: tensor([1, 2, 3, 4], [4]) });
    const path = join(dir, "cut.safetensors");
    writeFileSync(path, bytes.subarray(0, bytes.length - 1));
    await assert.rejects(
      openSafetensors(path),
      /cut\.safetensors: .* past the end of the 15-byte data section \(truncated/,
    );
    writeFileSync(path, bytes.subarray(0, 20));
    await assert.rejects(
      openSafetensors(path),
      /cut\.safetensors: header length \d+ exceeds the 12 bytes .*truncated/,
    );
    await assert.rejects(openSafetensors(join(dir, "none.safetensors")), /none\.safetensors: file not found/);
  });

  it("accepts the smallest file, zero-sized tensors and null metadata", () => {
    assert.equal(parseSafetensors(fileBytes("{}")).tensors.size, 0);
    const z = JSON.stringify({
      __metadata__: null,
      a: { dtype: "F32", shape: [0], data_offsets: [0, 0] },
      b: { dtype: "U8", shape: [1], data_offsets: [0, 1] },
      c: { dtype: "I64", shape: [2, 0], data_offsets: [1, 1] },
    });
    const { tensors, metadata } = parseSafetensors(fileBytes(z, new Uint8Array([7])));
    assert.equal(metadata, null);
    assert.deepEqual([...tensors.keys()], ["a", "b", "c"]);
    assert.deepEqual(tensors.get("c")!.shape, [2, 0]);
  });
});

function withLength(bytes: Uint8Array, n: bigint): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(0, n, true);
  return bytes;
}
