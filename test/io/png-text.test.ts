// PNG text chunks on plain bytes (the browser entry's PNG support): tEXt for Latin-1 text, iTXt (UTF-8) otherwise,
// inserted after IHDR with valid CRCs (pngjs, which checks them, still decodes the file), read back unchanged;
// bad input is an ImageError or ArgumentError.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeImage, encodePng } from "../../src/io/image.js";
import { ImageError } from "../../src/io/image-errors.js";
import { addPngText, isPng, pngTextChunk, readPngText } from "../../src/io/png-text.js";
import { ArgumentError } from "../../src/tensor/errors.js";

const image = {
  width: 3,
  height: 2,
  channels: 3 as const,
  data: Uint8Array.from({ length: 18 }, (_, i) => i * 14),
};

describe("PNG text chunks", () => {
  it("adds tEXt and iTXt chunks that read back, and the PNG still decodes to the same pixels", () => {
    const plain = encodePng(image);
    const text = {
      parameters: "red heart\nSteps: 2, Seed: 11",
      Comment: "ÿ Latin-1",
      Title: "🍕 pizza — ünïcode",
    };
    const withText = addPngText(plain, text);
    assert.ok(isPng(withText));
    assert.deepEqual(readPngText(withText), text);
    const decoded = decodeImage(withText);
    assert.deepEqual(Array.from(decoded.data), Array.from(image.data));
    assert.deepEqual(decoded.text, text);
    // chunk types: Latin-1 text in tEXt, anything else in iTXt
    const types = (s: string) => String.fromCharCode(...pngTextChunk("k", s).subarray(4, 8));
    assert.equal(types("café"), "tEXt");
    assert.equal(types("日本"), "iTXt");
    // no text: the PNG as it was
    assert.equal(addPngText(plain, {}), plain);
  });

  it("encodePng writes the same bytes as addPngText on its plain PNG", () => {
    const text = { parameters: "a\nSteps: 1" };
    assert.deepEqual(new Uint8Array(encodePng(image, text)), addPngText(encodePng(image), text));
  });

  it("long texts survive (no argument-count limit when reading)", () => {
    const long = "x".repeat(200_000);
    assert.equal(readPngText(addPngText(encodePng(image), { parameters: long })).parameters, long);
  });

  it("refuses what is not a PNG, a truncated chunk and a bad keyword", () => {
    assert.throws(() => readPngText(Uint8Array.of(1, 2, 3)), ImageError);
    assert.throws(() => addPngText(Uint8Array.of(0xff, 0xd8, 0xff), { a: "b" }), /not a PNG file/);
    const cut = addPngText(encodePng(image), { parameters: "abc" }).subarray(0, 48);
    assert.throws(() => readPngText(cut), /truncated PNG: chunk tEXt runs past the end/);
    assert.throws(() => pngTextChunk("", "x"), ArgumentError);
    assert.throws(() => pngTextChunk("bad\u0000key", "x"), ArgumentError);
  });
});
