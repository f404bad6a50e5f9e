import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMergesTxt } from "../../../src/models/clip/bpe.js";
import { mergesTxt, trainBpe } from "../../../src/models/clip/bpe-train.js";
import { CLIPTokenizer } from "../../../src/models/clip/tokenizer.js";

const corpus = [
  "red heart",
  "red apple",
  "green heart",
  "grinning cat",
  "grinning face",
  "smiling cat",
  "smiling face with heart eyes",
  "waving hand: dark skin tone",
];

describe("trainBpe", () => {
  it("learns CLIP's layout: byte symbols, end-of-word symbols, merges, then BOS and EOS", () => {
    const { vocab, merges } = trainBpe(corpus, { merges: 30 });
    assert.ok(merges.length > 0 && merges.length <= 30);
    const ids = Object.values(vocab);
    assert.equal(new Set(ids).size, ids.length, "ids are unique");
    assert.deepEqual(
      [...ids].sort((a, b) => a - b),
      ids.map((_, i) => i),
      "ids are 0..n-1",
    );
    assert.equal(vocab["!"], 0);
    assert.equal(vocab["!</w>"], 256);
    assert.equal(vocab["<|startoftext|>"], ids.length - 2);
    assert.equal(vocab["<|endoftext|>"], ids.length - 1);
    // the most frequent pair of the corpus is merged first: "in" (twice in each "grinning", once in each "smiling")
    assert.equal(merges[0], "i n");
  });

  it("gives a vocabulary CLIPTokenizer encodes and decodes losslessly, with frequent words as one token", () => {
    const { vocab, merges } = trainBpe(corpus, { merges: 200, minFrequency: 1 });
    const tok = new CLIPTokenizer(vocab, parseMergesTxt(mergesTxt(merges), "merges.txt"), {
      modelMaxLength: 32,
    });
    for (const text of ["red heart", "waving hand: dark skin tone", "zebra (unseen) 42"]) {
      const ids = tok.encode(text, { padding: false });
      assert.equal(ids[0], tok.bosTokenId);
      assert.equal(ids.at(-1), tok.eosTokenId);
      // CLIP's pre-tokeniser makes punctuation runs and every digit words of their own
      const words = text.replace(": ", " : ").replace("(unseen)", "( unseen )").replace("42", "4 2");
      assert.equal(tok.decode(ids, { skipSpecialTokens: true }), words);
    }
    assert.deepEqual(tok.tokenize("heart"), ["heart</w>"]);
  });

  it("is deterministic and stops when no pair is frequent enough", () => {
    assert.deepEqual(trainBpe(corpus, { merges: 50 }), trainBpe(corpus, { merges: 50 }));
    assert.equal(
      trainBpe(["ab"], { merges: 10 }).merges.length,
      0,
      "a pair seen once is not merged by default",
    );
    assert.throws(() => trainBpe(corpus, { merges: -1 }), /merges must be an integer >= 0, got -1/);
  });
});
