// Pre-tokenizers: split normalised text into words before the model sees them, matching
// `tokenizers::pre_tokenizers`. Each piece remembers whether it starts the original text,
// which Metaspace's `prepend_scheme: first` needs.

import Foundation

struct Piece {
    var text: [Unicode.Scalar]
    var atStart: Bool
}

protocol PreTokenizer: Sendable {
    /// Appends the non-empty sub-pieces of `piece` to `out`.
    func split(_ piece: Piece, into out: inout [Piece])
}

/// What happens to a matched delimiter (`SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// `NormalizedString::split`: `matches` are sorted, non-overlapping ranges; the gaps between
/// them are the other pieces. Empty pieces are dropped, as `PreTokenizedString::split` does.
func split(_ piece: Piece, matches: [Range<Int>], behavior: SplitBehavior, into out: inout [Piece]) {
    let text = piece.text
    guard !matches.isEmpty else {
        if !text.isEmpty { out.append(piece) }
        return
    }
    // (range, isMatch) covering the whole text
    var parts: [(Range<Int>, Bool)] = []
    parts.reserveCapacity(2 * matches.count + 1)
    var position = 0
    for m in matches {
        if position < m.lowerBound { parts.append((position..<m.lowerBound, false)) }
        parts.append((m, true))
        position = m.upperBound
    }
    if position < text.count { parts.append((position..<text.count, false)) }

    var kept: [Range<Int>] = []
    kept.reserveCapacity(parts.count)
    switch behavior {
    case .isolated:
        kept = parts.map(\.0)
    case .removed:
        kept = parts.filter { !$0.1 }.map(\.0)
    case .contiguous:
        var previous = false
        for (r, isMatch) in parts {
            if isMatch == previous, let last = kept.last {
                kept[kept.count - 1] = last.lowerBound..<r.upperBound
            } else {
                kept.append(r)
            }
            previous = isMatch
        }
    case .mergedWithPrevious:
        var previous = false
        for (r, isMatch) in parts {
            if isMatch && !previous, let last = kept.last {
                kept[kept.count - 1] = last.lowerBound..<r.upperBound
            } else {
                kept.append(r)
            }
            previous = isMatch
        }
    case .mergedWithNext:
        var previous = false
        for (r, isMatch) in parts.reversed() {
            if isMatch && !previous, let last = kept.last {
                kept[kept.count - 1] = r.lowerBound..<last.upperBound
            } else {
                kept.append(r)
            }
            previous = isMatch
        }
        kept.reverse()
    }
    for r in kept where !r.isEmpty {
        out.append(Piece(text: Array(text[r]), atStart: piece.atStart && r.lowerBound == 0))
    }
}

/// Every scalar that satisfies `predicate` as its own match.
@inline(__always)
func scalarMatches(_ text: [Unicode.Scalar], where predicate: (Unicode.Scalar) -> Bool) -> [Range<Int>] {
    var result: [Range<Int>] = []
    for (i, c) in text.enumerated() where predicate(c) { result.append(i..<(i + 1)) }
    return result
}

/// Whitespace removed, then every punctuation scalar isolated.
struct BertPreTokenizer: PreTokenizer {
    func split(_ piece: Piece, into out: inout [Piece]) {
        let text = piece.text
        var start = 0
        var i = 0
        func emit(_ r: Range<Int>) {
            if !r.isEmpty { out.append(Piece(text: Array(text[r]), atStart: piece.atStart && r.lowerBound == 0)) }
        }
        while i < text.count {
            let c = text[i]
            if c.isWhitespaceRust {
                emit(start..<i)
                start = i + 1
            } else if c.isBertPunctuation {
                emit(start..<i)
                emit(i..<(i + 1))
                start = i + 1
            }
            i += 1
        }
        emit(start..<text.count)
    }
}

struct WhitespaceSplitPreTokenizer: PreTokenizer {
    func split(_ piece: Piece, into out: inout [Piece]) {
        DPTokenizers.split(piece, matches: scalarMatches(piece.text, where: \.isWhitespaceRust),
                           behavior: .removed, into: &out)
    }
}

/// The regex `\w+|[^\w\s]+`: runs of word characters and runs of other non-space characters.
struct WhitespacePreTokenizer: PreTokenizer {
    func split(_ piece: Piece, into out: inout [Piece]) {
        let text = piece.text
        var i = 0
        while i < text.count {
            let c = text[i]
            if c.isWhitespaceRust { i += 1; continue }
            let word = c.isWordCharacter
            var j = i + 1
            while j < text.count, !text[j].isWhitespaceRust, text[j].isWordCharacter == word { j += 1 }
            out.append(Piece(text: Array(text[i..<j]), atStart: piece.atStart && i == 0))
            i = j
        }
    }
}

struct PunctuationPreTokenizer: PreTokenizer {
    var behavior: SplitBehavior
    func split(_ piece: Piece, into out: inout [Piece]) {
        DPTokenizers.split(piece, matches: scalarMatches(piece.text, where: \.isBertPunctuation),
                           behavior: behavior, into: &out)
    }
}

struct DigitsPreTokenizer: PreTokenizer {
    var individualDigits: Bool
    func split(_ piece: Piece, into out: inout [Piece]) {
        DPTokenizers.split(piece, matches: scalarMatches(piece.text, where: \.isNumber),
                           behavior: individualDigits ? .isolated : .contiguous, into: &out)
    }
}

struct SplitPreTokenizer: PreTokenizer {
    var pattern: Pattern
    var behavior: SplitBehavior
    var invert: Bool
    func split(_ piece: Piece, into out: inout [Piece]) {
        var matches = pattern.matches(in: piece.text).filter { !$0.isEmpty }
        if invert {
            // The gaps become the matches.
            var gaps: [Range<Int>] = []
            var position = 0
            for m in matches {
                if position < m.lowerBound { gaps.append(position..<m.lowerBound) }
                position = m.upperBound
            }
            if position < piece.text.count { gaps.append(position..<piece.text.count) }
            matches = gaps
        }
        DPTokenizers.split(piece, matches: matches, behavior: behavior, into: &out)
    }
}

struct MetaspacePreTokenizer: PreTokenizer {
    enum PrependScheme: String { case always, first, never }
    var replacement: Unicode.Scalar
    var prependScheme: PrependScheme
    var splitWords: Bool

    func split(_ piece: Piece, into out: inout [Piece]) {
        var text = piece.text.map { $0 == " " ? replacement : $0 }
        let prepend: Bool
        switch prependScheme {
        case .always: prepend = text.first != replacement
        case .first: prepend = text.first != replacement && piece.atStart
        case .never: prepend = false
        }
        if prepend { text.insert(replacement, at: 0) }
        let replaced = Piece(text: text, atStart: piece.atStart)
        if splitWords {
            DPTokenizers.split(replaced, matches: scalarMatches(text, where: { $0 == replacement }),
                               behavior: .mergedWithNext, into: &out)
        } else if !text.isEmpty {
            out.append(replaced)
        }
    }
}

struct SequencePreTokenizer: PreTokenizer {
    var preTokenizers: [any PreTokenizer]
    func split(_ piece: Piece, into out: inout [Piece]) {
        var pieces = [piece]
        for p in preTokenizers {
            var next: [Piece] = []
            for item in pieces { p.split(item, into: &next) }
            pieces = next
        }
        out.append(contentsOf: pieces)
    }
}

func makePreTokenizer(_ json: JSONNode) throws -> any PreTokenizer {
    let type = try json.componentType()
    func behavior(_ key: String, default value: SplitBehavior) throws -> SplitBehavior {
        guard let node = try json.optional(key) else { return value }
        let name = try node.string()
        guard let b = SplitBehavior(rawValue: name) else { throw node.error("unknown behavior \"\(name)\"") }
        return b
    }
    switch type {
    case "BertPreTokenizer": return BertPreTokenizer()
    case "Whitespace": return WhitespacePreTokenizer()
    case "WhitespaceSplit": return WhitespaceSplitPreTokenizer()
    case "Punctuation": return PunctuationPreTokenizer(behavior: try behavior("behavior", default: .isolated))
    case "Digits": return DigitsPreTokenizer(individualDigits: try json.optionalBool("individual_digits") ?? false)
    case "Split":
        return SplitPreTokenizer(pattern: try Pattern(json: try json.required("pattern")),
                                 behavior: try behavior("behavior", default: .removed),
                                 invert: try json.optionalBool("invert") ?? false)
    case "ByteLevel":
        return ByteLevelPreTokenizer(addPrefixSpace: try json.optionalBool("add_prefix_space") ?? true,
                                     useRegex: try json.optionalBool("use_regex") ?? true)
    case "Metaspace":
        let replacementNode = try json.required("replacement")
        let replacement = try replacementNode.string().unicodeScalars
        guard replacement.count == 1, let scalar = replacement.first else {
            throw replacementNode.error("expected a single character")
        }
        var scheme = MetaspacePreTokenizer.PrependScheme.always
        if let node = try json.optional("prepend_scheme") {
            let name = try node.string()
            guard let s = MetaspacePreTokenizer.PrependScheme(rawValue: name) else {
                throw node.error("unknown prepend_scheme \"\(name)\"")
            }
            scheme = s
        } else if let addPrefix = try json.optionalBool("add_prefix_space") {
            // The format before prepend_scheme existed.
            scheme = addPrefix ? .always : .never
        }
        return MetaspacePreTokenizer(replacement: scalar, prependScheme: scheme,
                                     splitWords: try json.optionalBool("split") ?? true)
    case "Sequence":
        return SequencePreTokenizer(preTokenizers: try json.required("pretokenizers").array().map(makePreTokenizer))
    default: throw json.unknownType(type)
    }
}
