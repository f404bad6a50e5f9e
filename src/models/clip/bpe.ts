// Building blocks of CLIP's byte-level BPE (Radford et al. 2021, "Learning Transferable Visual Models From Natural
// Language Supervision"; GPT-2's byte-level BPE, Radford et al. 2019): text cleanup, pre-tokenisation, the
// byte <-> unicode table, the merge loop and merges.txt. Behaviour follows transformers' slow CLIPTokenizer
// without ftfy.
import { ArgumentError, DiffuseError } from "../../tensor/errors.js";

/** A tokenizer folder or file was missing, unreadable or malformed; the message names the file. */
export class TokenizerError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** End-of-word marker appended to the last symbol of every word. */
export const END_OF_WORD = "</w>";

/**
 * CLIP's pre-tokenisation pattern (compiled case-insensitive, as in CLIP): the two special tokens, English
 * contractions, runs of letters, single digits, runs of other non-space characters.
 */
const PRE_TOKENIZE =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/**
 * byte -> printable character table of GPT-2/CLIP: the 188 printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100 onwards in byte order, so that no symbol is whitespace or a control character.
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const table = new Array<string>(256);
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : next++);
  return table;
})();

const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: false });

/** The UTF-8 bytes of `text`, each written as its {@link BYTE_TO_CHAR} symbol. */
export function bytesToSymbols(text: string): string {
  let out = "";
  for (const b of utf8Encoder.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

/**
 * Inverse of {@link bytesToSymbols}: symbols back to bytes, decoded as UTF-8 with invalid sequences replaced by
 * U+FFFD (Python's `errors="replace"`). A character outside the byte table stands for its own UTF-8 bytes.
 */
export function symbolsToText(symbols: string): string {
  const bytes: number[] = [];
  for (const ch of symbols) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b !== undefined) bytes.push(b);
    else bytes.push(...utf8Encoder.encode(ch));
  }
  return utf8Decoder.decode(new Uint8Array(bytes));
}

const CONTROL = /^\p{C}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;

/** CJK ideograph blocks that BERT's BasicTokenizer surrounds with spaces. */
function isCjkIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/**
 * Text cleanup of transformers' CLIPTokenizer when ftfy is not installed (BERT's BasicTokenizer with
 * strip_accents=False and no punctuation splitting): drop NUL, U+FFFD and control/format characters (category C),
 * turn tab/newline/CR and space separators (Zs) into spaces, put spaces around CJK ideographs, NFC-normalise,
 * split on whitespace, lower-case each word, join with single spaces. No HTML unescaping (that is ftfy's path).
 */
export function cleanText(text: string): string {
  let cleaned = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0 || cp === 0xfffd) continue;
    if (ch === " " || ch === "\t" || ch === "\n" || ch === "\r" || SPACE_SEPARATOR.test(ch)) cleaned += " ";
    else if (CONTROL.test(ch)) continue;
    else cleaned += isCjkIdeograph(cp) ? ` ${ch} ` : ch;
  }
  // Python's str.split() also splits on the line/paragraph separators U+2028/U+2029 (the only whitespace left).
  return cleaned
    .normalize("NFC")
    .split(/[ \u2028\u2029]+/)
    .filter((w) => w.length > 0)
    .map((w) => w.toLowerCase())
    .join(" ");
}

/**
 * Splits cleaned text with CLIP's pattern. U+0345 (combining ypogegrammeni) is matched by no alternative of the
 * Python `regex` pattern (it is not a letter, yet case-folds to one), so Python skips it like whitespace; the
 * JavaScript engine would count it as a letter, hence it is turned into a space first.
 */
export function preTokenize(cleaned: string): string[] {
  return Array.from(cleaned.replace(/\u0345/g, " ").matchAll(PRE_TOKENIZE), (m) => m[0]);
}

/** How many words the BPE cache keeps before it starts over (bounds memory in long-running processes). */
const CACHE_LIMIT = 50_000;

/**
 * The BPE merge loop over byte symbols: a word starts as single symbols with {@link END_OF_WORD} on the last one;
 * the adjacent pair of lowest merge rank is merged everywhere (left to right, non-overlapping) until no adjacent
 * pair has a rank. Results are cached per word.
 */
export class BytePairEncoder {
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, readonly string[]>();

  /** `merges` in priority order (index = rank); a pair listed twice keeps its later rank, as a Python dict does. */
  constructor(merges: Iterable<readonly [string, string]>) {
    let rank = 0;
    for (const [a, b] of merges) this.ranks.set(pairKey(a, b), rank++);
  }

  /** Number of distinct merge rules. */
  get size(): number {
    return this.ranks.size;
  }

  /** The BPE symbols of one pre-tokenised word already written as byte symbols. */
  encodeWord(word: string): readonly string[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const symbols = Array.from(word);
    if (symbols.length === 0) return [];
    symbols[symbols.length - 1] += END_OF_WORD;
    let parts = symbols;
    while (parts.length > 1) {
      let best = Number.POSITIVE_INFINITY;
      let first = "";
      let second = "";
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = this.ranks.get(pairKey(parts[i]!, parts[i + 1]!));
        if (r !== undefined && r < best) {
          best = r;
          first = parts[i]!;
          second = parts[i + 1]!;
        }
      }
      if (best === Number.POSITIVE_INFINITY) break;
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (parts[i] === first && i + 1 < parts.length && parts[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(parts[i]!);
        }
      }
      parts = merged;
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(word, parts);
    return parts;
  }
}

// Symbols never contain a space (byte 0x20 is written as U+0120), so a space separates the pair unambiguously.
function pairKey(a: string, b: string): string {
  return `${a} ${b}`;
}

/** transformers reads at most 49152 - 256 - 2 merges from merges.txt (CLIP's vocabulary size minus bytes/specials). */
const MAX_MERGES = 49152 - 256 - 2;

/**
 * merges.txt as transformers reads it: whole text stripped, the `#version` header line dropped, at most 48894
 * lines of "a b" in rank order. (transformers drops the first line even without a header; we keep a merge there.)
 */
export function parseMergesTxt(text: string, file: string): [string, string][] {
  const lines = text.trim().split("\n");
  const first = lines[0]?.startsWith("#version") ? 1 : 0;
  const merges: [string, string][] = [];
  for (let i = first; i < Math.min(lines.length, first + MAX_MERGES); i++) {
    const parts = lines[i]!.trim().split(/\s+/).filter(Boolean);
    if (parts.length === 0) continue;
    if (parts.length !== 2) {
      throw new TokenizerError(
        `${file}: line ${i + 1}: expected two symbols separated by a space, found ${JSON.stringify(lines[i])}`,
      );
    }
    merges.push([parts[0]!, parts[1]!]);
  }
  return merges;
}

/** One merge rule given as "a b" or ["a", "b"]; anything else is an error naming `what`. */
export function toPair(
  m: unknown,
  what: string,
  Err: new (msg: string) => Error = ArgumentError,
): [string, string] {
  if (typeof m === "string") {
    const parts = m.split(" ");
    if (parts.length === 2 && parts[0] && parts[1]) return [parts[0], parts[1]];
  } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
    return [m[0], m[1]];
  }
  throw new Err(`${what}: expected a merge "a b" or ["a", "b"], found ${JSON.stringify(m)}`);
}

// Python's str.isspace() set, for str.strip(): differs from String.prototype.trim (U+FEFF, U+001C..U+001F, U+0085).
const PY_SPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002,
  0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/**
 * BPE tokens back to text (CLIPTokenizer.convert_tokens_to_string): symbols to UTF-8 bytes, decoded with
 * replacement, `</w>` to spaces, then stripped as Python's str.strip() does.
 */
export function symbolsToString(tokens: readonly string[]): string {
  const text = symbolsToText(tokens.join("")).replaceAll(END_OF_WORD, " ");
  let a = 0;
  let b = text.length;
  while (a < b && PY_SPACE.has(text.charCodeAt(a))) a++;
  while (b > a && PY_SPACE.has(text.charCodeAt(b - 1))) b--;
  return text.slice(a, b);
}

/** transformers' clean_up_tokenization: drops the space before punctuation and English contractions. */
export function cleanUpTokenization(s: string): string {
  return s
    .replaceAll(" .", ".")
    .replaceAll(" ?", "?")
    .replaceAll(" !", "!")
    .replaceAll(" ,", ",")
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}
