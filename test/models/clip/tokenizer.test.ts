import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadSafetensors } from "../../../src/io/safetensors.js";
import { CLIPTokenizer, TokenizerError } from "../../../src/models/clip/tokenizer.js";
import { ArgumentError } from "../../../src/tensor/errors.js";
import { fixturesDir, skipWithoutFixtures } from "../../helpers.js";

interface TokenizerCase {
  prompt: string;
  bpe_tokens: string[];
  input_ids_unpadded_untruncated: number[];
  input_ids: number[];
  attention_mask: number[];
}
interface TokenizerFixture {
  dir: string;
  vocab_size: number;
  bos_token_id: number;
  eos_token_id: number;
  pad_token_id: number;
  model_max_length: number;
  cases: TokenizerCase[];
}

const skip = skipWithoutFixtures();
const modelsDir = () => join(fixturesDir()!, "models");
const tinyDir = () => join(modelsDir(), "tiny_tokenizer");
const fixture = (): TokenizerFixture =>
  JSON.parse(readFileSync(join(modelsDir(), "models.json"), "utf8")).tokenizer as TokenizerFixture;
const ints = (t: { dataSync(): ArrayLike<number | bigint> }) => Array.from(t.dataSync(), Number);

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "diffuse-clip-tokenizer-"));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A folder in tmp holding `files` (name -> text); tiny_tokenizer files are copied by name with `copy`. */
function folder(name: string, files: Record<string, string>, copy: string[] = []): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const f of copy) writeFileSync(join(dir, f), readFileSync(join(tinyDir(), f)));
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

describe("CLIPTokenizer against transformers (models.json tokenizer cases)", { skip }, () => {
  it("special ids, vocabulary size and model_max_length", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    const fx = fixture();
    assert.equal(tok.bosTokenId, fx.bos_token_id);
    assert.equal(tok.eosTokenId, fx.eos_token_id);
    assert.equal(tok.padTokenId, fx.pad_token_id);
    assert.equal(tok.modelMaxLength, fx.model_max_length);
    assert.equal(tok.vocabSize, fx.vocab_size);
  });

  it("tokenize, unpadded ids, padded ids and mask of every case", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    for (const c of fixture().cases) {
      const what = JSON.stringify(c.prompt.slice(0, 40));
      assert.deepEqual(tok.tokenize(c.prompt), c.bpe_tokens, `${what} bpe_tokens`);
      assert.deepEqual(
        tok.encode(c.prompt, { padding: false, truncation: false }),
        c.input_ids_unpadded_untruncated,
        `${what} unpadded`,
      );
      assert.deepEqual(tok.encode(c.prompt), c.input_ids, `${what} input_ids`);
      assert.deepEqual(
        tok.encode(c.prompt, { padding: "max_length", maxLength: 77, truncation: true }),
        c.input_ids,
      );
    }
  });

  it("encodeBatch gives int64 [6, 77] input_ids and attention_mask", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    const cases = fixture().cases;
    const { inputIds, attentionMask } = tok.encodeBatch(cases.map((c) => c.prompt));
    assert.equal(inputIds.dtype, "int64");
    assert.equal(attentionMask.dtype, "int64");
    assert.deepEqual(inputIds.shape, [6, 77]);
    assert.deepEqual(attentionMask.shape, [6, 77]);
    assert.deepEqual(
      ints(inputIds),
      cases.flatMap((c) => c.input_ids),
    );
    assert.deepEqual(
      ints(attentionMask),
      cases.flatMap((c) => c.attention_mask),
    );
  });

  it("a long prompt keeps BOS, the first 75 ids and EOS; shorter maxLength and no truncation", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    const long = fixture().cases.find((c) => c.input_ids_unpadded_untruncated.length > 77)!;
    const full = long.input_ids_unpadded_untruncated;
    assert.equal(full.length, 170);
    assert.deepEqual(tok.encode(long.prompt), [...full.slice(0, 76), 673]);
    assert.deepEqual(tok.encode(long.prompt, { maxLength: 8 }), [...full.slice(0, 7), 673]);
    // without truncation nothing is cut and no padding is added (the sequence is already longer)
    assert.deepEqual(tok.encode(long.prompt, { truncation: false }), full);
    const batch = tok.encodeBatch([long.prompt, "a cat"], { maxLength: 10 });
    assert.deepEqual(batch.inputIds.shape, [2, 10]);
    assert.deepEqual(ints(batch.inputIds).slice(10), [672, 320, 630, 673, 673, 673, 673, 673, 673, 673]);
    assert.deepEqual(ints(batch.attentionMask), [...Array(10).fill(1), 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  });

  it("empty and whitespace-only prompts are BOS EOS then padding", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    for (const p of ["", "   ", " \t\n\r\u3000"]) {
      assert.deepEqual(tok.tokenize(p), []);
      assert.deepEqual(tok.encode(p, { padding: false }), [672, 673]);
      assert.deepEqual(tok.encode(p), [672, ...Array(76).fill(673)]);
    }
    assert.deepEqual(tok.encodeBatch([]).inputIds.shape, [0, 77]);
  });

  it("padding 'longest' pads a batch to its longest row", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    const { inputIds, attentionMask } = tok.encodeBatch(["a photo of a cat", "a cat"], {
      padding: "longest",
    });
    assert.deepEqual(inputIds.shape, [2, 7]);
    assert.deepEqual(ints(inputIds), [672, 320, 541, 520, 320, 630, 673, 672, 320, 630, 673, 673, 673, 673]);
    assert.deepEqual(ints(attentionMask), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
    assert.throws(() => tok.encodeBatch(["a photo of a cat", "a cat"], { padding: false }), ArgumentError);
  });

  // Expected values from an independent Python transcription of transformers 4.45's CLIPTokenizer without ftfy
  // (BasicTokenizer cleanup + the `regex` module), which reproduces every models.json case.
  it("unicode: NFC, lower-case, CJK splitting, multi-byte symbols, control and format characters", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    const cases: [string, string[] | null, number[]][] = [
      [
        "Café NAÏVE",
        ["ca", "f", "Ã", "©</w>", "n", "a", "Ã", "¯", "v", "e</w>"],
        [524, 69, 127, 358, 77, 64, 127, 107, 85, 324],
      ],
      ["Cafe\u0301", ["ca", "f", "Ã", "©</w>"], [524, 69, 127, 358]],
      ["猫犬 dog", ["ç", "Į", "«</w>", "ç", "Ĭ", "¬</w>", "dog</w>"], [163, 234, 360, 163, 232, 361, 553]],
      [
        "emoji 🐱!",
        ["e", "m", "o", "j", "i</w>", "ð", "Ł", "Ĳ", "±", "!</w>"],
        [68, 76, 78, 73, 328, 172, 253, 238, 109, 256],
      ],
      ["ＡＢＣ", null, [171, 121, 223, 171, 121, 224, 171, 121, 481]],
      [
        "tab\tnew\nline   x ",
        ["ta", "b</w>", "ne", "w</w>", "l", "in", "e</w>", "x</w>"],
        [527, 321, 561, 342, 75, 514, 324, 343],
      ],
      ["\u00a0nbsp\u3000ideo", null, [77, 65, 82, 335, 72, 532, 334]],
      ["zero\u200bwidth", null, [89, 68, 81, 563, 72, 67, 83, 327]],
      [
        "&amp; <b>",
        ["&</w>", "a", "m", "p</w>", ";</w>", "<</w>", "b</w>", "></w>"],
        [261, 64, 76, 335, 282, 283, 321, 285],
      ],
      [
        "İstanbul",
        ["i</w>", "Ì", "ĩ</w>", "st", "an", "b", "u", "l</w>"],
        [328, 136, 485, 518, 513, 65, 84, 331],
      ],
      ["a\u0345b", ["a</w>", "b</w>"], [320, 321]],
      ["don't we'll they're", null, [67, 516, 6, 339, 86, 324, 6, 75, 331, 512, 68, 344, 6, 81, 324]],
      ["x\u0000y\ufffdz", ["x", "y", "z</w>"], [87, 88, 345]],
      ["line\u2028sep", null, [75, 514, 324, 82, 68, 335]],
      ["123", ["1</w>", "2</w>", "3</w>"], [272, 273, 274]],
      ["ΣΑΣ", null, [139, 225, 138, 109, 139, 480]],
    ];
    for (const [prompt, tokens, ids] of cases) {
      if (tokens) assert.deepEqual(tok.tokenize(prompt), tokens, JSON.stringify(prompt));
      assert.deepEqual(tok.encode(prompt, { padding: false }), [672, ...ids, 673], JSON.stringify(prompt));
    }
  });

  it("special tokens in the text map to their ids", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    assert.deepEqual(tok.tokenize("a<|endoftext|>b"), ["a</w>", "<|endoftext|>", "b</w>"]);
    assert.deepEqual(tok.encode("a <|endoftext|> b", { padding: false }), [672, 320, 673, 321, 673]);
    // lower-cased into the special token's spelling, then matched by the pattern's special alternative
    assert.deepEqual(tok.encode("<|STARTOFTEXT|>", { padding: false }), [672, 672, 673]);
  });

  it("decode: specials kept or skipped, </w> to spaces, clean-up of spaces before punctuation", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    const [cat, car] = fixture().cases;
    assert.equal(
      tok.decode(cat!.input_ids_unpadded_untruncated),
      "<|startoftext|>a photo of a cat <|endoftext|>",
    );
    assert.equal(tok.decode(cat!.input_ids, { skipSpecialTokens: true }), "a photo of a cat");
    assert.equal(
      tok.decode(car!.input_ids, { skipSpecialTokens: true }),
      "a red car, parked on the street at night!",
    );
    assert.equal(
      tok.decode(car!.input_ids, { skipSpecialTokens: true, cleanUpTokenizationSpaces: false }),
      "a red car , parked on the street at night !",
    );
    assert.equal(
      tok.decode(tok.encode("emoji 🐱! 猫", { padding: false }), { skipSpecialTokens: true }),
      "emoji 🐱! 猫",
    );
    // a cut UTF-8 sequence (first two bytes of 🐱) decodes with a replacement character
    assert.equal(tok.decode([172, 253]), "\ufffd");
    assert.equal(tok.decode([BigInt(320), BigInt(630)]), "a cat");
    assert.throws(() => tok.decode([674]), /no token has id 674/);
  });

  it("argument errors", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    assert.throws(() => tok.encode("a", { maxLength: 1 }), ArgumentError);
    assert.throws(() => tok.encode("a", { maxLength: 7.5 }), ArgumentError);
    assert.throws(() => tok.encode("a", { padding: "max" as never }), ArgumentError);
  });
});

describe("CLIPTokenizer loading", { skip }, () => {
  it("tokenizer.json (HF tokenizers) gives the same ids, merges as strings or pairs", async () => {
    const vocab = JSON.parse(readFileSync(join(tinyDir(), "vocab.json"), "utf8"));
    const merges = readFileSync(join(tinyDir(), "merges.txt"), "utf8").trim().split("\n").slice(1);
    const added = [
      { id: 672, content: "<|startoftext|>", special: true },
      { id: 673, content: "<|endoftext|>", special: true },
    ];
    for (const [name, m] of [
      ["json-strings", merges],
      ["json-pairs", merges.map((l) => l.split(" "))],
    ] as const) {
      const json = {
        added_tokens: added,
        model: { type: "BPE", vocab, merges: m, end_of_word_suffix: "</w>" },
      };
      const tok = await CLIPTokenizer.fromPretrained(
        folder(name, { "tokenizer.json": JSON.stringify(json) }),
      );
      for (const c of fixture().cases)
        assert.deepEqual(tok.encode(c.prompt), c.input_ids, `${name} ${c.prompt}`);
      assert.equal(tok.padTokenId, 673);
    }
  });

  it("from in-memory files (no file system)", async () => {
    const tok = CLIPTokenizer.fromFiles({
      "vocab.json": readFileSync(join(tinyDir(), "vocab.json"), "utf8"),
      "merges.txt": readFileSync(join(tinyDir(), "merges.txt"), "utf8"),
    });
    for (const c of fixture().cases) assert.deepEqual(tok.encode(c.prompt), c.input_ids);
  });

  // diffusers issue #4153: SD2/SDXL tokenizer_2 has pad_token "!" (id 0); transformers then treats every "!" in
  // the text as that special token: "! !! !!!" -> [49406, 0, 0, 0, 0, 0, 0, 49407, 0, ...].
  it("pad token '!' from a legacy config: id 0, used for padding and split out of the text", async () => {
    const dir = folder(
      "sd2",
      { "tokenizer_config.json": JSON.stringify({ model_max_length: 77, pad_token: "!" }) },
      ["vocab.json", "merges.txt"],
    );
    const tok = await CLIPTokenizer.fromPretrained(dir);
    assert.equal(tok.padTokenId, 0);
    assert.deepEqual(tok.encode("! !! !!!", { padding: false }), [672, 0, 0, 0, 0, 0, 0, 673]);
    assert.deepEqual(tok.encode("a cat", { maxLength: 8 }), [672, 320, 630, 673, 0, 0, 0, 0]);
    assert.equal(tok.decode([672, 320, 0, 673], { skipSpecialTokens: true }), "a");
  });

  it("special_tokens_map.json overrides a legacy config, not one with added_tokens_decoder", async () => {
    const legacy = folder(
      "legacy",
      {
        "tokenizer_config.json": JSON.stringify({ pad_token: "<|endoftext|>", model_max_length: 16 }),
        "special_tokens_map.json": JSON.stringify({ pad_token: { content: "!", lstrip: false } }),
      },
      ["vocab.json", "merges.txt"],
    );
    const a = await CLIPTokenizer.fromPretrained(legacy);
    assert.equal(a.padTokenId, 0);
    assert.equal(a.modelMaxLength, 16);
    assert.equal(a.encode("a").length, 16);
    const modern = folder(
      "modern",
      {
        "tokenizer_config.json": readFileSync(join(tinyDir(), "tokenizer_config.json"), "utf8"),
        "special_tokens_map.json": JSON.stringify({ pad_token: "!" }),
      },
      ["vocab.json", "merges.txt"],
    );
    assert.equal((await CLIPTokenizer.fromPretrained(modern)).padTokenId, 673);
  });

  it("missing or broken files are TokenizerErrors naming the file and what was expected", async () => {
    const reject = (dir: string, re: RegExp) =>
      assert.rejects(CLIPTokenizer.fromPretrained(dir), (err: unknown) => {
        assert.ok(err instanceof TokenizerError, String(err));
        assert.match(err.message, re);
        return true;
      });
    await reject(
      join(tmp, "does-not-exist"),
      /does-not-exist: cannot open the tokenizer folder \(file not found\)/,
    );
    await reject(
      folder("empty", {}),
      /empty: no tokenizer files: expected vocab\.json \+ merges\.txt .* or tokenizer\.json/,
    );
    mkdirSync(join(tmp, "pipeline", "tokenizer"), { recursive: true });
    await reject(join(tmp, "pipeline"), /try its tokenizer\/ subfolder/);
    await reject(folder("no-merges", {}, ["vocab.json"]), /no-merges\/merges\.txt: missing/);
    await reject(folder("no-vocab", {}, ["merges.txt"]), /no-vocab\/vocab\.json: missing/);
    await reject(
      folder("bad-json", { "vocab.json": "{ nope" }, ["merges.txt"]),
      /bad-json\/vocab\.json: not valid JSON/,
    );
    await reject(
      folder("bad-vocab", { "vocab.json": "[1, 2]" }, ["merges.txt"]),
      /vocab\.json: expected a JSON object, found an array/,
    );
    await reject(
      folder("bad-id", { "vocab.json": '{"a": -1}' }, ["merges.txt"]),
      /vocab\.json: id of "a" must be a non-negative integer, found -1/,
    );
    await reject(
      folder("bad-merges", { "merges.txt": "#version: 0.2\nt h\nthree parts here\n" }, ["vocab.json"]),
      /bad-merges\/merges\.txt: line 3: expected two symbols/,
    );
    await reject(
      folder("no-bos", { "vocab.json": '{"a": 0}', "merges.txt": "#version: 0.2\n" }),
      /bos token "<\|startoftext\|>" is not in the vocabulary/,
    );
    await reject(
      folder("bad-max", { "tokenizer_config.json": '{"model_max_length": "77"}' }, [
        "vocab.json",
        "merges.txt",
      ]),
      /tokenizer_config\.json: model_max_length must be an integer >= 2/,
    );
    await reject(
      folder("wordpiece", { "tokenizer.json": '{"model": {"type": "WordPiece", "vocab": {}}}' }),
      /tokenizer\.json: expected model\.type "BPE", found "WordPiece"/,
    );
    await reject(
      folder("json-no-model", { "tokenizer.json": "{}" }),
      /tokenizer\.json: expected a "model" object/,
    );
    const file = join(tmp, "a-file");
    writeFileSync(file, "x");
    await reject(file, /a-file: expected a tokenizer folder, found a file/);
  });
});

describe("CLIPTokenizer from in-memory vocab/merges (hand-computed BPE)", () => {
  const vocab = {
    l: 0,
    o: 1,
    w: 2,
    "w</w>": 3,
    lo: 4,
    "low</w>": 5,
    a: 6,
    "a</w>": 7,
    aa: 8,
    "<|startoftext|>": 9,
    "<|endoftext|>": 10,
  };
  const tok = new CLIPTokenizer(vocab, ["l o", ["lo", "w</w>"], "a a"], { modelMaxLength: 6 });

  it("merges by rank, everywhere in a word, left to right", () => {
    assert.deepEqual(tok.tokenize("low"), ["low</w>"]);
    // l o w l o w</w> -> (l,o) rank 0 twice -> lo w lo w</w> -> (lo,w</w>) rank 1 -> lo w low</w>
    assert.deepEqual(tok.tokenize("LowLow"), ["lo", "w", "low</w>"]);
    // a a a</w>: (a,a) merges once from the left; (a, a</w>) has no rule
    assert.deepEqual(tok.tokenize("aaa"), ["aa", "a</w>"]);
    assert.deepEqual(tok.tokenize("a"), ["a</w>"]);
  });

  it("unknown tokens get the unk id; modelMaxLength is the default length", () => {
    // l o l</w> -> lo l</w>; "l</w>" is not in the vocabulary -> unk (<|endoftext|>)
    assert.deepEqual(tok.tokenize("lol"), ["lo", "l</w>"]);
    assert.deepEqual(tok.encode("lol"), [9, 4, 10, 10, 10, 10]);
    assert.deepEqual(tok.encode("low low low low low"), [9, 5, 5, 5, 5, 10]);
    assert.equal(tok.tokenToId("lo"), 4);
    assert.equal(tok.idToToken(5), "low</w>");
    assert.equal(tok.decode([9, 4, 2, 5, 10], { skipSpecialTokens: true }), "lowlow");
  });

  it("constructor argument errors", () => {
    assert.throws(() => new CLIPTokenizer(vocab, ["l o w"]), /merge 0: expected a merge "a b"/);
    assert.throws(
      () => new CLIPTokenizer({ a: 0 }, []),
      /bos token "<\|startoftext\|>" is not in the vocabulary/,
    );
    assert.throws(() => new CLIPTokenizer(vocab, [], { modelMaxLength: 1 }), ArgumentError);
    assert.throws(() => new CLIPTokenizer(vocab, [], { padToken: "zz" }), /pad token "zz"/);
  });
});

describe("CLIPTokenizer against the ids stored with the model fixtures", { skip }, () => {
  it("clip_io input_ids and the pipeline's cond/uncond input_ids", async () => {
    const tok = await CLIPTokenizer.fromPretrained(tinyDir());
    const clipIo = await loadSafetensors(join(modelsDir(), "clip_io.safetensors"));
    const batch = tok.encodeBatch(fixture().cases.map((c) => c.prompt));
    assert.deepEqual(ints(clipIo.tensors.get("input_ids")!), ints(batch.inputIds));
    const root = fixturesDir()!;
    const cfg = JSON.parse(readFileSync(join(root, "pipeline", "cfg.json"), "utf8")) as {
      cases: { id: string; prompt: string; negative_prompt: string | null }[];
    };
    const stored = await loadSafetensors(join(root, "pipeline", "cfg.safetensors"));
    for (const c of cfg.cases) {
      assert.deepEqual(ints(stored.tensors.get(`${c.id}.cond_input_ids`)!), tok.encode(c.prompt), c.id);
      assert.deepEqual(
        ints(stored.tensors.get(`${c.id}.uncond_input_ids`)!),
        tok.encode(c.negative_prompt ?? ""),
      );
    }
  });
});
