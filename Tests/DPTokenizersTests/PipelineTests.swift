// Small hand-built tokenizer.json pipelines whose right answers follow from the algorithms'
// definitions (worked out in the comments), and the errors a bad tokenizer.json must give.
// These need no Python; ParityTests covers real tokenizers against the `tokenizers` library.

import DPTokenizers
import Foundation
import XCTest

final class PipelineTests: XCTestCase {
    private func tokenizer(_ json: String) throws -> Tokenizer {
        try Tokenizer(jsonData: Data(json.utf8))
    }

    private func error(_ json: String) -> TokenizerError? {
        do { _ = try tokenizer(json); return nil } catch { return error as? TokenizerError }
    }

    private let bertVocab = ###"{"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "un": 3, "##aff": 4, "##able": 5, "hello": 6, ",": 7, "!": 8, "你": 9, "好": 10, "a": 11, "b": 12, "c": 13, "d": 14, "e": 15, "[PAD]": 16}"###

    private var bert: String {
        #"{"normalizer": {"type": "BertNormalizer", "lowercase": true}, "pre_tokenizer": {"type": "BertPreTokenizer"}, "#
            + #""model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": "# + bertVocab + "},"
            + #""post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 1], "sep": ["[SEP]", 2]},"#
            + #""added_tokens": [{"id": 16, "content": "[PAD]", "special": true, "normalized": false}]}"#
    }

    // MARK: - Errors name the file, the JSON path and the problem

    func testInvalidJSONIsOneClearError() {
        let e = error(#"{"model": "#)
        XCTAssertEqual(e?.file, "tokenizer.json")
        XCTAssertTrue(e?.message.hasPrefix("invalid JSON") ?? false, "\(String(describing: e))")
    }

    /// Deep nesting is an error line, not a stack overflow; serde_json's own depth still reads.
    func testDeepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let e = error(#"{"model": "# + deep + "}")
        XCTAssertTrue(e?.message.contains("nested more than 128 levels") ?? false, "\(String(describing: e))")
        // The tokenizer's object is one level, so 127 arrays inside it reach the limit exactly.
        let allowed = String(repeating: "[", count: 127) + String(repeating: "]", count: 127)
        XCTAssertNil(error(String(bert.dropLast()) + #", "unread": "# + allowed + "}"), "128 levels must read")
    }

    func testUnknownComponentTypeNamesItsPath() {
        let json = #"{"normalizer": {"type": "Sequence", "normalizers": [{"type": "Lowercase"}, {"type": "Foo"}]}, "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}"#
        XCTAssertEqual(error(json)?.description, #"tokenizer.json: normalizer.normalizers[1]: unknown type "Foo""#)
        let pre = #"{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Bar"}]}, "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}"#
        XCTAssertEqual(error(pre)?.description, #"tokenizer.json: pre_tokenizer.pretokenizers[1]: unknown type "Bar""#)
        XCTAssertEqual(error(#"{"model": {"type": "Magic"}}"#)?.path, "model")
        XCTAssertEqual(error(#"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}, "post_processor": {"type": "Nope"}}"#)?.path, "post_processor")
    }

    func testMissingAndMistypedFieldsNameTheirPath() {
        XCTAssertEqual(error(#"{"model": {"type": "WordPiece"}}"#)?.description, "tokenizer.json: model.vocab: missing field")
        XCTAssertEqual(error(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#)?.path, "model.merges[0]")
        XCTAssertEqual(error(#"{"model": {"type": "WordPiece", "vocab": {"[UNK]": "zero"}}}"#)?.path, "model.vocab.[UNK]")
        XCTAssertEqual(error(#"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0.0}}}"#)?.description,
                       "tokenizer.json: model.vocab.[UNK]: expected an integer")
        XCTAssertEqual(error(#"{"model": {"type": "Unigram", "vocab": [["a", -1.0]]}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "!!"}}"#)?.path,
                       "normalizer.precompiled_charsmap")
    }

    func testMissingFileAndFolderWithoutTokenizer() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dp-tok-empty-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        XCTAssertThrowsError(try Tokenizer(contentsOf: folder)) { e in
            XCTAssertTrue("\(e)".contains("neither tokenizer.json nor vocab.txt"), "\(e)")
        }
    }

    // MARK: - WordPiece behind BERT's normalizer and pre-tokenizer

    func testBertPipeline() throws {
        let tok = try tokenizer(bert)
        // Lowercased, accents kept apart by NFD then dropped, punctuation isolated; "unaffable"
        // is the longest-first split un + ##aff + ##able.
        XCTAssertEqual(tok.encode("UnAffáble, HELLO!").ids, [1, 3, 4, 5, 7, 6, 8, 2])
        // One piece missing (x) makes the whole word [UNK]; CJK ideographs are words on their own.
        XCTAssertEqual(tok.encode("unx 你好").ids, [1, 0, 9, 10, 2])
        // Control characters vanish, [PAD] is found in the raw text before normalisation.
        XCTAssertEqual(tok.encode("a\u{0007}b [PAD]").ids, [1, 0, 16, 2])
        XCTAssertEqual(tok.padTokenId, 16)
    }

    func testPairTruncationIsLongestFirst() throws {
        let tok = try tokenizer(bert)
        // 5 + 2 tokens into 6 - 3 special = 3: the shorter keeps 2 (3 - its length would be 1),
        // 2 + 2 > 3, so both halve: 3 / 2 = 1 for the shorter and 2 for the longer.
        let e = tok.encode("a b c d e", pair: "a b", maxLength: 6)
        XCTAssertEqual(e.ids, [1, 11, 12, 2, 11, 2])
        XCTAssertEqual(e.typeIds, [0, 0, 0, 0, 1, 1])
        XCTAssertEqual(e.attentionMask, [1, 1, 1, 1, 1, 1])
        XCTAssertEqual(tok.encode("a b c d e", maxLength: 4).ids, [1, 11, 12, 2])
    }

    func testPaddingLeftToMultiple() throws {
        let tok = try tokenizer(bert)
        let batch = [tok.encode("a"), tok.encode("a b c")]
        let padded = tok.pad(batch, using: Padding(direction: .left, multipleOf: 4, padId: 16, padTypeId: 1))
        XCTAssertEqual(padded[0].ids, [16, 16, 16, 16, 16, 1, 11, 2])
        XCTAssertEqual(padded[0].typeIds, [1, 1, 1, 1, 1, 0, 0, 0])
        XCTAssertEqual(padded[0].attentionMask, [0, 0, 0, 0, 0, 1, 1, 1])
        XCTAssertEqual(padded[1].ids, [16, 16, 16, 1, 11, 12, 13, 2])
    }

    func testEncodeIsSafeFromManyThreads() throws {
        let tok = try tokenizer(bert)
        let texts = (0..<400).map { "unaffable \($0 % 7) hello, 你好 a b c" + String(repeating: " d", count: $0 % 13) }
        let serial = texts.map { tok.encode($0) }
        var parallel = [Encoding?](repeating: nil, count: texts.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: texts.count) { k in
            let e = tok.encode(texts[k])
            lock.lock(); parallel[k] = e; lock.unlock()
        }
        XCTAssertEqual(parallel.compactMap { $0 }, serial)
    }

    // MARK: - BPE, byte-level, Unigram, Metaspace, added tokens

    func testBPEAppliesTheLowestRankedMergeFirst() throws {
        // Ranks: "b c" 0, "a b" 1, "a bc" 2. On "abc" the b-c merge wins, then a + bc, so abc;
        // with "a b" ranked first, ab + c, and "ab c" is no merge.
        let vocab = #"{"a": 0, "b": 1, "c": 2, "bc": 3, "ab": 4, "abc": 5}"#
        let first = try tokenizer(#"{"model": {"type": "BPE", "vocab": "# + vocab + #", "merges": ["b c", "a b", "a bc"]}}"#)
        XCTAssertEqual(first.encode("abc").ids, [5])
        let second = try tokenizer(#"{"model": {"type": "BPE", "vocab": "# + vocab + #", "merges": [["a", "b"], ["b", "c"], ["a", "bc"]]}}"#)
        XCTAssertEqual(second.encode("abc").ids, [4, 2])
    }

    func testByteLevelMapsEveryUTF8Byte() throws {
        // GPT-2's byte map: space (0x20) -> U+0120 "Ġ"; é is C3 A9 -> "Ã" and "©" (printable Latin-1).
        let json = #"{"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true}, "model": {"type": "BPE", "vocab": {"Ġ": 0, "Ã": 1, "©": 2, "Ġé": 3, "Ã©": 4, "Ġ'": 5, "'": 6, "s": 7, "'s": 8}, "merges": ["Ã ©", "' s"]}}"#
        let tok = try tokenizer(json)
        // " é" splits as one word (` ?[^\s\p{L}\p{N}]+` does not apply: é is a letter), so Ġ + Ã© merged.
        XCTAssertEqual(tok.encode("é").ids, [0, 4])
        // "'s" is a contraction of its own, after the space-prefixed word.
        XCTAssertEqual(tok.encode("é's").ids, [0, 4, 8])
    }

    func testUnigramPicksTheBestScoringSegmentation() throws {
        func model(_ abScore: Double) throws -> Tokenizer {
            try tokenizer(#"{"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0], ["a", -1], ["b", -1], ["ab", \#(abScore)]]}}"#)
        }
        XCTAssertEqual(try model(-1.5).encode("ab").ids, [3])     // -1.5 beats -1 + -1
        XCTAssertEqual(try model(-3).encode("ab").ids, [1, 2])    // -2 beats -3
        // Unknown scalars fuse into one <unk>.
        XCTAssertEqual(try model(-3).encode("axyb").ids, [1, 0, 2])
    }

    func testUnigramScoresAreReadAsTokenizersReadsThem() throws {
        // `tokenizers` reads tokenizer.json with serde_json, which turns a decimal's digits into
        // one integer, rounds that to a double and divides by a power of ten: two roundings,
        // where a correct reading rounds once. Scores from a Unigram that `tokenizers` trained:
        // "$1000" is $|1|0|00 or $|1|00|0, equal but for the last bit, and the two readings of
        // these scores pick different winners.
        func serde(_ text: String) -> Double {
            let parts = text.dropFirst().split(separator: ".")
            return -(Double(UInt64(parts.joined())!) / Double("1e\(parts[1].count)")!)
        }
        let texts = ["-9.789024216021307", "-13.228576726334701", "-9.847851570488107", "-9.977307132573735"]
        // Viterbi reaches the end from "00" (start 3) before "0" (start 4) and keeps the first of equals.
        func endsWithZeroZero(_ s: [Double]) -> Bool { s[0] + s[1] + s[2] + s[3] >= s[0] + s[1] + s[3] + s[2] }
        let read = texts.map(serde)
        XCTAssertNotEqual(endsWithZeroZero(read), endsWithZeroZero(texts.map { Double($0)! }),
                          "the example no longer tells the two readings apart")
        let vocab = #"[["<unk>", 0], ["$", "# + texts[0] + #"], ["1", "# + texts[1] + #"], ["0", "# + texts[2]
            + #"], ["00", "# + texts[3] + "]]"
        let tok = try tokenizer(#"{"model": {"type": "Unigram", "unk_id": 0, "vocab": "# + vocab + "}}")
        XCTAssertEqual(tok.encode("$1000").ids, endsWithZeroZero(read) ? [1, 2, 3, 4] : [1, 2, 4, 3])
    }

    func testByteOrderMarkPiecesSurvive() throws {
        // A piece that is only U+FEFF, written raw as `tokenizers` writes it.
        let json = Data(#"{"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0], ["a", -1], [""#.utf8)
            + Data([0xEF, 0xBB, 0xBF]) + Data(#"", -1]]}}"#.utf8)
        let tok = try Tokenizer(jsonData: json)
        XCTAssertEqual(tok.encode("a\u{FEFF}a").ids, [1, 2, 1])
    }

    func testMetaspaceAndAddedTokenStripping() throws {
        // <mask> takes the spaces on its left (lstrip), so the word before it keeps no "▁" piece.
        let json = #"{"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}, "#
            + #""model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0], ["▁a", -1], ["▁b", -1], ["▁", -2], ["<mask>", 0]]},"#
            + #""added_tokens": [{"id": 4, "content": "<mask>", "lstrip": true, "special": true, "normalized": false}]}"#
        let tok = try tokenizer(json)
        XCTAssertEqual(tok.encode("a b").ids, [1, 2])
        XCTAssertEqual(tok.encode("a   <mask> b").ids, [1, 4, 2])
    }

    func testOldBertFolderWithVocabTxt() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dp-tok-vocab-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nHello\n".write(to: folder.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try Tokenizer(contentsOf: folder).encode("Hello").ids, [2, 4, 3])  // lowercased by default
        try #"{"do_lower_case": false}"#.write(to: folder.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let cased = try Tokenizer(contentsOf: folder)
        XCTAssertEqual(cased.encode("Hello", pair: "hello").ids, [2, 5, 3, 4, 3])
        XCTAssertEqual(cased.encode("Hello", pair: "hello").typeIds, [0, 0, 0, 1, 1])
        XCTAssertEqual(cased.padTokenId, 0)
    }
}
