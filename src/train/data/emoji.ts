// The Noto emoji images of the `emoji-datasource-google` npm package (img/google/64/*.png, one per emoji and skin
// tone), composited on white and box-filtered to the training size, with their names: the CLDR label and keywords
// of `emojibase-data` (en/data.json), the package's short names and Unicode name. Each image's class is its base
// emoji (a skin-tone variant shares the class of the emoji it varies); captions are drawn per use from the names.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { decodeImage } from "../../io/image.js";
import { ArgumentError } from "../../tensor/errors.js";
import type { Generator } from "../../tensor/generator.js";

/** One image of the set. */
export interface EmojiEntry {
  /** CLDR name of this image, e.g. "waving hand: medium-dark skin tone" (the default caption). */
  readonly label: string;
  /** CLDR name of the base emoji ("waving hand"): the class name. */
  readonly baseLabel: string;
  /** Index of the base emoji in {@link EmojiSet.classNames}. */
  readonly classIndex: number;
  /** Skin tones named in the label ("medium-dark skin tone"), empty for the base image. */
  readonly tones: readonly string[];
  /** Other names of the base emoji: short names ("wave"), the Unicode name ("waving hand sign"). */
  readonly altNames: readonly string[];
  /** emojibase keywords of the base emoji ("hello", "hi", ...). */
  readonly tags: readonly string[];
  /** Category and subcategory words ("people body", "hand fingers open"). */
  readonly category: string;
  /** The image's file in the package ("1f44b-1f3fe.png"). */
  readonly file: string;
}

/** The emoji images and their names. */
export interface EmojiSet {
  /** [count * 3 * size * size] RGB planes in [-1, 1] (white background = 1). */
  readonly images: Float32Array;
  /** [count] class of each image (index into classNames). */
  readonly labels: Int32Array;
  readonly count: number;
  /** Side of the images. */
  readonly size: number;
  readonly entries: readonly EmojiEntry[];
  /** The base emoji's CLDR names, one per class. */
  readonly classNames: readonly string[];
}

interface DatasourceEmoji {
  name: string | null;
  unified: string;
  image: string;
  short_names: string[];
  category: string;
  subcategory: string;
  sort_order: number;
  has_img_google: boolean;
  skin_variations?: Record<string, { unified: string; image: string; has_img_google: boolean }>;
}

interface EmojibaseEmoji {
  label: string;
  hexcode: string;
  tags?: string[];
  skins?: { label: string; hexcode: string }[];
}

/** Sides {@link loadEmoji} can produce from the 64 x 64 sources. */
export const EMOJI_SIZES = [16, 32, 64] as const;

function packageDir(name: string): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch (err) {
    throw new ArgumentError(
      `loadEmoji: the "${name}" package is not installed (npm install --save-dev ${name}): ${(err as Error).message}`,
    );
  }
}

/** A hexcode without emoji presentation selectors, as the two packages write them differently. */
function key(hex: string): string {
  return hex
    .toUpperCase()
    .split("-")
    .filter((p) => p !== "FE0F")
    .join("-");
}

function words(s: string): string {
  return s
    .toLowerCase()
    .replace(/[&_-]+/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

/** Composites RGBA on white and box-filters a `src` x `src` image to `size` x `size` RGB planes in [-1, 1]. */
function putImage(rgba: Uint8Array, src: number, size: number, dst: Float32Array, slot: number): void {
  const f = src / size;
  const plane = size * size;
  const base = slot * 3 * plane;
  const norm = 1 / (f * f * 255);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let dy = 0; dy < f; dy++) {
        for (let dx = 0; dx < f; dx++) {
          const p = ((y * f + dy) * src + x * f + dx) * 4;
          const a = rgba[p + 3]! / 255;
          r += rgba[p]! * a + 255 * (1 - a);
          g += rgba[p + 1]! * a + 255 * (1 - a);
          b += rgba[p + 2]! * a + 255 * (1 - a);
        }
      }
      const i = base + y * size + x;
      dst[i] = r * norm * 2 - 1;
      dst[i + plane] = g * norm * 2 - 1;
      dst[i + 2 * plane] = b * norm * 2 - 1;
    }
  }
}

const cache = new Map<number, EmojiSet>();

/**
 * Every Google emoji image with its names, at `size` x `size` (16, 32 or 64), in the packages' sort order; cached
 * per size. Needs the `emoji-datasource-google` and `emojibase-data` packages (dev dependencies).
 */
export function loadEmoji(size = 32): EmojiSet {
  if (!(EMOJI_SIZES as readonly number[]).includes(size)) {
    throw new ArgumentError(`loadEmoji: size must be one of ${EMOJI_SIZES.join(", ")}, got ${size}`);
  }
  const hit = cache.get(size);
  if (hit) return hit;
  const ds = packageDir("emoji-datasource-google");
  const base = packageDir("emojibase-data");
  const list = JSON.parse(readFileSync(join(ds, "emoji.json"), "utf8")) as DatasourceEmoji[];
  const cldr = JSON.parse(readFileSync(join(base, "en", "data.json"), "utf8")) as EmojibaseEmoji[];
  const byHex = new Map<string, { label: string; tags: string[] }>();
  for (const e of cldr) {
    byHex.set(key(e.hexcode), { label: e.label, tags: e.tags ?? [] });
    for (const s of e.skins ?? []) byHex.set(key(s.hexcode), { label: s.label, tags: e.tags ?? [] });
  }
  list.sort((a, b) => a.sort_order - b.sort_order);
  const entries: EmojiEntry[] = [];
  const classNames: string[] = [];
  const seen = new Set<string>();
  for (const e of list) {
    if (!e.has_img_google) continue;
    const own = byHex.get(key(e.unified));
    let baseLabel = own?.label ?? words(e.name ?? e.short_names[0] ?? e.unified);
    // a few Unicode names repeat in CLDR's list under another code point: keep class names unique
    if (seen.has(baseLabel)) baseLabel = `${baseLabel} (${e.short_names[0] ?? e.unified.toLowerCase()})`;
    seen.add(baseLabel);
    const classIndex = classNames.length;
    classNames.push(baseLabel);
    const altNames = [...new Set([...e.short_names.map(words), ...(e.name ? [words(e.name)] : [])])].filter(
      (n) => n !== baseLabel,
    );
    const common = {
      baseLabel,
      classIndex,
      altNames,
      tags: own?.tags ?? [],
      category: `${words(e.category)}, ${words(e.subcategory)}`,
    };
    entries.push({ ...common, label: baseLabel, tones: [], file: e.image });
    for (const v of Object.values(e.skin_variations ?? {})) {
      if (!v.has_img_google) continue;
      const label = byHex.get(key(v.unified))?.label ?? baseLabel;
      const tones = label.includes(": ")
        ? label
            .slice(label.indexOf(": ") + 2)
            .split(", ")
            .filter((t) => t.endsWith("skin tone"))
        : [];
      entries.push({ ...common, label, tones, file: v.image });
    }
  }
  const count = entries.length;
  const images = new Float32Array(count * 3 * size * size);
  const labels = new Int32Array(count);
  const dir = join(ds, "img", "google", "64");
  entries.forEach((entry, i) => {
    const path = join(dir, entry.file);
    const img = decodeImage(readFileSync(path), path);
    if (img.width !== 64 || img.height !== 64 || img.channels !== 4) {
      throw new ArgumentError(
        `loadEmoji: ${path}: expected a 64x64 RGBA PNG, got ${img.width}x${img.height}x${img.channels}`,
      );
    }
    putImage(img.data, 64, size, images, i);
    labels[i] = entry.classIndex;
  });
  const set: EmojiSet = { images, labels, count, size, entries, classNames };
  cache.set(size, set);
  return set;
}

/**
 * A caption for one image, varied per call: mostly the CLDR name ("waving hand: medium-dark skin tone"), else a
 * short or Unicode name or a keyword phrase, with the skin tones named; the draw comes from `generator`.
 */
export function emojiCaption(entry: EmojiEntry, generator: Generator): string {
  const draw = generator.uniform(2);
  const u = draw[0]!;
  const v = draw[1]!;
  const tone = entry.tones.length > 0 ? `, ${entry.tones.join(", ")}` : "";
  const pick = <T>(xs: readonly T[]): T => xs[Math.min(xs.length - 1, Math.floor(v * xs.length))]!;
  if (u < 0.55 || (entry.altNames.length === 0 && entry.tags.length === 0)) return entry.label;
  if (u < 0.75 && entry.altNames.length > 0) return `${pick(entry.altNames)}${tone}`;
  if (u < 0.9 && entry.tags.length > 0) return `${entry.baseLabel}${tone}, ${pick(entry.tags)}`;
  return `${entry.baseLabel}${tone}, ${entry.category}`;
}

/** The images `indices` of `set` (in that order), with the same class list. */
export function emojiSubset(set: EmojiSet, indices: readonly number[]): EmojiSet {
  const per = 3 * set.size * set.size;
  const images = new Float32Array(indices.length * per);
  indices.forEach((i, k) => {
    if (!(Number.isInteger(i) && i >= 0 && i < set.count))
      throw new ArgumentError(`emojiSubset: index ${i} is not an image of the set (0..${set.count - 1})`);
    images.set(set.images.subarray(i * per, (i + 1) * per), k * per);
  });
  const entries = indices.map((i) => set.entries[i]!);
  return {
    images,
    labels: Int32Array.from(entries, (e) => e.classIndex),
    count: indices.length,
    size: set.size,
    entries,
    classNames: set.classNames,
  };
}
