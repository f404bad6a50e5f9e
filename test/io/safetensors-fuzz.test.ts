// Fuzzing the safetensors parser: mutated headers and files must either parse into tensors consistent with the
// header, or throw SafetensorsError; never another exception, a hang or a huge allocation.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  openSafetensorsSync,
  parseSafetensors,
  SafetensorsError,
  serializeSafetensors,
  Tensor,
  tensor,
} from "../../src/index.js";
import { fixturesDir, testRng } from "../helpers.js";

const CASES = 12_000;
/** Every this many cases the bytes also go through a real file (openSafetensorsSync + get). */
const FILE_EVERY = 8;

const rng = testRng(20240611);
const int = (n: number) => Math.floor(rng() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

function baseFiles(): Uint8Array[] {
  const bases = [
    serializeSafetensors(
      {
        w: tensor([1, 2, 3, 4, 5, 6], [2, 3]),
        ids: Tensor.fromStorage(new BigInt64Array([1n, -2n]), [2], "int64"),
        h: Tensor.fromStorage(new Uint16Array([0x3c00, 0x4000, 0xbc00]), [3], "float16"),
        m: Tensor.fromStorage(new Uint8Array([1, 0]), [2], "bool"),
        s: tensor([9], []),
      },
      { format: "pt", producer: "fuzz" },
    ),
    serializeSafetensors({ a: tensor([0.5, -0.5], [2]) }),
    serializeSafetensors({
      z: Tensor.fromStorage(new Float32Array(0), [0, 4], "float32"),
      b: Tensor.fromStorage(new Int8Array([-1, 2, -3]), [3], "int8"),
      c: Tensor.fromStorage(new Uint16Array([1, 2]), [1, 2], "bfloat16"),
    }),
    serializeSafetensors({}, { only: "metadata" }),
  ];
  const fx = fixturesDir();
  if (fx) bases.push(new Uint8Array(readFileSync(join(fx, "lora", "lora_io.safetensors"))));
  return bases;
}

function headerLengthOf(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
}

function assemble(headerText: string, data: Uint8Array, pad: boolean): Uint8Array {
  let json = new TextEncoder().encode(headerText);
  if (pad && json.length % 8 !== 0) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function split(base: Uint8Array): { text: string; data: Uint8Array } {
  const n = headerLengthOf(base);
  return { text: new TextDecoder().decode(base.subarray(8, 8 + n)).trimEnd(), data: base.subarray(8 + n) };
}

const interestingNumbers = [
  -1,
  0,
  1,
  2,
  3,
  4,
  7,
  8,
  255,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 64,
  1e308,
  0.5,
  -0,
];
const numberTokens = [
  "1e400",
  "-1e400",
  "99999999999999999999999",
  "1.0",
  "1e2",
  "-0",
  "0.1",
  "18446744073709551615",
];
const dtypes = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL"];
const badDtypes = ["F128", "f32", "", "F8_E4M3", "F4", 1, null, ["F32"]];
const jsonJunk = [
  "{",
  "}",
  "[",
  "]",
  '"',
  ",",
  ":",
  "null",
  "\\u0000",
  "\\ud800",
  "\u00ff",
  "__metadata__",
  " ",
];

/** A structural mutation of the JSON header (a random field of a random entry), re-encoded. */
function mutateJson(base: Uint8Array): Uint8Array {
  const { text, data } = split(base);
  // biome-ignore lint/suspicious/noExplicitAny: the mutations reach into arbitrary JSON on purpose
  const obj = JSON.parse(text) as Record<string, any>;
  const names = Object.keys(obj);
  const name = names.length > 0 ? pick(names) : "__metadata__";
  const entry = obj[name];
  const num = () => (rng() < 0.8 ? pick(interestingNumbers) : int(2 ** 20));
  switch (int(12)) {
    case 0:
      if (entry && typeof entry === "object" && "dtype" in entry)
        entry.dtype = rng() < 0.7 ? pick(dtypes) : pick(badDtypes);
      break;
    case 1:
      if (entry?.shape) entry.shape[int(entry.shape.length + 1)] = num();
      break;
    case 2:
      if (entry?.shape) rng() < 0.5 ? entry.shape.pop() : entry.shape.push(num());
      break;
    case 3:
      if (entry?.data_offsets) entry.data_offsets[int(2)] = num();
      break;
    case 4:
      if (entry?.data_offsets)
        entry.data_offsets = pick([
          [],
          [0],
          [0, 0, 0],
          "0,4",
          null,
          [entry.data_offsets[1], entry.data_offsets[0]],
        ]);
      break;
    case 5:
      if (entry && typeof entry === "object") delete entry[pick(["dtype", "shape", "data_offsets"])];
      break;
    case 6:
      obj[name] = pick([3, "x", null, [], {}, true]);
      break;
    case 7:
      obj.__metadata__ = pick([{ k: 1 }, { k: null }, ["a"], "meta", null, { a: "b", c: { d: "e" } }, {}]);
      break;
    case 8:
      obj[`extra${int(3)}`] = { dtype: pick(dtypes), shape: [int(4)], data_offsets: [num(), num()] };
      break;
    case 9:
      delete obj[name];
      break;
    case 10: {
      // two entries share a byte range
      const other = obj[pick(names.length > 0 ? names : ["__metadata__"])];
      if (entry?.data_offsets && other?.data_offsets) entry.data_offsets = [...other.data_offsets];
      break;
    }
    default:
      if (entry?.shape) entry.shape = entry.shape.map(() => num());
  }
  return assemble(JSON.stringify(obj), data, rng() < 0.7);
}

/** A textual mutation of the header: replace a number with an odd token, or splice JSON junk. */
function mutateText(base: Uint8Array): Uint8Array {
  const { text, data } = split(base);
  let out = text;
  if (rng() < 0.5) {
    const numbers = [...text.matchAll(/-?\d+(\.\d+)?(e[+-]?\d+)?/g)];
    if (numbers.length > 0) {
      const m = pick(numbers);
      out = text.slice(0, m.index) + pick(numberTokens) + text.slice(m.index! + m[0].length);
    }
  } else {
    const at = int(text.length + 1);
    const cut = rng() < 0.5 ? int(4) : 0;
    out = text.slice(0, at) + pick(jsonJunk) + text.slice(at + cut);
  }
  return assemble(out, data, rng() < 0.5);
}

function flipBits(base: Uint8Array): Uint8Array {
  const out = base.slice();
  const headerEnd = Math.min(out.length, 8 + headerLengthOf(base) + 8);
  for (let k = 1 + int(4); k > 0; k--) {
    const pos = rng() < 0.7 ? int(headerEnd) : int(out.length);
    out[pos]! ^= 1 << int(8);
  }
  return out;
}

function setHeaderLength(base: Uint8Array): Uint8Array {
  const out = base.slice();
  const n = headerLengthOf(base);
  const choices = [0n, 1n, 2n, BigInt(n - 1), BigInt(n + 1), BigInt(out.length - 8), BigInt(out.length - 7)];
  choices.push(
    BigInt(int(out.length)),
    2n ** 32n + BigInt(n),
    100_000_000n,
    100_000_001n,
    2n ** 53n,
    2n ** 64n - 1n,
  );
  choices.push(BigInt(int(2 ** 30)) * BigInt(int(2 ** 30)) + BigInt(int(2 ** 30)));
  new DataView(out.buffer).setBigUint64(0, pick(choices) & (2n ** 64n - 1n), true);
  return out;
}

function resizeData(base: Uint8Array): Uint8Array {
  const k = 1 + int(9);
  if (rng() < 0.5 || base.length <= k) {
    const out = new Uint8Array(base.length + k);
    out.set(base);
    for (let i = base.length; i < out.length; i++) out[i] = int(256);
    return out;
  }
  return base.slice(0, base.length - k);
}

function garbage(): Uint8Array {
  const out = new Uint8Array(int(64));
  for (let i = 0; i < out.length; i++) out[i] = int(256);
  if (out.length >= 8 && rng() < 0.5) new DataView(out.buffer).setBigUint64(0, BigInt(int(out.length)), true);
  return out;
}

function mutate(base: Uint8Array): Uint8Array {
  switch (int(8)) {
    case 0:
      return flipBits(base);
    case 1:
      return base.slice(0, int(base.length));
    case 2:
      return setHeaderLength(base);
    case 3:
    case 4:
      return mutateJson(base);
    case 5:
      return mutateText(base);
    case 6:
      return resizeData(base);
    default:
      return rng() < 0.3 ? garbage() : mutateJson(mutateJson(base));
  }
}

/** After a successful parse: every tensor matches its header entry and holds exactly its bytes from the file. */
function checkConsistent(bytes: Uint8Array, parsed: ReturnType<typeof parseSafetensors>): void {
  const n = headerLengthOf(bytes);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  assert.deepEqual([...parsed.tensors.keys()].sort(), names.sort());
  let covered = 0;
  for (const name of names) {
    const {
      dtype,
      shape,
      data_offsets: [begin, end],
    } = header[name];
    const t = parsed.tensors.get(name)!;
    assert.deepEqual(t.shape, shape);
    assert.equal(
      t.size,
      shape.reduce((a: number, b: number) => a * b, 1),
    );
    covered += end - begin;
    if (dtype !== "F64" && dtype !== "U16" && dtype !== "U32") {
      const data = t.dataSync();
      const got = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      assert.ok(Buffer.from(got).equals(bytes.subarray(8 + n + begin, 8 + n + end)), `${name} bytes`);
    }
  }
  assert.equal(covered, bytes.length - 8 - n, "tensors cover the data section");
}

describe("safetensors fuzz", () => {
  it(`${CASES} mutated files parse consistently or throw SafetensorsError`, { timeout: 60_000 }, () => {
    const bases = baseFiles();
    for (const b of bases) checkConsistent(b, parseSafetensors(b));
    const dir = mkdtempSync(join(tmpdir(), "diffuse-fuzz-"));
    const path = join(dir, "case.safetensors");
    const outcomes = { parsed: 0, rejected: 0 };
    let peakArrayBuffers = 0;
    const started = Date.now();
    try {
      for (let i = 0; i < CASES; i++) {
        const bytes = mutate(pick(bases));
        const where = `case ${i} (${Buffer.from(bytes.subarray(0, 200)).toString("latin1")})`;
        let ok = false;
        try {
          const parsed = parseSafetensors(bytes);
          checkConsistent(bytes, parsed);
          ok = true;
          outcomes.parsed++;
        } catch (err) {
          if (!(err instanceof SafetensorsError)) assert.fail(`${where}: threw ${err}`);
          outcomes.rejected++;
        }
        if (i % FILE_EVERY === 0) {
          writeFileSync(path, bytes);
          try {
            const file = openSafetensorsSync(path);
            try {
              for (const k of file.keys()) file.get(k);
            } finally {
              file.close();
            }
            assert.ok(ok, `${where}: the file reader accepted what the buffer parser rejected`);
          } catch (err) {
            if (!(err instanceof SafetensorsError)) assert.fail(`${where}: file reader threw ${err}`);
            assert.ok(
              !ok,
              `${where}: the file reader rejected what the buffer parser accepted: ${err.message}`,
            );
          }
        }
        if (i % 500 === 0) peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // both outcomes must be well represented, or the mutations are not exercising the parser
    assert.ok(outcomes.parsed > CASES / 50, `only ${outcomes.parsed} mutated files parsed`);
    assert.ok(outcomes.rejected > CASES / 2, `only ${outcomes.rejected} mutated files were rejected`);
    assert.ok(peakArrayBuffers < 256 * 2 ** 20, `array buffers peaked at ${peakArrayBuffers} bytes`);
    assert.ok(Date.now() - started < 30_000, "fuzzing took too long");
  });
});
