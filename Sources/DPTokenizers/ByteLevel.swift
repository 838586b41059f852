// The GPT-2/RoBERTa byte-level pre-tokenizer: an optional leading space, the GPT-2 split
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (matched by hand here, alternative by alternative as the regex engine tries them), and then
// every UTF-8 byte mapped to the printable scalar that GPT-2's `bytes_to_unicode` assigns it.

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100 onwards, in byte order.
let byteToScalar: [Unicode.Scalar] = {
    var table = [Unicode.Scalar](repeating: " ", count: 256)
    var next: UInt32 = 256
    for b in 0..<256 {
        let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
        if printable {
            table[b] = Unicode.Scalar(UInt32(b))!
        } else {
            table[b] = Unicode.Scalar(next)!
            next += 1
        }
    }
    return table
}()

/// The end of the GPT-2 regex match that starts at `i` (the pattern matches at every position).
func gpt2MatchEnd(_ text: [Unicode.Scalar], from i: Int) -> Int {
    let n = text.count
    let c = text[i]
    if c == "'" && i + 1 < n {
        let d = text[i + 1]
        if d == "s" || d == "t" || d == "m" || d == "d" { return i + 2 }
        if i + 2 < n {
            let e = text[i + 2]
            if (d == "r" && e == "e") || (d == "v" && e == "e") || (d == "l" && e == "l") { return i + 3 }
        }
    }
    // ` ?X+` for the three classes: an optional space, then at least one of the class.
    let start = (c == " " && i + 1 < n) ? i + 1 : i
    let first = text[start]
    if !(start > i && first == " ") {
        if first.isLetter {
            var j = start + 1
            while j < n && text[j].isLetter { j += 1 }
            return j
        }
        if first.isNumber {
            var j = start + 1
            while j < n && text[j].isNumber { j += 1 }
            return j
        }
        if !first.isWhitespaceRust {
            var j = start + 1
            while j < n && !text[j].isWhitespaceRust && !text[j].isLetter && !text[j].isNumber { j += 1 }
            return j
        }
    }
    // `\s+(?!\S)`, backing off one space when non-space follows; else `\s+`.
    var j = i + 1
    while j < n && text[j].isWhitespaceRust { j += 1 }
    if j == n || j - 1 == i { return j }
    return j - 1
}

struct ByteLevelPreTokenizer: PreTokenizer {
    var addPrefixSpace: Bool
    var useRegex: Bool

    func split(_ piece: Piece, into out: inout [Piece]) {
        var text = piece.text
        if addPrefixSpace && text.first != " " { text.insert(" ", at: 0) }
        var i = 0
        while i < text.count {
            let end = useRegex ? gpt2MatchEnd(text, from: i) : text.count
            out.append(Piece(text: Self.mapBytes(text[i..<end]), atStart: piece.atStart && i == 0))
            i = end
        }
    }

    static func mapBytes(_ scalars: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count)
        for c in scalars {
            if c.value < 0x80 {
                out.append(byteToScalar[Int(c.value)])
            } else {
                for b in UTF8.encode(c)! { out.append(byteToScalar[Int(b)]) }
            }
        }
        return out
    }
}
