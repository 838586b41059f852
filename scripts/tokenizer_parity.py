#!/usr/bin/env python3
"""Expected encodings from the Hugging Face `tokenizers` library, for DPTokenizers' parity tests.

    python3 scripts/tokenizer_parity.py --out artifacts/tokenizer-parity

Writes one folder per tokenizer under --out, each with tokenizer.json and
  expected.jsonl  one encoding per line: {"text", "pair", "max_length", "ids", "type_ids", "attention_mask"}
                  (max_length null: the tokenizer.json truncation applies; padding off)
  padded.jsonl    batches of 8 with the tokenizer.json padding: {"texts", "pairs", "ids", ...}
The tokenizers:
  minilm        all-MiniLM-L6-v2's WordPiece tokenizer.json, as shipped
  roberta-bpe   byte-level BPE trained here (ByteLevel pre-tokenizer, RobertaProcessing, <mask> lstrip)
  albert-unigram Unigram trained here, ALBERT/SentencePiece style (NFKD, StripAccents, Lowercase,
                WhitespaceSplit + Metaspace, TemplateProcessing)
  spm-precompiled Unigram from a `sentencepiece` model with its Precompiled charsmap normalizer,
                assembled as transformers' ALBERT converter does
  bpe-suffix    BPE with continuing_subword_prefix, end_of_word_suffix and byte_fallback, behind
                NFD/StripAccents/Lowercase, Whitespace/Digits/Punctuation/Split pre-tokenizers
  llama-prepend Llama-2 style byte-fallback BPE over the whole text: Prepend + Replace normalizers,
                no pre-tokenizer, TemplateProcessing "<s> $A"
  llama-first   the same model behind Metaspace(prepend_scheme="first", split=False)
Texts: GLUE sentences and pairs from ../shared/data/glue, or where that is absent (a user's
machine) the VADER sentences that scripts/setup.sh fetches, plus the hard cases below. Training
text: GLUE's train files, else all the VADER sentences.
"""
import argparse
import json
import os
import sys
from pathlib import Path

from tokenizers import (Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers,
                        processors, trainers, AddedToken)

REPO = Path(__file__).resolve().parent.parent

HARD_CASES = [
    "", " ", "   \t\n  ", "\n", "\u200b", "\u200b\u200c\u200d\ufeff", "zero\u200bwidth\u200djoin",
    "Café naïve façade résumé Ångström ÉCOLE Über", "e\u0301cole a\u0300\u0301\u0302 o\u0308", "\u0301\u0302 starts with marks",
    "日本語のテキストと中文混合", "漢字kanji混合テスト", "한국어 텍스트입니다", "𠀀𠀁 extension B ideographs",
    "I ❤️ tokenizers 😀👍🏽 👨‍👩‍👧‍👦 🇫🇷🇩🇪", "emoji😀glued😀together",
    "tab\there\x00null\x07bell\x1bescape\x7fdel", "line\r\nbreak\u2028sep\u0085nel\x0bvt\x0cff", "\ufffd replacement \ufffd",
    "a" * 300, "supercalifragilisticexpialidocious" * 8, "x" * 99 + " " + "y" * 100 + " " + "z" * 101,
    "1234567890" * 30, "3.14159 1,000,000 2024-01-01 0x1F 42nd 7th",
    "Привет мир hello κόσμος مرحبا שלום नमस्ते", "العَرَبِيَّة ภาษาไทย क्षत्रिय", "Ελληνικά ΣΑΣ σας ς",
    "Hello!!! What?? (yes) [no] {maybe} \"quoted\" 'single' — em–dash … ellipsis",
    "$100.00 @user #tag 50% a&b ^caret ~tilde `tick` \\back/slash |pipe",
    "I'm you're we've they'll she'd it's don't DON'T 's 'S ''",
    "many     spaces   here", "trailing space ", " leading space", "  both  ", "\tmixed \n whitespace\r\n",
    "[CLS] hello [SEP] world [MASK] [PAD] [UNK]", "<s> roberta </s> <mask> x <pad> <unk>",
    "a<mask>b  <mask>  c<mask>", "[cls] lowercase special [Sep]", "x[MASK]y[SEP]z",
    "ＡＢＣ １２３ ｶﾀｶﾅ", "ﬁ ﬂ ﬀ ligatures", "①②③ ½ x² ℌ ㎏", "İstanbul ǅ ß ﬆ Ⅻ", "``quoted'' with  double  spaces",
    "https://example.com/path?q=1&r=2#frag user@example.org", "private\ue000use \U000e0001tag \ufe0fvs",
    "The quick brown fox jumps over the lazy dog. " * 40,
    "UPPER lower MiXeD CamelCaseWords snake_case_words kebab-case-words",
    "unbelievably, counterrevolutionaries' antidisestablishmentarianism!",
]

MAX_LENGTHS = [5, 8, 16, 32, 64]


def read_tsv(path, columns, header=True):
    """Tab-separated, no quoting; `columns` are names (with a header) or indices."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if header:
        names = lines[0].split("\t")
        index = [names.index(c) for c in columns]
        lines = lines[1:]
    else:
        index = columns
    rows = []
    for line in lines:
        fields = line.split("\t")
        if len(fields) > max(index):
            rows.append([fields[i] for i in index])
    return rows


def glue_texts(glue):
    """(singles, pairs, training lines), or None when the GLUE folder is missing."""
    if not glue.is_dir():
        return None
    cola = lambda split: [r[0] for r in read_tsv(glue / "CoLA" / f"{split}.tsv", [3], header=False)]
    sst = lambda split: [r[0] for r in read_tsv(glue / "SST-2" / f"{split}.tsv", ["sentence"])]
    mrpc = lambda split: read_tsv(glue / "MRPC" / f"{split}.tsv", ["#1 String", "#2 String"])
    rte = lambda split: read_tsv(glue / "RTE" / f"{split}.tsv", ["sentence1", "sentence2"])
    singles = cola("dev") + sst("dev") + cola("train")[:1000] + sst("train")[:1000]
    pairs = mrpc("dev") + rte("dev") + mrpc("train")[:1000] + rte("train")[:1000]
    training = cola("train") + sst("train")[:30000] + [s for p in mrpc("train") + rte("train") for s in p]
    return singles, pairs, training


def vader_texts(path):
    """(singles, pairs, training) from the VADER movie-review sentences that scripts/setup.sh
    fetches from PyPI, for machines without ../shared; None when that file is missing too."""
    if not path.is_file():
        return None
    texts = [row[0] for row in read_tsv(path, ["text"])]
    return texts[:4000], list(zip(texts[4000:5000], texts[5000:6000])), texts + HARD_CASES


def train_roberta_bpe(training):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    trainer = trainers.BpeTrainer(vocab_size=3000, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training, trainer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))),
    ])
    tok.enable_truncation(64, direction="left")
    tok.enable_padding(direction="left", pad_id=tok.token_to_id("<pad>"), pad_token="<pad>", pad_to_multiple_of=8)
    return tok


def train_albert_unigram(training):
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace("``", '"'), normalizers.Replace("''", '"'), normalizers.NFKD(),
        normalizers.StripAccents(), normalizers.Lowercase(), normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
    ])
    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.UnigramTrainer(vocab_size=3000, special_tokens=specials, unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(training, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    tok.enable_padding(pad_id=tok.token_to_id("<pad>"), pad_token="<pad>")
    return tok


def protobuf_fields(data):
    """The (field number, wire type, value) triples of one protobuf message, without protobuf."""
    i = 0
    while i < len(data):
        key, i = varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire} not handled")
        yield field, wire, value


def varint(data, i):
    result = shift = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def build_spm_precompiled(training, work):
    """A SentencePiece unigram model, turned into tokenizer.json the way transformers' ALBERT
    converter does it (Replace, Lowercase, Precompiled charsmap, Replace, Metaspace)."""
    try:
        import sentencepiece as spm
    except ImportError:
        print("[parity] sentencepiece is not installed: skipping spm-precompiled")
        return None
    import struct
    corpus = work / "spm-train.txt"
    corpus.write_text("\n".join(training), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(work / "spm"), vocab_size=3000, model_type="unigram",
        character_coverage=1.0, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
        control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    proto = (work / "spm.model").read_bytes()
    vocab, charsmap = [], b""
    for field, _, value in protobuf_fields(proto):
        if field == 1:  # SentencePiece {1: piece, 2: score}
            piece, score = "", 0.0
            for f, _, v in protobuf_fields(value):
                if f == 1:
                    piece = v.decode("utf-8")
                elif f == 2:
                    score = struct.unpack("<f", v)[0]
            vocab.append((piece, score))
        elif field == 3:  # NormalizerSpec {2: precompiled_charsmap}
            for f, _, v in protobuf_fields(value):
                if f == 2:
                    charsmap = v
    tok = Tokenizer(models.Unigram(vocab, unk_id=1, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace("``", '"'), normalizers.Replace("''", '"'), normalizers.Lowercase(),
        normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.add_special_tokens(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    tok.enable_truncation(128)
    return tok


def train_bpe_suffix(training):
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>",
                               byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(),
                                           normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Punctuation(behavior="isolated"),
        pre_tokenizers.Split(Regex("-"), behavior="merged_with_previous"),
    ])
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=specials, continuing_subword_prefix="##",
                                  end_of_word_suffix="</w>", limit_alphabet=200, show_progress=False)
    tok.train_from_iterator(training, trainer)
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                                   ("[CLS]", tok.token_to_id("[CLS]")))
    return tok


def train_llama_bpe(training):
    """Merges learnt on Metaspace words, then used on whole texts as Llama-2's tokenizer.json does."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=specials, limit_alphabet=150, show_progress=False)
    tok.train_from_iterator(training, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    prepend = Tokenizer.from_str(tok.to_str())
    prepend.pre_tokenizer = None
    prepend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    first = Tokenizer.from_str(tok.to_str())
    first.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    return prepend, first


def cases(singles, pairs):
    """(text, pair, max_length) triples: every text without and with an explicit max_length."""
    items = [(t, None) for t in singles] + [(a, b) for a, b in pairs]
    items += [(t, None) for t in HARD_CASES]
    items += [(HARD_CASES[i], HARD_CASES[(i + 1) % len(HARD_CASES)]) for i in range(len(HARD_CASES))]
    out = []
    for k, (text, pair) in enumerate(items):
        out.append((text, pair, None))
        out.append((text, pair, MAX_LENGTHS[k % len(MAX_LENGTHS)]))
    return out


def write_expected(tok, folder, items):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(tok.to_str(), encoding="utf-8")
    # The padding section stays in tokenizer.json (for padded.jsonl) but is off for expected.jsonl.
    plain = Tokenizer.from_str(tok.to_str())
    plain.no_padding()
    truncation = plain.truncation
    with (folder / "expected.jsonl").open("w", encoding="utf-8") as f:
        for text, pair, max_length in items:
            if max_length is None:
                if truncation is None:
                    plain.no_truncation()
                else:
                    plain.enable_truncation(**truncation)
            else:
                params = dict(truncation or {})
                params["max_length"] = max_length
                plain.enable_truncation(**params)
            e = plain.encode(text, pair)
            f.write(json.dumps({"text": text, "pair": pair, "max_length": max_length, "ids": e.ids,
                                "type_ids": e.type_ids, "attention_mask": e.attention_mask},
                               ensure_ascii=False) + "\n")
    count = len(items)
    padded = Tokenizer.from_str(tok.to_str())
    if padded.padding is not None:
        unique = [(t, p) for t, p, m in items if m is None]
        with (folder / "padded.jsonl").open("w", encoding="utf-8") as f:
            for start in range(0, len(unique), 8):
                batch = unique[start:start + 8]
                if any(p is None for _, p in batch):
                    encs = padded.encode_batch([t for t, _ in batch])
                    pairs = None
                else:
                    encs = padded.encode_batch([(t, p) for t, p in batch])
                    pairs = [p for _, p in batch]
                f.write(json.dumps({"texts": [t for t, _ in batch], "pairs": pairs, "ids": [e.ids for e in encs],
                                    "type_ids": [e.type_ids for e in encs],
                                    "attention_mask": [e.attention_mask for e in encs]},
                                   ensure_ascii=False) + "\n")
    print(f"[parity] {folder.name}: {count} encodings")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "tokenizer-parity")
    parser.add_argument("--model-dir", type=Path, default=REPO / "artifacts" / "models" / "all-MiniLM-L6-v2")
    parser.add_argument("--glue", type=Path, default=REPO.parent / "shared" / "data" / "glue")
    parser.add_argument("--vader", type=Path, default=REPO / "artifacts" / "data" / "vader-movies.tsv",
                        help="the real sentences used when --glue is missing")
    args = parser.parse_args()

    texts = glue_texts(args.glue)
    if texts is None:
        texts = vader_texts(args.vader)
        if texts is None:
            sys.exit(f"tokenizer_parity: neither {args.glue} nor {args.vader} exists (run scripts/setup.sh --no-build)")
        print(f"[parity] {args.glue} not found: the VADER sentences of {args.vader} stand in for GLUE")
    singles, pairs, training = texts
    items = cases(singles, pairs)
    print(f"[parity] {len(singles)} sentences, {len(pairs)} pairs, {len(HARD_CASES)} hard cases")

    args.out.mkdir(parents=True, exist_ok=True)
    minilm = args.model_dir / "tokenizer.json"
    if minilm.exists():
        write_expected(Tokenizer.from_file(str(minilm)), args.out / "minilm", items)
    else:
        print(f"[parity] {minilm} not found (run scripts/setup.sh --no-build): skipping minilm")
    write_expected(train_roberta_bpe(training), args.out / "roberta-bpe", items)
    write_expected(train_albert_unigram(training), args.out / "albert-unigram", items)
    work = args.out / "spm-work"
    work.mkdir(exist_ok=True)
    spm_tok = build_spm_precompiled(training, work)
    if spm_tok is not None:
        write_expected(spm_tok, args.out / "spm-precompiled", items)
    write_expected(train_bpe_suffix(training), args.out / "bpe-suffix", items)
    prepend, first = train_llama_bpe(training)
    write_expected(prepend, args.out / "llama-prepend", items)
    write_expected(first, args.out / "llama-first", items)


if __name__ == "__main__":
    main()
