// Learning a CLIP byte-level BPE vocabulary from a corpus (Sennrich et al. 2016, "Neural Machine Translation of
// Rare Words with Subword Units"): words are cleaned and split exactly as CLIPTokenizer does, then the most frequent
// adjacent symbol pair is merged, repeatedly. The result is CLIP's file layout — vocab.json (the 256 byte symbols,
// the same with the end-of-word marker, one entry per merge, then <|startoftext|> and <|endoftext|>) and merges.txt —
// so CLIPTokenizer loads it like OpenAI's.
import { ArgumentError } from "../../tensor/errors.js";
import { BYTE_TO_CHAR, bytesToSymbols, cleanText, END_OF_WORD, preTokenize } from "./bpe.js";

/** Options of {@link trainBpe}. */
export interface TrainBpeOptions {
  /** Merges to learn at most (fewer when no pair occurs `minFrequency` times any more). */
  merges: number;
  /** A pair is merged only while it occurs at least this often (default 2). */
  minFrequency?: number;
}

/** A learned vocabulary in CLIP's layout. */
export interface TrainedBpe {
  /** token -> id, as vocab.json. */
  vocab: Record<string, number>;
  /** Merges in rank order, as merges.txt's lines ("a b"). */
  merges: string[];
}

const SEP = "\u0000";

/** Learns merges over `texts` (each counted once per occurrence in the list). Deterministic: ties go to the pair seen first. */
export function trainBpe(texts: Iterable<string>, opts: TrainBpeOptions): TrainedBpe {
  if (!Number.isInteger(opts.merges) || opts.merges < 0) {
    throw new ArgumentError(`trainBpe: merges must be an integer >= 0, got ${opts.merges}`);
  }
  const minFrequency = opts.minFrequency ?? 2;
  // word (as symbols) -> count
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    for (const w of preTokenize(cleanText(text))) {
      const sym = bytesToSymbols(w);
      wordCounts.set(sym, (wordCounts.get(sym) ?? 0) + 1);
    }
  }
  const words: { symbols: string[]; count: number }[] = [];
  for (const [w, count] of wordCounts) {
    const symbols = Array.from(w);
    symbols[symbols.length - 1] += END_OF_WORD;
    words.push({ symbols, count });
  }
  const merges: string[] = [];
  for (let m = 0; m < opts.merges; m++) {
    // recounting every round is cheap for caption corpora (thousands of distinct words)
    const pairs = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const k = symbols[i] + SEP + symbols[i + 1];
        pairs.set(k, (pairs.get(k) ?? 0) + count);
      }
    }
    let best = "";
    let bestCount = minFrequency - 1;
    for (const [k, c] of pairs) {
      if (c > bestCount) {
        best = k;
        bestCount = c;
      }
    }
    if (best === "") break;
    const [a, b] = best.split(SEP) as [string, string];
    const joined = a + b;
    for (const w of words) {
      const s = w.symbols;
      if (s.length < 2) continue;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(joined);
          i++;
        } else out.push(s[i]!);
      }
      w.symbols = out;
    }
    merges.push(`${a} ${b}`);
  }
  const vocab: Record<string, number> = {};
  let id = 0;
  // CLIP's order: by symbol code point (the printable bytes as themselves first, then the remapped ones)
  const symbols = [...BYTE_TO_CHAR].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  for (const c of symbols) vocab[c] = id++;
  for (const c of symbols) vocab[c + END_OF_WORD] = id++;
  for (const m of merges) {
    const tok = m.replace(" ", "");
    if (!(tok in vocab)) vocab[tok] = id++;
  }
  vocab["<|startoftext|>"] = id++;
  vocab["<|endoftext|>"] = id++;
  return { vocab, merges };
}

/** merges.txt's text for {@link TrainedBpe.merges} (with the `#version` header CLIP's files have). */
export function mergesTxt(merges: readonly string[]): string {
  return `#version: 0.2\n${merges.join("\n")}\n`;
}
