// CLIP's tokenizer as transformers' (slow) CLIPTokenizer runs it without ftfy: added/special tokens are split out
// of the raw text, the rest is cleaned, pre-tokenised and byte-level BPE'd; ids are wrapped in BOS ... EOS,
// truncated and padded like `tokenizer(text, padding="max_length", max_length=77, truncation=True)`.
import { describeFsError, IoError } from "../../io/errors.js";
import { type ModelSource, modelFolder } from "../../io/folder.js";
import { getFileSystem } from "../../io/source.js";
import { tensor } from "../../tensor/create.js";
import { ArgumentError } from "../../tensor/errors.js";
import type { Tensor } from "../../tensor/tensor.js";
import {
  BytePairEncoder,
  bytesToSymbols,
  cleanText,
  cleanUpTokenization,
  END_OF_WORD,
  parseMergesTxt,
  preTokenize,
  symbolsToString,
  TokenizerError,
  toPair,
} from "./bpe.js";

export { TokenizerError };

/** Special tokens and limits of a {@link CLIPTokenizer}; defaults are those of CLIPTokenizer. */
export interface CLIPTokenizerOptions {
  /** default `<|startoftext|>` */
  bosToken?: string;
  /** default `<|endoftext|>` */
  eosToken?: string;
  /** default `<|endoftext|>`; SD2/SDXL's second tokenizer uses `!` (id 0) */
  padToken?: string;
  /** id used for tokens missing from the vocabulary; default `<|endoftext|>` */
  unkToken?: string;
  /** default sequence length of {@link CLIPTokenizer.encode}; default 77 */
  modelMaxLength?: number;
  /** added tokens (content -> id), matched verbatim in the raw text before cleanup; `special` ones count as special */
  addedTokens?: readonly AddedToken[];
  /** `clean_up_tokenization_spaces` default of {@link CLIPTokenizer.decode}; default true */
  cleanUpTokenizationSpaces?: boolean;
}

/** How {@link CLIPTokenizer.encode} shapes the id sequence. */
export interface EncodeOptions {
  /** "max_length": pad to `maxLength`; "longest": pad to the longest row of a batch; false: no padding */
  padding?: "max_length" | "longest" | false;
  /** default: the tokenizer's `modelMaxLength` (77 for CLIP) */
  maxLength?: number;
  /** keep BOS, the first `maxLength - 2` token ids and EOS; default true */
  truncation?: boolean;
}

/** Options of {@link CLIPTokenizer.decode}. */
export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** default: the tokenizer's setting (true for CLIP configs) */
  cleanUpTokenizationSpaces?: boolean;
}

/** File contents of a tokenizer folder (text or already-parsed JSON); see {@link CLIPTokenizer.fromFiles}. */
export interface TokenizerFiles {
  "vocab.json"?: string | object;
  "merges.txt"?: string;
  "tokenizer.json"?: string | object;
  "tokenizer_config.json"?: string | object;
  "special_tokens_map.json"?: string | object;
}

/** A token matched verbatim in raw text before cleanup (transformers "added token"). */
export interface AddedToken {
  content: string;
  id: number;
  special?: boolean;
}
const EXPECTED_FILES =
  "vocab.json + merges.txt (transformers CLIPTokenizer) or tokenizer.json (HF tokenizers)";

/** CLIP's context length; used when a config has no (or transformers' "unlimited") model_max_length. */
const CLIP_CONTEXT = 77;
const FILE_NAMES = [
  "vocab.json",
  "merges.txt",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
] as const;
// The pattern's two special-token alternatives, which transformers' BPE cache maps to themselves.
const CLIP_SPECIALS = new Set(["<|startoftext|>", "<|endoftext|>"]);

/**
 * CLIP byte-level BPE tokenizer, id-for-id equal to transformers' CLIPTokenizer (installed without ftfy) and to
 * OpenAI CLIP's SimpleTokenizer for text without HTML entities or mojibake (which it repairs with ftfy).
 */
export class CLIPTokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  readonly modelMaxLength: number;
  private readonly vocab: ReadonlyMap<string, number>;
  private readonly idToTokenMap = new Map<number, string>();
  private readonly added = new Map<string, number>();
  private readonly addedById = new Map<number, string>();
  private readonly addedBySize: string[];
  private readonly specialIds = new Set<number>();
  private readonly nonSpecialAdded = new Set<string>();
  private readonly bpe: BytePairEncoder;
  private readonly cleanUpSpaces: boolean;

  /**
   * From in-memory data: `vocab` (token -> id, as vocab.json) and `merges` in rank order, each "a b" or [a, b]
   * (merges.txt lines without its `#version` header).
   */
  constructor(
    vocab: Readonly<Record<string, number>> | ReadonlyMap<string, number>,
    merges: Iterable<string | readonly [string, string]>,
    options: CLIPTokenizerOptions = {},
  ) {
    this.vocab = vocab instanceof Map ? new Map(vocab) : new Map(Object.entries(vocab));
    for (const [tok, id] of this.vocab) {
      if (!Number.isInteger(id) || id < 0)
        throw new ArgumentError(
          `vocab: id of ${JSON.stringify(tok)} must be a non-negative integer, found ${id}`,
        );
      this.idToTokenMap.set(id, tok);
    }
    this.bpe = new BytePairEncoder(Array.from(merges, (m, i) => toPair(m, `merge ${i}`)));
    this.modelMaxLength = options.modelMaxLength ?? CLIP_CONTEXT;
    checkLength(this.modelMaxLength, "modelMaxLength");
    this.cleanUpSpaces = options.cleanUpTokenizationSpaces ?? true;
    for (const t of options.addedTokens ?? []) {
      this.added.set(t.content, t.id);
      this.addedById.set(t.id, t.content);
      if (t.special) this.specialIds.add(t.id);
      else this.nonSpecialAdded.add(t.content);
    }
    const special = (role: string, tok: string): number => {
      let id = this.added.get(tok);
      if (id === undefined) {
        id = this.vocab.get(tok);
        if (id === undefined)
          throw new ArgumentError(`${role} token ${JSON.stringify(tok)} is not in the vocabulary`);
        this.added.set(tok, id);
        this.addedById.set(id, tok);
      }
      this.nonSpecialAdded.delete(tok);
      this.specialIds.add(id);
      return id;
    };
    this.bosTokenId = special("bos", options.bosToken ?? "<|startoftext|>");
    this.eosTokenId = special("eos", options.eosToken ?? "<|endoftext|>");
    this.unkTokenId = special("unk", options.unkToken ?? "<|endoftext|>");
    this.padTokenId = special("pad", options.padToken ?? "<|endoftext|>");
    // Longest first, so that at one position the longest added token wins (transformers' trie does the same).
    this.addedBySize = [...this.added.keys()].filter((t) => t.length > 0).sort((a, b) => b.length - a.length);
  }

  /**
   * Loads a tokenizer folder: `vocab.json` + `merges.txt` (transformers CLIPTokenizer files) or `tokenizer.json`
   * (HF tokenizers), plus `tokenizer_config.json` / `special_tokens_map.json` when present. `dir` is a path
   * (Node.js), a URL or a map of files (see ModelSource).
   */
  static async fromPretrained(dir: ModelSource): Promise<CLIPTokenizer> {
    const folder = modelFolder(dir);
    if (typeof dir === "string" && (await getFileSystem()?.isFile(dir)))
      throw new TokenizerError(`${dir}: expected a tokenizer folder, found a file`);
    try {
      await folder.list();
    } catch (err) {
      const why = err instanceof IoError && err.notFound ? "file not found" : describeFsError(err);
      throw new TokenizerError(`${folder.label}: cannot open the tokenizer folder (${why})`, { cause: err });
    }
    const files: TokenizerFiles = {};
    for (const name of FILE_NAMES) {
      try {
        const text = await folder.readText(name);
        if (text !== null) files[name] = text;
      } catch (err) {
        throw new TokenizerError(`${folder.describe(name)}: cannot read (${describeFsError(err)})`, {
          cause: err,
        });
      }
    }
    if ((files["vocab.json"] ?? files["merges.txt"] ?? files["tokenizer.json"] ?? null) === null) {
      const subs: string[] = [];
      for (const s of ["tokenizer", "tokenizer_2"])
        if (
          await folder
            .sub(s)
            .list()
            .catch(() => undefined)
        )
          subs.push(`${s}/`);
      const hint =
        subs.length > 0 ? ` (a diffusers pipeline folder? try its ${subs.join(" or ")} subfolder)` : "";
      throw new TokenizerError(`${folder.label}: no tokenizer files: expected ${EXPECTED_FILES}${hint}`);
    }
    return CLIPTokenizer.fromFiles(files, folder.label);
  }

  /**
   * From the contents of a tokenizer folder (works in browsers): `vocab.json` + `merges.txt`, or `tokenizer.json`;
   * `tokenizer_config.json` / `special_tokens_map.json` give the special tokens, model_max_length and
   * clean_up_tokenization_spaces. `where` (the folder) prefixes file names in error messages.
   */
  static fromFiles(files: TokenizerFiles, where = ""): CLIPTokenizer {
    const label = (name: string) => (where ? join2(where, name) : name);
    const json = (name: keyof TokenizerFiles) => asObject(parseJson(files[name], label(name)), label(name));
    const cfgFile = label("tokenizer_config.json");
    const cfg = json("tokenizer_config.json") ?? {};
    const specialMap = json("special_tokens_map.json");
    let vocab: Record<string, number>;
    let merges: (string | readonly [string, string])[];
    let added: AddedToken[] = [];
    if (files["vocab.json"] !== undefined || files["merges.txt"] !== undefined) {
      const [v, m] = [files["vocab.json"], files["merges.txt"]];
      if (v === undefined) throw new TokenizerError(`${label("vocab.json")}: missing (merges.txt needs it)`);
      if (m === undefined) throw new TokenizerError(`${label("merges.txt")}: missing (vocab.json needs it)`);
      vocab = checkVocab(parseJson(v, label("vocab.json")), label("vocab.json"));
      merges = parseMergesTxt(m, label("merges.txt"));
    } else if (files["tokenizer.json"] !== undefined) {
      ({ vocab, merges, added } = parseTokenizerJson(json("tokenizer.json"), label("tokenizer.json")));
    } else {
      throw new TokenizerError(`${where || "tokenizer files"}: expected ${EXPECTED_FILES}`);
    }
    const decoder = asObject(cfg.added_tokens_decoder, `${cfgFile} added_tokens_decoder`);
    for (const [id, tok] of Object.entries(decoder ?? {})) {
      const content = tokenContent(tok, cfgFile, `added_tokens_decoder.${id}`);
      if (content === undefined || !/^\d+$/.test(id)) {
        throw new TokenizerError(
          `${cfgFile}: added_tokens_decoder.${id}: expected an integer id and "content"`,
        );
      }
      added.push({ content, id: Number(id), special: (tok as { special?: unknown }).special !== false });
    }
    // transformers reads special_tokens_map.json only for legacy configs (no added_tokens_decoder); it then wins.
    const mapFile = label("special_tokens_map.json");
    const pick = (key: string): string | undefined =>
      (!decoder && specialMap ? tokenContent(specialMap[key], mapFile, key) : undefined) ??
      tokenContent(cfg[key], cfgFile, key);
    const maxLen = cfg.model_max_length;
    if (maxLen != null && (typeof maxLen !== "number" || !Number.isInteger(maxLen) || maxLen < 2)) {
      throw new TokenizerError(
        `${cfgFile}: model_max_length must be an integer >= 2, found ${JSON.stringify(maxLen)}`,
      );
    }
    const cleanUp = cfg.clean_up_tokenization_spaces;
    try {
      return new CLIPTokenizer(vocab, merges, {
        bosToken: pick("bos_token"),
        eosToken: pick("eos_token"),
        padToken: pick("pad_token"),
        unkToken: pick("unk_token"),
        // transformers writes ~1e30 for "no limit"; CLIP's position table has 77 rows whatever the file says.
        modelMaxLength: typeof maxLen === "number" && maxLen <= 1e6 ? maxLen : CLIP_CONTEXT,
        addedTokens: added,
        cleanUpTokenizationSpaces: typeof cleanUp === "boolean" ? cleanUp : true,
      });
    } catch (err) {
      if (err instanceof ArgumentError)
        throw new TokenizerError(`${where || "tokenizer"}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /** Number of entries in the base vocabulary (vocab.json), like `len(tokenizer.encoder)`. */
  get vocabSize(): number {
    return this.vocab.size;
  }

  /** The BPE tokens of `text` (no BOS/EOS), e.g. "a photo" -> ["a</w>", "photo</w>"]. */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const [chunk, isAdded] of this.splitAdded(text)) {
      if (isAdded) {
        out.push(chunk);
        continue;
      }
      for (const word of preTokenize(cleanText(chunk))) {
        if (CLIP_SPECIALS.has(word)) out.push(word);
        else out.push(...this.bpe.encodeWord(bytesToSymbols(word)));
      }
    }
    return out;
  }

  /** Id of a token: added tokens first, then the vocabulary, else the unknown-token id. */
  tokenToId(token: string): number {
    return this.added.get(token) ?? this.vocab.get(token) ?? this.unkTokenId;
  }

  /** Token of an id, or undefined when no token has it. */
  idToToken(id: number): string | undefined {
    return this.addedById.get(id) ?? this.idToTokenMap.get(id);
  }

  /**
   * Ids of `text`: BOS + BPE ids + EOS, truncated to keep BOS, the first `maxLength - 2` ids and EOS, then padded
   * with the pad id to `maxLength` (defaults: padding "max_length", maxLength = modelMaxLength, truncation on).
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const { padding, maxLength, truncation } = this.resolve(options);
    const ids = this.withSpecials(text, maxLength, truncation);
    return padding === "max_length" ? this.pad(ids, maxLength).ids : ids;
  }

  /**
   * Encodes several texts into `inputIds` and `attentionMask` (int64, [B, L]; mask 1 on BOS, tokens and EOS, 0 on
   * padding). L = maxLength with padding "max_length", the longest row with "longest"; without padding every row
   * must have the same length.
   */
  encodeBatch(
    texts: readonly string[],
    options: EncodeOptions = {},
  ): { inputIds: Tensor; attentionMask: Tensor } {
    const { padding, maxLength, truncation } = this.resolve(options);
    const rows = texts.map((t) => this.withSpecials(t, maxLength, truncation));
    let width: number;
    if (padding === "max_length") width = Math.max(maxLength, ...rows.map((r) => r.length));
    else if (padding === "longest") width = Math.max(0, ...rows.map((r) => r.length));
    else {
      width = rows[0]?.length ?? 0;
      const bad = rows.findIndex((r) => r.length !== width);
      if (bad >= 0)
        throw new ArgumentError(
          `encodeBatch: without padding all rows need the same length; row 0 has ${width} ids, row ${bad} has ${rows[bad]!.length}`,
        );
    }
    const ids = new BigInt64Array(rows.length * width);
    const mask = new BigInt64Array(rows.length * width);
    rows.forEach((row, b) => {
      const padded = this.pad(row, width);
      for (let j = 0; j < width; j++) {
        ids[b * width + j] = BigInt(padded.ids[j]!);
        mask[b * width + j] = BigInt(padded.mask[j]!);
      }
    });
    const shape = [rows.length, width];
    return {
      inputIds: tensor(ids, shape, { dtype: "int64" }),
      attentionMask: tensor(mask, shape, { dtype: "int64" }),
    };
  }

  /**
   * Text of `ids`: byte symbols back to UTF-8 (invalid bytes become U+FFFD), `</w>` to spaces, trimmed; special
   * tokens kept unless `skipSpecialTokens`; with clean-up, spaces before punctuation/contractions are removed.
   */
  decode(ids: Iterable<number | bigint>, options: DecodeOptions = {}): string {
    const parts: string[] = [];
    let run: string[] = [];
    // As transformers' _decode: runs of vocabulary tokens become text; a run cut short by a non-special added
    // token is kept only when non-empty, the final run always.
    const flush = (final: boolean) => {
      if (run.length === 0) return;
      const text = symbolsToString(run);
      if (final || text.length > 0) parts.push(text);
      run = [];
    };
    for (const raw of ids) {
      const id = Number(raw);
      if (options.skipSpecialTokens && this.specialIds.has(id)) continue;
      const token = this.idToToken(id);
      if (token === undefined)
        throw new ArgumentError(`decode: no token has id ${id} (vocabulary size ${this.vocab.size})`);
      if (this.nonSpecialAdded.has(token)) {
        flush(false);
        parts.push(token);
      } else run.push(token);
    }
    flush(true);
    const text = parts.join(" ");
    return (options.cleanUpTokenizationSpaces ?? this.cleanUpSpaces) ? cleanUpTokenization(text) : text;
  }

  private resolve(options: EncodeOptions): Required<EncodeOptions> {
    const padding = options.padding ?? "max_length";
    if (padding !== "max_length" && padding !== "longest" && padding !== false) {
      throw new ArgumentError(
        `encode: padding must be "max_length", "longest" or false, found ${JSON.stringify(padding)}`,
      );
    }
    const maxLength = options.maxLength ?? this.modelMaxLength;
    checkLength(maxLength, "encode: maxLength");
    return { padding, maxLength, truncation: options.truncation ?? true };
  }

  private withSpecials(text: string, maxLength: number, truncation: boolean): number[] {
    if (typeof text !== "string") throw new ArgumentError(`encode: expected a string, found ${typeof text}`);
    let ids = this.tokenize(text).map((t) => this.tokenToId(t));
    if (truncation && ids.length > maxLength - 2) ids = ids.slice(0, maxLength - 2);
    return [this.bosTokenId, ...ids, this.eosTokenId];
  }

  private pad(ids: number[], width: number): { ids: number[]; mask: number[] } {
    const n = Math.max(width, ids.length);
    const padded = ids.concat(new Array<number>(n - ids.length).fill(this.padTokenId));
    return { ids: padded, mask: padded.map((_, i) => (i < ids.length ? 1 : 0)) };
  }

  /** Splits raw text around added tokens (leftmost match, longest at a position): [piece, isAddedToken][]. */
  private splitAdded(text: string): [string, boolean][] {
    const out: [string, boolean][] = [];
    let start = 0;
    for (let i = 0; i < text.length; ) {
      const hit = this.addedBySize.find((t) => text.startsWith(t, i));
      if (hit === undefined) {
        i++;
        continue;
      }
      if (i > start) out.push([text.slice(start, i), false]);
      out.push([hit, true]);
      i += hit.length;
      start = i;
    }
    if (start < text.length) out.push([text.slice(start), false]);
    return out;
  }
}

function parseJson(text: string | object | undefined, file: string): unknown {
  if (text === undefined || typeof text !== "string") return text;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TokenizerError(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

function asObject(v: unknown, what: string): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new TokenizerError(
      `${what}: expected a JSON object, found ${v === null ? "null" : Array.isArray(v) ? "an array" : typeof v}`,
    );
  return v as Record<string, unknown>;
}

function checkVocab(v: unknown, file: string): Record<string, number> {
  const obj = asObject(v, file);
  if (!obj) throw new TokenizerError(`${file}: expected a JSON object mapping tokens to ids`);
  for (const [tok, id] of Object.entries(obj)) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0)
      throw new TokenizerError(
        `${file}: id of ${JSON.stringify(tok)} must be a non-negative integer, found ${JSON.stringify(id)}`,
      );
  }
  return obj as Record<string, number>;
}

/** vocab, merges and added tokens of an HF tokenizers `tokenizer.json` holding a CLIP-style BPE model. */
function parseTokenizerJson(
  json: Record<string, unknown> | undefined,
  file: string,
): { vocab: Record<string, number>; merges: [string, string][]; added: AddedToken[] } {
  const model = asObject(json?.model, `${file} model`);
  if (!model) throw new TokenizerError(`${file}: expected a "model" object with "vocab" and "merges"`);
  if (model.type !== undefined && model.type !== "BPE") {
    throw new TokenizerError(`${file}: expected model.type "BPE", found ${JSON.stringify(model.type)}`);
  }
  const suffix = model.end_of_word_suffix;
  if (suffix != null && suffix !== END_OF_WORD) {
    throw new TokenizerError(
      `${file}: expected model.end_of_word_suffix "${END_OF_WORD}", found ${JSON.stringify(suffix)}`,
    );
  }
  if (!Array.isArray(model.merges)) throw new TokenizerError(`${file}: expected model.merges to be an array`);
  const merges = model.merges.map((m: unknown, i) => toPair(m, `${file} model.merges[${i}]`, TokenizerError));
  const list = json?.added_tokens ?? [];
  if (!Array.isArray(list)) throw new TokenizerError(`${file}: expected added_tokens to be an array`);
  const added = list.map((t: unknown, i) => {
    const o = t as { id?: unknown; content?: unknown; special?: unknown } | null;
    if (typeof o?.content !== "string" || typeof o.id !== "number") {
      throw new TokenizerError(`${file}: added_tokens[${i}]: expected {"id": number, "content": string}`);
    }
    return { content: o.content, id: o.id, special: o.special !== false };
  });
  return { vocab: checkVocab(model.vocab, `${file} model.vocab`), merges, added };
}

/** A special-token entry: a string, or an AddedToken object with `content`. */
function tokenContent(v: unknown, file: string, key: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "object" && typeof (v as { content?: unknown }).content === "string")
    return (v as { content: string }).content;
  throw new TokenizerError(
    `${file}: "${key}" must be a string or an object with a string "content", found ${JSON.stringify(v)}`,
  );
}

function checkLength(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 2)
    throw new ArgumentError(`${what} must be an integer >= 2 (room for BOS and EOS), found ${n}`);
}

function join2(dir: string, name: string): string {
  return `${dir.replace(/[/\\]+$/, "")}/${name}`;
}
