// Captioned image sets for LoRA training: a folder of images with same-name .txt captions or a JSON lines list,
// read one image at a time (alpha over white, center square, resized) into [-1, 1] planes; clear errors for a
// missing folder, no images, an image without caption, a bad JSON line and an unreadable image.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Image, writePng } from "../../../src/io/image.js";
import { ImageError } from "../../../src/io/image-errors.js";
import {
  DatasetError,
  listCaptionedImages,
  readTrainingImage,
  readTrainingImages,
} from "../../../src/train/data/image-captions.js";

function solid(width: number, height: number, rgb: number[], channels: 3 | 4 = 3, alpha = 255): Image {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    data.set(channels === 4 ? [...rgb, alpha] : rgb, i * channels);
  }
  return { width, height, channels, data };
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "diffuse-captions-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("listCaptionedImages", () => {
  it("a folder: images in name order with their .txt captions (trimmed); other files ignored", () => {
    const d = join(dir, "ok");
    mkdirSync(d);
    writePng(join(d, "b.png"), solid(4, 4, [0, 0, 0]));
    writePng(join(d, "a.PNG"), solid(4, 4, [0, 0, 0]));
    writeFileSync(join(d, "a.txt"), "  a red square\n");
    writeFileSync(join(d, "b.txt"), "a black square");
    writeFileSync(join(d, "notes.md"), "ignored");
    const set = listCaptionedImages(d);
    assert.deepEqual(
      set.items.map((i) => [i.file, i.caption]),
      [
        [join(d, "a.PNG"), "a red square"],
        [join(d, "b.png"), "a black square"],
      ],
    );
  });

  it("a JSON lines file: file (or file_name) relative to its folder, and text", () => {
    const d = join(dir, "jsonl");
    mkdirSync(join(d, "img"), { recursive: true });
    writePng(join(d, "img", "x.png"), solid(2, 2, [9, 9, 9]));
    writePng(join(d, "y.png"), solid(2, 2, [9, 9, 9]));
    const list = join(d, "metadata.jsonl");
    writeFileSync(list, '{"file": "img/x.png", "text": "an x"}\n\n{"file_name": "y.png", "text": "a y"}\n');
    assert.deepEqual(
      listCaptionedImages(list).items.map((i) => [i.file, i.caption]),
      [
        [join(d, "img", "x.png"), "an x"],
        [join(d, "y.png"), "a y"],
      ],
    );
  });

  it("errors say what is wrong and what to do", () => {
    const err = (path: string, re: RegExp) =>
      assert.throws(
        () => listCaptionedImages(path),
        (e: Error) => e instanceof DatasetError && re.test(e.message),
      );
    err(join(dir, "missing"), /does not exist; --data takes a folder/);
    const empty = join(dir, "empty");
    mkdirSync(empty);
    writeFileSync(join(empty, "a.txt"), "a caption without image");
    err(empty, /no images \(\.png, \.jpg, \.jpeg\)/);
    const uncaptioned = join(dir, "uncaptioned");
    mkdirSync(uncaptioned);
    writePng(join(uncaptioned, "a.png"), solid(2, 2, [0, 0, 0]));
    writePng(join(uncaptioned, "b.png"), solid(2, 2, [0, 0, 0]));
    writeFileSync(join(uncaptioned, "a.txt"), "a");
    err(uncaptioned, /1 of 2 images have no caption file: b\.png; write each image's caption into a \.txt/);
    writeFileSync(join(uncaptioned, "b.txt"), " \n");
    err(uncaptioned, /empty caption files: b\.txt/);
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, '{"file": "x.png", "text": "x"\n');
    err(bad, /bad\.jsonl line 1: not valid JSON/);
    writeFileSync(bad, '{"image": "x.png"}\n');
    err(bad, /line 1: expected \{"file": "image.png", "text": "its caption"\}/);
    writeFileSync(bad, '{"file": "nowhere.png", "text": "x"}\n');
    err(bad, /line 1: image .*nowhere\.png does not exist/);
    const notList = join(dir, "list.txt");
    writeFileSync(notList, "x");
    err(notList, /is a file but not a \.jsonl list/);
  });
});

describe("readTrainingImage", () => {
  it("composites alpha over white, takes the center square and maps 0..255 to [-1, 1]", () => {
    // 6 x 2: columns 0-1 red, 2-3 half-transparent blue, 4-5 green; the center square is columns 2-3
    const img: Image = { width: 6, height: 2, channels: 4, data: new Uint8Array(6 * 2 * 4) };
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 6; x++) {
        const px = x < 2 ? [255, 0, 0, 255] : x < 4 ? [0, 0, 255, 102] : [0, 255, 0, 255];
        img.data.set(px, (y * 6 + x) * 4);
      }
    }
    const file = join(dir, "wide.png");
    writePng(file, img);
    const planes = readTrainingImage(file, 2);
    // blue at alpha 0.4 over white: (255 * 0.6, 255 * 0.6, 255) = (153, 153, 255)
    const r = (153 / 255) * 2 - 1;
    assert.deepEqual(Array.from(planes), [r, r, r, r, r, r, r, r, 1, 1, 1, 1].map(Math.fround));
  });

  it("resizes to the model's size; batches stack in order; unreadable files name themselves", () => {
    const d = join(dir, "batch");
    mkdirSync(d);
    writePng(join(d, "a.png"), solid(8, 8, [255, 255, 255]));
    writePng(join(d, "b.png"), solid(8, 8, [0, 0, 0]));
    writeFileSync(join(d, "a.txt"), "white");
    writeFileSync(join(d, "b.txt"), "black");
    const set = listCaptionedImages(d);
    const px = readTrainingImages(set, 0, 2, 4);
    assert.equal(px.length, 2 * 3 * 16);
    assert.ok(px.subarray(0, 48).every((v) => v === 1));
    assert.ok(px.subarray(48).every((v) => v === -1));
    writeFileSync(join(d, "b.png"), "not an image");
    assert.throws(
      () => readTrainingImages(set, 0, 2, 4),
      (e: Error) => e instanceof ImageError && /b\.png: not a PNG or JPEG/.test(e.message),
    );
  });
});
