// The `Precompiled` normalizer of SentencePiece-converted tokenizers (ALBERT, XLNet, T5, ...):
// `precompiled_charsmap` is SentencePiece's normalisation rule set, base64 of
//   [trie size in bytes: UInt32 LE][darts-clone double-array trie: UInt32 LE units][normalized strings, NUL-terminated]
// The trie maps a UTF-8 prefix to the offset of its replacement in the string blob. It must
// match the `spm_precompiled` crate that `tokenizers` uses, including its grapheme rule.

import Foundation

struct PrecompiledNormalizer: Normalizer {
    /// [trie units]
    let trie: [UInt32]
    /// [bytes] NUL-separated UTF-8 replacement strings
    let normalized: [UInt8]
    /// [128] the replacement of each ASCII scalar on its own, nil where it has none
    let asciiReplacements: [[UInt8]?]

    init(json: JSONNode) throws {
        let field = try json.required("precompiled_charsmap")
        guard let data = Data(base64Encoded: try field.string()), data.count >= 4 else {
            throw field.error("not a base64 SentencePiece charsmap")
        }
        let bytes = [UInt8](data)
        let trieSize = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        guard trieSize % 4 == 0, 4 + trieSize <= bytes.count else {
            throw field.error("charsmap trie size \(trieSize) does not fit its \(bytes.count) bytes")
        }
        trie = (0..<(trieSize / 4)).map { k in
            let o = 4 + 4 * k
            return UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
        }
        normalized = Array(bytes[(4 + trieSize)...])
        guard !trie.isEmpty else { throw field.error("charsmap has an empty trie") }
        let (units, blob) = (trie, normalized)
        asciiReplacements = (0..<128).map { b in
            Self.transform([UInt8(b)][...], trie: units, normalized: blob).map(Array.init)
        }
    }

    /// The replacement of the shortest trie key that prefixes `key`, as darts-clone's common
    /// prefix search yields it first.
    private func transform(_ key: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        Self.transform(key, trie: trie, normalized: normalized)
    }

    private static func transform(_ key: ArraySlice<UInt8>, trie: [UInt32], normalized: [UInt8]) -> ArraySlice<UInt8>? {
        var nodePos = 0
        var unit = trie[0]
        nodePos ^= offset(unit)
        for c in key {
            if c == 0 { break }
            nodePos ^= Int(c)
            guard nodePos < trie.count else { return nil }
            unit = trie[nodePos]
            if unit & ((1 << 31) | 0xFF) != UInt32(c) { return nil }
            nodePos ^= offset(unit)
            if (unit >> 8) & 1 == 1 {
                guard nodePos < trie.count else { return nil }
                let start = Int(trie[nodePos] & ((1 << 31) - 1))
                guard start < normalized.count else { return nil }
                var end = start
                while end < normalized.count && normalized[end] != 0 { end += 1 }
                return normalized[start..<end]
            }
        }
        return nil
    }

    private static func offset(_ unit: UInt32) -> Int {
        Int((unit >> 10) << ((unit & (1 << 9)) >> 6))
    }

    func normalize(_ text: inout [Unicode.Scalar]) {
        guard !text.isEmpty else { return }
        // In ASCII text every scalar is its own grapheme except CR LF, so the table answers.
        if text.allSatisfy({ $0.value < 0x80 }) && !text.contains("\r") {
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(text.count)
            for c in text {
                if let replacement = asciiReplacements[Int(c.value)] {
                    out.append(contentsOf: String(decoding: replacement, as: UTF8.self).unicodeScalars)
                } else {
                    out.append(c)
                }
            }
            text = out
            return
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.count + 8)
        // As in spm_precompiled: a grapheme shorter than 6 UTF-8 bytes is looked up whole;
        // otherwise, or when it has no entry, each of its scalars is looked up alone.
        for grapheme in text.string {
            let bytes = Array(grapheme.utf8)
            if bytes.count < 6, let replacement = transform(bytes[...]) {
                out.append(contentsOf: replacement)
                continue
            }
            for scalar in grapheme.unicodeScalars {
                let part = Array(String(scalar).utf8)
                if let replacement = transform(part[...]) {
                    out.append(contentsOf: replacement)
                } else {
                    out.append(contentsOf: part)
                }
            }
        }
        text = Array(String(decoding: out, as: UTF8.self).unicodeScalars)
    }
}
