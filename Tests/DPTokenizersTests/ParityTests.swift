// Parity with the Hugging Face `tokenizers` library: scripts/tokenizer_parity.py writes each
// tokenizer's tokenizer.json and the library's encodings of GLUE sentences, pairs and hard cases
// (with and without truncation, and padded batches); every one must be identical here.
// scripts/test.sh runs the script and points DPTRAIN_TOKENIZER_PARITY at its output folder.

import DPTokenizers
import Foundation
import XCTest

final class ParityTests: XCTestCase {
    private func parityFolder() throws -> URL {
        guard let path = ProcessInfo.processInfo.environment["DPTRAIN_TOKENIZER_PARITY"], !path.isEmpty else {
            throw XCTSkip("DPTRAIN_TOKENIZER_PARITY is not set: run scripts/tokenizer_parity.py --out DIR and set it to DIR")
        }
        return URL(fileURLWithPath: path)
    }

    private func jsonLines(_ url: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    private func int32s(_ value: Any?) -> [Int32] { ((value as? [NSNumber]) ?? []).map { Int32($0.intValue) } }

    private func tokenizerFolders() throws -> [URL] {
        let root = try parityFolder()
        let names = try FileManager.default.contentsOfDirectory(atPath: root.path).sorted()
        let folders = names.map { root.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("expected.jsonl").path) }
        XCTAssertFalse(folders.isEmpty, "no tokenizer folders with expected.jsonl in \(root.path)")
        return folders
    }

    func testEncodingsMatchTheTokenizersLibrary() throws {
        for folder in try tokenizerFolders() {
            let tokenizer = try Tokenizer(contentsOf: folder)
            let cases = try jsonLines(folder.appendingPathComponent("expected.jsonl"))
            var mismatches = 0
            for c in cases {
                let text = c["text"] as? String ?? ""
                let pair = c["pair"] as? String
                let maxLength = (c["max_length"] as? NSNumber)?.intValue
                let expected = Encoding(ids: int32s(c["ids"]), typeIds: int32s(c["type_ids"]),
                                        attentionMask: int32s(c["attention_mask"]))
                let got = tokenizer.encode(text, pair: pair, maxLength: maxLength)
                if got != expected {
                    mismatches += 1
                    if mismatches <= 5 {
                        XCTFail("\(folder.lastPathComponent): \(text.debugDescription) / \(pair?.debugDescription ?? "nil") "
                            + "max_length \(maxLength.map(String.init) ?? "nil"):\n  expected \(expected.ids) \(expected.typeIds)"
                            + "\n  got      \(got.ids) \(got.typeIds)")
                    }
                }
            }
            print("parity \(folder.lastPathComponent): \(cases.count - mismatches)/\(cases.count) identical")
            XCTAssertGreaterThan(cases.count, 0)
            XCTAssertEqual(mismatches, 0, "\(folder.lastPathComponent): \(mismatches) of \(cases.count) encodings differ")
        }
    }

    func testPaddedBatchesMatchTheTokenizersLibrary() throws {
        var checked = 0
        for folder in try tokenizerFolders() {
            let file = folder.appendingPathComponent("padded.jsonl")
            guard FileManager.default.fileExists(atPath: file.path) else { continue }
            let tokenizer = try Tokenizer(contentsOf: folder)
            XCTAssertNotNil(tokenizer.padding, "\(folder.lastPathComponent): padded.jsonl but no padding section read")
            var mismatches = 0
            let batches = try jsonLines(file)
            for b in batches {
                let texts = b["texts"] as? [String] ?? []
                let pairs = b["pairs"] as? [String]
                let encodings = texts.enumerated().map { k, t in tokenizer.encode(t, pair: pairs?[k]) }
                let got = tokenizer.pad(encodings)
                let ids = (b["ids"] as? [Any] ?? []).map(int32s)
                let typeIds = (b["type_ids"] as? [Any] ?? []).map(int32s)
                let masks = (b["attention_mask"] as? [Any] ?? []).map(int32s)
                let expected = ids.indices.map { Encoding(ids: ids[$0], typeIds: typeIds[$0], attentionMask: masks[$0]) }
                if got != expected {
                    mismatches += 1
                    if mismatches <= 3 { XCTFail("\(folder.lastPathComponent): batch \(texts.first ?? "") differs:\n  expected \(expected.map(\.ids))\n  got      \(got.map(\.ids))") }
                }
                checked += 1
            }
            print("parity \(folder.lastPathComponent) padded: \(batches.count - mismatches)/\(batches.count) batches identical")
            XCTAssertEqual(mismatches, 0)
        }
        XCTAssertGreaterThan(checked, 0, "no padded batches were checked")
    }
}
