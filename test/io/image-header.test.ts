// Image sizes from PNG / JPEG headers, checked before decoding: a 33-byte PNG claiming 20000x20000 is refused
// without a pixel decoded.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import jpeg from "jpeg-js";
import { checkImageHeader, decodeImage, encodePng, ImageError, readImageHeader } from "../../src/io/image.js";
import { pngHeaderOnly } from "../helpers.js";

describe("image headers", () => {
  it("reads the size of real PNG and JPEG files", () => {
    const data = new Uint8Array(7 * 5 * 3).fill(100);
    assert.deepEqual(readImageHeader(encodePng({ width: 7, height: 5, channels: 3, data })), {
      format: "png",
      width: 7,
      height: 5,
    });
    const rgba = Buffer.alloc(9 * 4 * 4, 200);
    const jpg = jpeg.encode({ data: rgba, width: 9, height: 4 }, 80).data;
    assert.deepEqual(readImageHeader(jpg), { format: "jpeg", width: 9, height: 4 });
  });

  it("refuses a PNG whose header claims 20000x20000 before decoding it", () => {
    const bomb = pngHeaderOnly(20000, 20000);
    assert.deepEqual(readImageHeader(bomb), { format: "png", width: 20000, height: 20000 });
    assert.throws(
      () => decodeImage(bomb, "bomb.png", { maxPixels: 4096 * 4096 }),
      (e: unknown) =>
        e instanceof ImageError &&
        /bomb.png: 20000x20000 = 400000000 pixels; at most 16777216/.test(e.message),
    );
    assert.throws(
      () => checkImageHeader(bomb, { maxPixels: 1e12, maxSide: 8192 }),
      /at most 8192 pixels a side/,
    );
  });

  it("names what it found when a file is neither PNG nor JPEG, or cut short", () => {
    assert.throws(() => readImageHeader(Buffer.from("GIF89a...")), /not a PNG or JPEG file/);
    assert.throws(() => readImageHeader(pngHeaderOnly(4, 4).subarray(0, 20)), /PNG without an IHDR/);
    assert.throws(
      () => readImageHeader(Buffer.from([0xff, 0xd8, 0xff, 0xd9])),
      /JPEG without a frame header/,
    );
  });
});
