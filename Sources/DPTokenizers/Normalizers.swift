// Normalizers: the first stage of a tokenizer.json pipeline, matching `tokenizers::normalizers`.
// Text travels as an array of Unicode scalars, the unit the Rust code iterates over (`char`).

import Foundation

protocol Normalizer: Sendable {
    func normalize(_ text: inout [Unicode.Scalar])
}

enum UnicodeForm: Sendable { case nfc, nfd, nfkc, nfkd }

/// Unicode normalisation through Foundation, skipping the text that no form changes.
func normalize(_ text: inout [Unicode.Scalar], form: UnicodeForm) {
    // No scalar below U+00C0 has a canonical decomposition, and ASCII has no compatibility one.
    let untouched: UInt32 = (form == .nfc || form == .nfd) ? 0xC0 : 0x80
    guard text.contains(where: { $0.value >= untouched }) else { return }
    let s = text.string
    let result: String
    switch form {
    case .nfc: result = s.precomposedStringWithCanonicalMapping
    case .nfd: result = s.decomposedStringWithCanonicalMapping
    case .nfkc: result = s.precomposedStringWithCompatibilityMapping
    case .nfkd: result = s.decomposedStringWithCompatibilityMapping
    }
    text = Array(result.unicodeScalars)
}

/// Rust's `char::to_lowercase` on every scalar: full mappings, no context (no final sigma).
func lowercase(_ text: inout [Unicode.Scalar]) {
    guard text.contains(where: { $0.value >= 0x80 || ($0.value >= 0x41 && $0.value <= 0x5A) }) else { return }
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(text.count)
    for c in text {
        if c.value < 0x80 {
            out.append(c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(c.value + 32)! : c)
        } else if c.properties.changesWhenLowercased {
            out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
        } else {
            out.append(c)
        }
    }
    text = out
}

struct BertNormalizer: Normalizer {
    var cleanText: Bool
    var handleChineseChars: Bool
    var stripAccents: Bool
    var lowercase: Bool

    func normalize(_ text: inout [Unicode.Scalar]) {
        if cleanText || handleChineseChars {
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(text.count + 8)
            for c in text {
                if cleanText {
                    if c.value == 0 || c.value == 0xFFFD || c.isBertControl { continue }
                    if c.isWhitespaceRust { out.append(" "); continue }
                }
                if handleChineseChars && c.value >= 0x3400 && c.isChineseCharacter {
                    out.append(" "); out.append(c); out.append(" ")
                } else {
                    out.append(c)
                }
            }
            text = out
        }
        if stripAccents {
            DPTokenizers.normalize(&text, form: .nfd)
            if text.contains(where: { $0.value >= 0x300 }) { text.removeAll(where: \.isNonspacingMark) }
        }
        if lowercase { DPTokenizers.lowercase(&text) }
    }
}

struct UnicodeNormalizer: Normalizer {
    var form: UnicodeForm
    func normalize(_ text: inout [Unicode.Scalar]) { DPTokenizers.normalize(&text, form: form) }
}

struct LowercaseNormalizer: Normalizer {
    func normalize(_ text: inout [Unicode.Scalar]) { lowercase(&text) }
}

struct StripNormalizer: Normalizer {
    var left: Bool
    var right: Bool
    func normalize(_ text: inout [Unicode.Scalar]) {
        if right { while let last = text.last, last.isWhitespaceRust { text.removeLast() } }
        if left, let first = text.firstIndex(where: { !$0.isWhitespaceRust }) {
            text.removeFirst(first)
        } else if left {
            text.removeAll()
        }
    }
}

/// `StripAccents` removes every mark (Mn, Mc, Me); it does not decompose first.
struct StripAccentsNormalizer: Normalizer {
    func normalize(_ text: inout [Unicode.Scalar]) { text.removeAll(where: \.isMark) }
}

struct PrependNormalizer: Normalizer {
    var prefix: [Unicode.Scalar]
    func normalize(_ text: inout [Unicode.Scalar]) {
        if !text.isEmpty { text.insert(contentsOf: prefix, at: 0) }
    }
}

struct ReplaceNormalizer: Normalizer {
    var pattern: Pattern
    var content: [Unicode.Scalar]
    func normalize(_ text: inout [Unicode.Scalar]) {
        let matches = pattern.matches(in: text)
        guard !matches.isEmpty else { return }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var position = 0
        for m in matches where !m.isEmpty {
            out.append(contentsOf: text[position..<m.lowerBound])
            out.append(contentsOf: content)
            position = m.upperBound
        }
        out.append(contentsOf: text[position...])
        text = out
    }
}

struct SequenceNormalizer: Normalizer {
    var normalizers: [any Normalizer]
    func normalize(_ text: inout [Unicode.Scalar]) {
        for n in normalizers { n.normalize(&text) }
    }
}

/// The `pattern` of Replace and Split: `{"String": "..."}` or `{"Regex": "..."}`.
enum Pattern: @unchecked Sendable {
    case literal([Unicode.Scalar])
    /// A regex that is one scalar repeated at least `minimum` times (ALBERT's " {2,}"),
    /// matched without the regex engine.
    case run(Unicode.Scalar, minimum: Int)
    // NSRegularExpression is immutable and documented as safe to share between threads.
    case regex(NSRegularExpression)

    init(json: JSONNode) throws {
        if let s = try json.optional("String") {
            self = .literal(Array(try s.string()))
        } else if let r = try json.optional("Regex") {
            let source = try r.string()
            if let run = Self.scalarRun(source) {
                self = run
                return
            }
            do {
                self = .regex(try NSRegularExpression(pattern: source))
            } catch {
                throw r.error("invalid regular expression \(source)")
            }
        } else {
            throw json.error("expected {\"String\": ...} or {\"Regex\": ...}")
        }
    }

    /// `c+` or `c{n,}` for a scalar `c` with no regex meaning.
    private static func scalarRun(_ source: String) -> Pattern? {
        let scalars = Array(source.unicodeScalars)
        guard let c = scalars.first, c.properties.isAlphabetic || c == " " else { return nil }
        let rest = String(String.UnicodeScalarView(scalars.dropFirst()))
        if rest == "+" { return .run(c, minimum: 1) }
        guard rest.hasPrefix("{"), rest.hasSuffix(",}"), let n = Int(rest.dropFirst().dropLast(2)), n >= 1 else { return nil }
        return .run(c, minimum: n)
    }

    /// Non-overlapping matches, left to right, as scalar index ranges.
    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .literal(let needle):
            guard !needle.isEmpty, text.count >= needle.count else { return [] }
            var result: [Range<Int>] = []
            var i = 0
            while i + needle.count <= text.count {
                if text[i] == needle[0] && text[i..<(i + needle.count)].elementsEqual(needle) {
                    result.append(i..<(i + needle.count))
                    i += needle.count
                } else {
                    i += 1
                }
            }
            return result
        case .run(let c, let minimum):
            var result: [Range<Int>] = []
            var i = 0
            while i < text.count {
                guard text[i] == c else { i += 1; continue }
                var j = i + 1
                while j < text.count && text[j] == c { j += 1 }
                if j - i >= minimum { result.append(i..<j) }
                i = j
            }
            return result
        case .regex(let regex):
            let s = text.string
            let ns = s as NSString
            // NSRegularExpression speaks UTF-16 offsets; map them back to scalar indices.
            var utf16ToScalar = [Int](repeating: 0, count: ns.length + 1)
            var u = 0
            for (k, c) in text.enumerated() {
                let width = c.value > 0xFFFF ? 2 : 1
                for w in 0..<width { utf16ToScalar[u + w] = k }
                u += width
            }
            utf16ToScalar[u] = text.count
            return regex.matches(in: s, range: NSRange(location: 0, length: ns.length)).map {
                utf16ToScalar[$0.range.location]..<utf16ToScalar[$0.range.location + $0.range.length]
            }
        }
    }
}

func makeNormalizer(_ json: JSONNode) throws -> any Normalizer {
    let type = try json.componentType()
    switch type {
    case "BertNormalizer":
        let lower = try json.optionalBool("lowercase") ?? true
        return BertNormalizer(cleanText: try json.optionalBool("clean_text") ?? true,
                              handleChineseChars: try json.optionalBool("handle_chinese_chars") ?? true,
                              stripAccents: try json.optionalBool("strip_accents") ?? lower,
                              lowercase: lower)
    case "NFC": return UnicodeNormalizer(form: .nfc)
    case "NFD": return UnicodeNormalizer(form: .nfd)
    case "NFKC": return UnicodeNormalizer(form: .nfkc)
    case "NFKD": return UnicodeNormalizer(form: .nfkd)
    case "Lowercase": return LowercaseNormalizer()
    case "Strip":
        return StripNormalizer(left: try json.optionalBool("strip_left") ?? true,
                               right: try json.optionalBool("strip_right") ?? true)
    case "StripAccents": return StripAccentsNormalizer()
    case "Prepend": return PrependNormalizer(prefix: Array(try json.required("prepend").string()))
    case "Replace":
        return ReplaceNormalizer(pattern: try Pattern(json: try json.required("pattern")),
                                 content: Array(try json.required("content").string()))
    case "Precompiled": return try PrecompiledNormalizer(json: json)
    case "Sequence":
        return SequenceNormalizer(normalizers: try json.required("normalizers").array().map(makeNormalizer))
    default: throw json.unknownType(type)
    }
}
