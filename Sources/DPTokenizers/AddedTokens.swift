// Added and special tokens: found in the text before the model runs, as `AddedVocabulary` does.
// Tokens with `normalized: false` are matched on the raw text; the others on the normalised
// text, in their normalised form. Matching is leftmost-longest, then `single_word`, `lstrip`
// and `rstrip` are applied to each match.

struct AddedToken: Sendable {
    var content: [Unicode.Scalar]
    var id: Int32
    var singleWord: Bool
    var lstrip: Bool
    var rstrip: Bool
    var normalized: Bool
}

struct AddedTokenMatcher: Sendable {
    /// first scalar -> tokens starting with it, longest first
    private let byFirstScalar: [UInt32: [AddedToken]]

    init(_ tokens: [AddedToken]) {
        var table: [UInt32: [AddedToken]] = [:]
        for t in tokens where !t.content.isEmpty { table[t.content[0].value, default: []].append(t) }
        byFirstScalar = table.mapValues { $0.sorted { $0.content.count > $1.content.count } }
    }

    var isEmpty: Bool { byFirstScalar.isEmpty }

    /// Splits `text` into runs of plain text (id nil) and matched tokens (their id).
    func split(_ text: [Unicode.Scalar]) -> [(range: Range<Int>, id: Int32?)] {
        if isEmpty { return [(0..<text.count, nil)] }
        var result: [(range: Range<Int>, id: Int32?)] = []
        var done = 0      // the end of the last split emitted
        var i = 0
        while i < text.count {
            guard let candidates = byFirstScalar[text[i].value],
                  let token = candidates.first(where: { t in
                      i + t.content.count <= text.count && text[i..<(i + t.content.count)].elementsEqual(t.content)
                  })
            else { i += 1; continue }
            var start = i
            var stop = i + token.content.count
            i = stop
            if token.singleWord {
                let startSpace = start == 0 || !text[start - 1].isWordCharacter
                let stopSpace = stop == text.count || !text[stop].isWordCharacter
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                var s = start
                while s > 0 && text[s - 1].isWhitespaceRust { s -= 1 }
                start = max(s, done)
            }
            if token.rstrip {
                while stop < text.count && text[stop].isWhitespaceRust { stop += 1 }
                i = stop
            }
            if done < start { result.append((done..<start, nil)) }
            result.append((start..<stop, token.id))
            done = stop
        }
        if done < text.count { result.append((done..<text.count, nil)) }
        return result
    }
}

func readAddedTokens(_ json: JSONNode) throws -> [AddedToken] {
    try json.array().map { node in
        let special = try node.optionalBool("special") ?? false
        return AddedToken(content: Array(try node.required("content").string()),
                          id: Int32(try node.required("id").int()),
                          singleWord: try node.optionalBool("single_word") ?? false,
                          lstrip: try node.optionalBool("lstrip") ?? false,
                          rstrip: try node.optionalBool("rstrip") ?? false,
                          normalized: try node.optionalBool("normalized") ?? !special)
    }
}
