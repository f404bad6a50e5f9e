import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Generator } from "../../../src/tensor/generator.js";
import { emojiCaption, emojiSubset, loadEmoji } from "../../../src/train/data/emoji.js";

describe("loadEmoji", () => {
  const set = loadEmoji(16);

  it("reads every Google emoji image with its CLDR name, one class per base emoji", () => {
    assert.equal(set.count, 3786); // emoji-datasource-google 16.0.0: 1,911 emoji + 1,875 skin-tone variants
    assert.equal(set.classNames.length, 1911);
    assert.equal(new Set(set.classNames).size, 1911, "class names are unique");
    assert.equal(set.images.length, set.count * 3 * 16 * 16);
    const heart = set.entries.find((e) => e.label === "red heart");
    assert.ok(heart, "red heart is there");
    assert.deepEqual(heart.tones, []);
    const wave = set.entries.find((e) => e.label === "waving hand: medium-dark skin tone");
    assert.ok(wave);
    assert.equal(wave.baseLabel, "waving hand");
    assert.deepEqual(wave.tones, ["medium-dark skin tone"]);
    assert.equal(set.classNames[wave.classIndex], "waving hand");
  });

  it("composites on white: values in [-1, 1], corners white", () => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of set.images) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    assert.ok(lo >= -1 && hi <= 1, `range [${lo}, ${hi}]`);
    const i = set.entries.findIndex((e) => e.label === "red heart");
    const plane = 16 * 16;
    for (let c = 0; c < 3; c++)
      assert.equal(set.images[i * 3 * plane + c * plane], 1, "top-left pixel is white");
    // the heart's centre is red: R high, G and B low
    const centre = i * 3 * plane + 8 * 16 + 8;
    assert.ok(
      set.images[centre]! > 0.5 && set.images[centre + plane]! < 0 && set.images[centre + 2 * plane]! < 0,
    );
  });

  it("refuses a size it cannot make", () => {
    assert.throws(() => loadEmoji(48), /size must be one of 16, 32, 64, got 48/);
  });

  it("draws captions from the names, deterministically per generator, naming skin tones", () => {
    const wave = set.entries.find((e) => e.label === "waving hand: dark skin tone")!;
    const draw = (seed: number) => {
      const g = new Generator(seed);
      return Array.from({ length: 40 }, () => emojiCaption(wave, g));
    };
    assert.deepEqual(draw(3), draw(3));
    const captions = draw(3);
    assert.ok(captions.includes("waving hand: dark skin tone"), "the CLDR name is the usual caption");
    assert.ok(new Set(captions).size > 2, "captions vary");
    for (const c of captions) assert.match(c, /dark skin tone/);
  });

  it("takes subsets in the given order", () => {
    const sub = emojiSubset(set, [5, 2]);
    assert.equal(sub.count, 2);
    assert.equal(sub.entries[0], set.entries[5]);
    assert.deepEqual(
      Array.from(sub.images.subarray(0, 768)),
      Array.from(set.images.subarray(5 * 768, 6 * 768)),
    );
    assert.throws(() => emojiSubset(set, [set.count]), /index 3786 is not an image/);
  });
});
