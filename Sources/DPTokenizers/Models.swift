// The models that turn one pre-tokenized word into ids: WordPiece, BPE and Unigram, matching
// `tokenizers::models`.

protocol Model: Sendable {
    func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int32])
    func id(of token: String) -> Int32?
}

/// A token -> id table read from `model.vocab` ({"token": id, ...}).
func readVocabulary(_ json: JSONNode) throws -> [String: Int32] {
    var vocab: [String: Int32] = [:]
    let entries = try json.object()
    vocab.reserveCapacity(entries.count)
    for (token, node) in entries { vocab[token] = Int32(try node.int()) }
    return vocab
}

/// Greedy longest-match-first; a word with any piece outside the vocabulary becomes `unk`.
struct WordPieceModel: Model {
    let vocab: [String: Int32]
    let unkId: Int32
    let prefix: String
    let maxInputCharsPerWord: Int

    func id(of token: String) -> Int32? { vocab[token] }

    func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int32]) {
        if word.count > maxInputCharsPerWord { ids.append(unkId); return }
        let mark = ids.count
        var start = 0
        var key = String()
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                key.removeAll(keepingCapacity: true)
                if start > 0 { key.append(prefix) }
                key.unicodeScalars.append(contentsOf: word[start..<end])
                if let id = vocab[key] { found = id; break }
                end -= 1
            }
            guard let id = found else {
                ids.removeSubrange(mark...)
                ids.append(unkId)
                return
            }
            ids.append(id)
            start = end
        }
    }
}

struct BPEModel: Model {
    let vocab: [String: Int32]
    let merges: MergeTable
    let unkToken: String?
    let prefix: String?
    let suffix: String?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// [256] the ids of the `<0xNN>` tokens, for byte_fallback
    let byteIds: [Int32?]
    /// [0x10000] the id of each BMP scalar as a whole symbol, -1 where it has none; empty when a
    /// prefix or suffix makes the symbol depend on its place in the word
    let scalarIds: [Int32]

    func id(of token: String) -> Int32? { vocab[token] }

    init(json: JSONNode) throws {
        vocab = try readVocabulary(try json.required("vocab"))
        unkToken = try json.optionalString("unk_token")
        prefix = try json.optionalString("continuing_subword_prefix")
        suffix = try json.optionalString("end_of_word_suffix")
        fuseUnk = try json.optionalBool("fuse_unk") ?? false
        byteFallback = try json.optionalBool("byte_fallback") ?? false
        ignoreMerges = try json.optionalBool("ignore_merges") ?? false
        let mergeNodes = try json.required("merges").array()
        var table = MergeTable(capacity: mergeNodes.count)
        let prefixLength = prefix?.unicodeScalars.count ?? 0
        for (rank, node) in mergeNodes.enumerated() {
            // "a b" in the older format, ["a", "b"] in the newer one.
            let pair: [String]
            if let line = node.value as? String {
                pair = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                pair = try node.array().map { try $0.string() }
            }
            guard pair.count == 2 else { throw node.error("a merge must be two tokens") }
            guard let a = vocab[pair[0]] else { throw node.error("merge token \"\(pair[0])\" is not in the vocabulary") }
            guard let b = vocab[pair[1]] else { throw node.error("merge token \"\(pair[1])\" is not in the vocabulary") }
            // The merged token drops the right part's continuing-subword prefix.
            let merged = pair[0] + String(String.UnicodeScalarView(pair[1].unicodeScalars.dropFirst(prefixLength)))
            guard let id = vocab[merged] else { throw node.error("merged token \"\(merged)\" is not in the vocabulary") }
            table.insertIfAbsent(left: a, right: b, rank: Int32(rank), id: id)
        }
        merges = table
        byteIds = (0..<256).map { [vocab] b in vocab["<0x" + String(b, radix: 16, uppercase: true).leftPadded(to: 2) + ">"] }
        var scalarIds: [Int32] = []
        if prefix == nil && suffix == nil {
            scalarIds = [Int32](repeating: -1, count: 0x10000)
            for (token, id) in vocab {
                let scalars = token.unicodeScalars
                if scalars.count == 1, let c = scalars.first, c.value < 0x10000 { scalarIds[Int(c.value)] = id }
            }
        }
        self.scalarIds = scalarIds
    }

    func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int32]) {
        if ignoreMerges, let id = vocab[word.string] { ids.append(id); return }
        // [symbols] ids, merged in place
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        var pendingUnk: Int32?
        var key = String()
        for (i, c) in word.enumerated() {
            if c.value < scalarIds.count, scalarIds[Int(c.value)] >= 0 {
                if let unk = pendingUnk { symbols.append(unk); pendingUnk = nil }
                symbols.append(scalarIds[Int(c.value)])
                continue
            }
            key.removeAll(keepingCapacity: true)
            if i > 0, let prefix { key.append(prefix) }
            key.unicodeScalars.append(c)
            if i == word.count - 1, let suffix { key.append(suffix) }
            if let id = vocab[key] {
                if let unk = pendingUnk { symbols.append(unk); pendingUnk = nil }
                symbols.append(id)
                continue
            }
            if byteFallback {
                let bytes = Array(key.utf8)
                let fallback = bytes.compactMap { byteIds[Int($0)] }
                if fallback.count == bytes.count { symbols.append(contentsOf: fallback); continue }
            }
            if let unkToken, let unkId = vocab[unkToken] {
                if let unk = pendingUnk, !fuseUnk { symbols.append(unk) }
                pendingUnk = unkId
            }
        }
        if let unk = pendingUnk { symbols.append(unk) }
        merge(&symbols)
        ids.append(contentsOf: symbols)
    }

    @inline(__always) private func merge(_ left: Int32, _ right: Int32) -> (rank: Int32, id: Int32)? {
        merges.lookup(left: left, right: right)
    }

    /// Applies the lowest-ranked merge among adjacent pairs, the leftmost on ties, until none
    /// applies. Short words rescan the pairs after each merge; long ones (a whole text when
    /// there is no pre-tokenizer) keep the pairs in a heap, as `tokenizers` does.
    private func merge(_ symbols: inout [Int32]) {
        if symbols.count > 48 { mergeWithHeap(&symbols); return }
        guard symbols.count > 1 else { return }
        // [symbols - 1] rank and result of the merge of each adjacent pair; Int32.max: none
        var ranks = [Int32](repeating: .max, count: symbols.count - 1)
        var merged = [Int32](repeating: 0, count: symbols.count - 1)
        func refresh(_ k: Int) {
            if let m = merge(symbols[k], symbols[k + 1]) { ranks[k] = m.rank; merged[k] = m.id } else { ranks[k] = .max }
        }
        for k in ranks.indices { refresh(k) }
        while !ranks.isEmpty {
            var bestAt = 0
            for k in 1..<ranks.count where ranks[k] < ranks[bestAt] { bestAt = k }
            if ranks[bestAt] == .max { return }
            symbols[bestAt] = merged[bestAt]
            symbols.remove(at: bestAt + 1)
            ranks.remove(at: bestAt)
            merged.remove(at: bestAt)
            if bestAt > 0 { refresh(bestAt - 1) }
            if bestAt < ranks.count { refresh(bestAt) }
        }
    }

    private func mergeWithHeap(_ symbols: inout [Int32]) {
        let n = symbols.count
        // [n] neighbours in the shrinking word, -1 at the ends; merged-away symbols are not alive
        var previous = (0..<n).map { $0 - 1 }
        var following = (0..<n).map { $0 + 1 < n ? $0 + 1 : -1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        for k in 0..<(n - 1) {
            if let m = merge(symbols[k], symbols[k + 1]) { heap.push(MergeHeap.Entry(rank: m.rank, position: k, id: m.id)) }
        }
        while let top = heap.pop() {
            let at = top.position
            let right = following[at]
            // Entries go stale when a neighbour merged first; skip those.
            guard alive[at], right >= 0, let m = merge(symbols[at], symbols[right]), m.id == top.id else { continue }
            symbols[at] = top.id
            alive[right] = false
            following[at] = following[right]
            if following[right] >= 0 { previous[following[right]] = at }
            if previous[at] >= 0, let m = merge(symbols[previous[at]], symbols[at]) {
                heap.push(MergeHeap.Entry(rank: m.rank, position: previous[at], id: m.id))
            }
            if following[at] >= 0, let m = merge(symbols[at], symbols[following[at]]) {
                heap.push(MergeHeap.Entry(rank: m.rank, position: at, id: m.id))
            }
        }
        symbols = (0..<n).filter { alive[$0] }.map { symbols[$0] }
    }
}

/// (left id, right id) -> (rank, merged id), open addressing with a multiplicative hash: the
/// lookup runs for every adjacent pair on every merge, where a general Dictionary costs more.
struct MergeTable: Sendable {
    /// [slots] left << 32 | right, or UInt64.max for an empty slot
    private var keys: [UInt64]
    /// [slots]
    private var ranks: [Int32]
    /// [slots]
    private var ids: [Int32]
    private let shift: UInt64

    init(capacity: Int) {
        var bits: UInt64 = 4
        while (1 << bits) < 2 * max(capacity, 1) { bits += 1 }
        keys = [UInt64](repeating: .max, count: 1 << bits)
        ranks = [Int32](repeating: 0, count: 1 << bits)
        ids = [Int32](repeating: 0, count: 1 << bits)
        shift = 64 - bits
    }

    @inline(__always) private func slot(_ key: UInt64) -> Int {
        Int((key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// Keeps the first (lowest-ranked) entry of a pair listed twice.
    mutating func insertIfAbsent(left: Int32, right: Int32, rank: Int32, id: Int32) {
        let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
        var at = slot(key)
        while keys[at] != .max {
            if keys[at] == key { return }
            at = (at + 1) & (keys.count - 1)
        }
        keys[at] = key
        ranks[at] = rank
        ids[at] = id
    }

    @inline(__always) func lookup(left: Int32, right: Int32) -> (rank: Int32, id: Int32)? {
        let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
        var at = slot(key)
        while true {
            let k = keys[at]
            if k == key { return (ranks[at], ids[at]) }
            if k == .max { return nil }
            at = (at + 1) & (keys.count - 1)
        }
    }
}

/// A binary min-heap of candidate merges, by rank and then by position.
private struct MergeHeap {
    struct Entry {
        var rank: Int32
        var position: Int
        var id: Int32
        func precedes(_ other: Entry) -> Bool {
            rank != other.rank ? rank < other.rank : position < other.position
        }
    }
    private var items: [Entry] = []

    mutating func push(_ e: Entry) {
        items.append(e)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var best = parent
                if left < items.count && items[left].precedes(items[best]) { best = left }
                if right < items.count && items[right].precedes(items[best]) { best = right }
                if best == parent { break }
                items.swapAt(parent, best)
                parent = best
            }
        }
        return top
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// SentencePiece's unigram model: the segmentation with the highest total log-probability
/// (Viterbi over a trie of the pieces), unknown scalars scored at the lowest score minus 10.
struct UnigramModel: Model {
    let scores: [Double]
    let vocab: [String: Int32]
    let unkId: Int32?
    let byteFallback: Bool
    let unkScore: Double
    /// (node << 32 | scalar) -> child node; the root is node 0
    let children: [UInt64: Int32]
    /// [nodes] the id of the piece that ends at a node, or -1
    let terminal: [Int32]
    let byteIds: [Int32?]

    func id(of token: String) -> Int32? { vocab[token] }

    init(json: JSONNode) throws {
        var scores: [Double] = []
        var vocab: [String: Int32] = [:]
        var children: [UInt64: Int32] = [:]
        var terminal: [Int32] = [-1]
        for node in try json.required("vocab").array() {
            let entry = try node.array()
            guard entry.count == 2 else { throw node.error("expected [piece, score]") }
            let piece = try entry[0].string()
            let id = Int32(scores.count)
            scores.append(try entry[1].double())
            vocab[piece] = id
            var at = 0
            for c in piece.unicodeScalars {
                let edge = UInt64(at) << 32 | UInt64(c.value)
                if let next = children[edge] {
                    at = Int(next)
                } else {
                    children[edge] = Int32(terminal.count)
                    terminal.append(-1)
                    at = terminal.count - 1
                }
            }
            terminal[at] = id
        }
        if let unk = try json.optionalInt("unk_id") {
            guard unk >= 0 && unk < scores.count else {
                throw try json.required("unk_id").error("unk_id \(unk) is outside the \(scores.count) pieces")
            }
            unkId = Int32(unk)
        } else {
            unkId = nil
        }
        self.scores = scores
        self.vocab = vocab
        self.children = children
        self.terminal = terminal
        byteFallback = try json.optionalBool("byte_fallback") ?? false
        unkScore = (scores.min() ?? 0) - 10
        byteIds = (0..<256).map { [vocab] b in
            let hex = String(b, radix: 16, uppercase: true)
            return vocab["<0x" + (hex.count < 2 ? "0" + hex : hex) + ">"]
        }
    }

    func tokenize(_ word: [Unicode.Scalar], into ids: inout [Int32]) {
        let n = word.count
        // [n + 1] best path ending at each position: score, where it starts, its last id
        var bestScore = [Double](repeating: 0, count: n + 1)
        var bestStart = [Int](repeating: -1, count: n + 1)
        var bestId = [Int32](repeating: -1, count: n + 1)
        for start in 0..<n {
            let base = bestScore[start]
            var hasSingle = false
            var at = 0
            var end = start
            while end < n, let next = children[UInt64(at) << 32 | UInt64(word[end].value)] {
                at = Int(next)
                end += 1
                let id = terminal[at]
                guard id >= 0 else { continue }
                let candidate = base + scores[Int(id)]
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestId[end] = id
                }
                if end == start + 1 { hasSingle = true }
            }
            if !hasSingle {
                let candidate = base + unkScore
                if bestStart[start + 1] < 0 || candidate > bestScore[start + 1] {
                    bestScore[start + 1] = candidate
                    bestStart[start + 1] = start
                    bestId[start + 1] = unkId ?? -1
                }
            }
        }
        // Walk back; consecutive unknown pieces fuse into one (fuse_unk is always on). A piece
        // found in the trie keeps its id; a fused unknown run is looked up again by its text.
        var spans: [(range: Range<Int>, id: Int32?)] = []
        var end = n
        var unkRunStart: Int?
        var unkRunEnd = 0
        while end > 0 {
            let start = bestStart[end]
            if bestId[end] == (unkId ?? -1) {
                if unkRunStart == nil { unkRunEnd = end }
                unkRunStart = start
            } else {
                if let s = unkRunStart { spans.append((s..<unkRunEnd, nil)); unkRunStart = nil }
                spans.append((start..<end, bestId[end]))
            }
            end = start
        }
        if let s = unkRunStart { spans.append((s..<unkRunEnd, nil)) }
        for (span, known) in spans.reversed() {
            if let known { ids.append(known); continue }
            let piece = word[span].string
            if let id = vocab[piece] {
                ids.append(id)
            } else if byteFallback {
                let bytes = Array(piece.utf8)
                let fallback = bytes.compactMap { byteIds[Int($0)] }
                if fallback.count == bytes.count {
                    ids.append(contentsOf: fallback)
                } else if let unkId {
                    ids.append(unkId)
                }
            } else if let unkId {
                ids.append(unkId)
            }
        }
    }
}

func makeModel(_ json: JSONNode) throws -> any Model {
    // Old files leave out `type`; WordPiece and BPE are then told apart by their fields.
    let type: String
    if let t = try json.optionalString("type") {
        type = t
    } else if try json.optional("merges") != nil {
        type = "BPE"
    } else if try json.optional("continuing_subword_prefix") != nil {
        type = "WordPiece"
    } else {
        type = "Unigram"
    }
    switch type {
    case "WordPiece":
        let vocab = try readVocabulary(try json.required("vocab"))
        let unk = try json.optionalString("unk_token") ?? "[UNK]"
        guard let unkId = vocab[unk] else { throw try json.required("unk_token").error("\"\(unk)\" is not in the vocabulary") }
        return WordPieceModel(vocab: vocab, unkId: unkId,
                              prefix: try json.optionalString("continuing_subword_prefix") ?? "##",
                              maxInputCharsPerWord: try json.optionalInt("max_input_chars_per_word") ?? 100)
    case "BPE": return try BPEModel(json: json)
    case "Unigram": return try UnigramModel(json: json)
    default: throw json.unknownType(type)
    }
}
