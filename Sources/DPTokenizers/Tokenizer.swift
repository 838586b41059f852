// A tokenizer read from a Hugging Face tokenizer.json (or an old BERT vocab.txt) whose ids,
// type ids and attention masks are identical to the `tokenizers` library's. The pipeline per
// sequence: added tokens split out of the raw text -> normalizer -> normalized added tokens ->
// pre-tokenizer -> model; then truncation, the post-processor's special tokens, and padding.

import Foundation

public struct Encoding: Sendable, Equatable {
    /// [T] token ids
    public var ids: [Int32]
    /// [T] 0 for the first sequence, 1 for the second (as the post-processor says)
    public var typeIds: [Int32]
    /// [T] 1 for tokens, 0 for padding
    public var attentionMask: [Int32]

    public init(ids: [Int32], typeIds: [Int32], attentionMask: [Int32]) {
        self.ids = ids
        self.typeIds = typeIds
        self.attentionMask = attentionMask
    }
}

public enum Direction: String, Sendable { case left = "Left", right = "Right" }

public struct Truncation: Sendable, Equatable {
    public enum Strategy: String, Sendable { case longestFirst = "LongestFirst", onlyFirst = "OnlyFirst", onlySecond = "OnlySecond" }
    /// Counting the special tokens the post-processor adds.
    public var maxLength: Int
    public var strategy: Strategy = .longestFirst
    public var direction: Direction = .right

    public init(maxLength: Int, strategy: Strategy = .longestFirst, direction: Direction = .right) {
        self.maxLength = maxLength
        self.strategy = strategy
        self.direction = direction
    }
}

public struct Padding: Sendable, Equatable {
    public enum Length: Sendable, Equatable { case longest, fixed(Int) }
    public var length: Length = .longest
    public var direction: Direction = .right
    public var multipleOf: Int?
    public var padId: Int32 = 0
    public var padTypeId: Int32 = 0

    public init(length: Length = .longest, direction: Direction = .right, multipleOf: Int? = nil,
                padId: Int32 = 0, padTypeId: Int32 = 0) {
        self.length = length
        self.direction = direction
        self.multipleOf = multipleOf
        self.padId = padId
        self.padTypeId = padTypeId
    }
}

public final class Tokenizer: @unchecked Sendable {
    // Everything below is set once in init and only read afterwards, so encode may run on
    // many threads at once.
    let normalizer: (any Normalizer)?
    let preTokenizer: (any PreTokenizer)?
    let model: any Model
    let postProcessor: Template
    let rawAddedTokens: AddedTokenMatcher
    let normalizedAddedTokens: AddedTokenMatcher
    /// The `truncation` section of tokenizer.json, applied when encode gets no maxLength.
    public let truncation: Truncation?
    /// The `padding` section of tokenizer.json.
    public let padding: Padding?
    public let padTokenId: Int32?

    init(normalizer: (any Normalizer)?, preTokenizer: (any PreTokenizer)?, model: any Model,
         postProcessor: Template, addedTokens: [AddedToken], truncation: Truncation?, padding: Padding?) {
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.truncation = truncation
        self.padding = padding
        rawAddedTokens = AddedTokenMatcher(addedTokens.filter { !$0.normalized })
        normalizedAddedTokens = AddedTokenMatcher(addedTokens.filter(\.normalized).map { token in
            var t = token
            normalizer?.normalize(&t.content)
            return t
        })
        let padFromTokens = addedTokens.first { $0.content == Array("[PAD]") || $0.content == Array("<pad>") }?.id
            ?? model.id(of: "[PAD]") ?? model.id(of: "<pad>")
        padTokenId = padding?.padId ?? padFromTokens
    }

    /// A tokenizer.json file, or a folder holding tokenizer.json (fallback: vocab.txt for old
    /// BERT folders, with do_lower_case from tokenizer_config.json if present, default true).
    public convenience init(contentsOf url: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TokenizerError(file: url.path, path: "", message: "no such file or folder")
        }
        var file = url
        if isDirectory.boolValue {
            file = url.appendingPathComponent("tokenizer.json")
            if !FileManager.default.fileExists(atPath: file.path) {
                let vocab = url.appendingPathComponent("vocab.txt")
                guard FileManager.default.fileExists(atPath: vocab.path) else {
                    throw TokenizerError(file: url.path, path: "", message: "holds neither tokenizer.json nor vocab.txt")
                }
                try self.init(bertVocabulary: vocab, config: url.appendingPathComponent("tokenizer_config.json"))
                return
            }
        }
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw TokenizerError(file: file.path, path: "", message: "cannot read: \(error.localizedDescription)")
        }
        try self.init(json: JSONNode.parse(data, file: file.path))
    }

    /// Reads tokenizer.json text; `file` names it in errors.
    public convenience init(jsonData data: Data, file: String = "tokenizer.json") throws {
        try self.init(json: JSONNode.parse(data, file: file))
    }

    convenience init(json: JSONNode) throws {
        let normalizer = try json.optional("normalizer").map(makeNormalizer)
        let preTokenizer = try json.optional("pre_tokenizer").map(makePreTokenizer)
        let model = try makeModel(try json.required("model"))
        let post = try json.optional("post_processor").map(makePostProcessor) ?? .identity
        let added = try json.optional("added_tokens").map(readAddedTokens) ?? []

        var truncation: Truncation?
        if let t = try json.optional("truncation") {
            truncation = Truncation(maxLength: try t.required("max_length").int())
            if let s = try t.optional("strategy") {
                let name = try s.string()
                guard let strategy = Truncation.Strategy(rawValue: name) else { throw s.error("unknown strategy \"\(name)\"") }
                truncation?.strategy = strategy
            }
            if let d = try t.optional("direction") { truncation?.direction = try readDirection(d) }
        }
        var padding: Padding?
        if let p = try json.optional("padding") {
            var config = Padding()
            if let s = try p.optional("strategy") {
                if let name = s.value as? String {
                    guard name == "BatchLongest" else { throw s.error("unknown strategy \"\(name)\"") }
                } else {
                    config.length = .fixed(try s.required("Fixed").int())
                }
            }
            if let d = try p.optional("direction") { config.direction = try readDirection(d) }
            config.multipleOf = try p.optionalInt("pad_to_multiple_of")
            config.padId = Int32(try p.optionalInt("pad_id") ?? 0)
            config.padTypeId = Int32(try p.optionalInt("pad_type_id") ?? 0)
            padding = config
        }
        self.init(normalizer: normalizer, preTokenizer: preTokenizer, model: model, postProcessor: post,
                  addedTokens: added, truncation: truncation, padding: padding)
    }

    /// The pipeline of BERT's original tokenizer, for checkpoints that ship only vocab.txt.
    convenience init(bertVocabulary url: URL, config: URL) throws {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw TokenizerError(file: url.path, path: "", message: "cannot read as UTF-8: \(error.localizedDescription)")
        }
        // One token per line, its id the line number (as `tokenizers` reads it).
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var vocab: [String: Int32] = [:]
        for (index, line) in lines.enumerated() {
            var token = line
            while let last = token.last, last.isWhitespace { token.removeLast() }
            vocab[String(token)] = Int32(index)
        }
        var lowercase = true
        var stripAccents: Bool?
        if let data = try? Data(contentsOf: config) {
            let json = try JSONNode.parse(data, file: config.path)
            lowercase = try json.optionalBool("do_lower_case") ?? true
            stripAccents = try json.optionalBool("strip_accents")
        }
        func need(_ token: String) throws -> Int32 {
            guard let id = vocab[token] else { throw TokenizerError(file: url.path, path: "", message: "\(token) is not in the vocabulary") }
            return id
        }
        let cls = try need("[CLS]"), sep = try need("[SEP]"), unk = try need("[UNK]")
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].compactMap { name in
            vocab[name].map { AddedToken(content: Array(name), id: $0, singleWord: false, lstrip: false, rstrip: false,
                                         normalized: false) }
        }
        self.init(normalizer: BertNormalizer(cleanText: true, handleChineseChars: true,
                                             stripAccents: stripAccents ?? lowercase, lowercase: lowercase),
                  preTokenizer: BertPreTokenizer(),
                  model: WordPieceModel(vocab: vocab, unkId: unk, prefix: "##", maxInputCharsPerWord: 100),
                  postProcessor: .bert(cls: cls, sep: sep),
                  addedTokens: specials, truncation: nil, padding: nil)
    }

    /// The id of a token in the model's vocabulary, e.g. "[CLS]".
    public func id(of token: String) -> Int32? { model.id(of: token) }

    /// Special tokens added, longest_first truncation to maxLength counting the special tokens; no padding.
    /// Without maxLength, the tokenizer.json truncation section applies (if any).
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil) -> Encoding {
        var first = tokenize(text)
        var second = pair.map(tokenize)
        var rule = truncation
        if let maxLength {
            rule = Truncation(maxLength: maxLength, strategy: truncation?.strategy ?? .longestFirst,
                              direction: truncation?.direction ?? .right)
        }
        if let rule {
            let room = max(0, rule.maxLength - postProcessor.addedTokens(pair: second != nil))
            truncate(&first, &second, to: room, strategy: rule.strategy, direction: rule.direction)
        }
        var ids: [Int32] = []
        var typeIds: [Int32] = []
        let template = second == nil ? postProcessor.single : postProcessor.pair
        for item in template {
            switch item {
            case .sequence(let isFirst, let typeId):
                let part = isFirst ? first : (second ?? [])
                ids.append(contentsOf: part)
                typeIds.append(contentsOf: repeatElement(typeId, count: part.count))
            case .special(let specialIds, let typeId):
                ids.append(contentsOf: specialIds)
                typeIds.append(contentsOf: repeatElement(typeId, count: specialIds.count))
            }
        }
        return Encoding(ids: ids, typeIds: typeIds, attentionMask: [Int32](repeating: 1, count: ids.count))
    }

    /// Pads every encoding to the longest one or to a fixed length (never truncating), as
    /// `padding` says; by default tokenizer.json's padding section, else to the longest with padTokenId.
    public func pad(_ batch: [Encoding], using padding: Padding? = nil) -> [Encoding] {
        let rule = padding ?? self.padding ?? Padding(padId: padTokenId ?? 0)
        var target: Int
        switch rule.length {
        case .longest: target = batch.map(\.ids.count).max() ?? 0
        case .fixed(let n): target = n
        }
        if let m = rule.multipleOf, m > 0, target % m != 0 { target += m - target % m }
        return batch.map { e in
            let missing = target - e.ids.count
            guard missing > 0 else { return e }
            let pads = [Int32](repeating: rule.padId, count: missing)
            let padTypes = [Int32](repeating: rule.padTypeId, count: missing)
            let zeros = [Int32](repeating: 0, count: missing)
            switch rule.direction {
            case .right:
                return Encoding(ids: e.ids + pads, typeIds: e.typeIds + padTypes, attentionMask: e.attentionMask + zeros)
            case .left:
                return Encoding(ids: pads + e.ids, typeIds: padTypes + e.typeIds, attentionMask: zeros + e.attentionMask)
            }
        }
    }

    /// The model's ids for one sequence, before special tokens.
    func tokenize(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        let scalars = Array(text.unicodeScalars)
        for (range, id) in rawAddedTokens.split(scalars) {
            if let id { ids.append(id); continue }
            var normalized = Array(scalars[range])
            normalizer?.normalize(&normalized)
            let atStart = range.lowerBound == 0
            for (inner, innerId) in normalizedAddedTokens.split(normalized) {
                if let innerId { ids.append(innerId); continue }
                let piece = Piece(text: Array(normalized[inner]), atStart: atStart && inner.lowerBound == 0)
                guard !piece.text.isEmpty else { continue }
                if let preTokenizer {
                    var words: [Piece] = []
                    preTokenizer.split(piece, into: &words)
                    for word in words where !word.text.isEmpty { model.tokenize(word.text, into: &ids) }
                } else {
                    model.tokenize(piece.text, into: &ids)
                }
            }
        }
        return ids
    }
}

private func readDirection(_ node: JSONNode) throws -> Direction {
    let name = try node.string()
    guard let d = Direction(rawValue: name) else { throw node.error("unknown direction \"\(name)\"") }
    return d
}

/// `truncate_encodings` of `tokenizers`: cut the pair down to `maxLength` tokens in all.
func truncate(_ first: inout [Int32], _ second: inout [Int32]?, to maxLength: Int,
              strategy: Truncation.Strategy, direction: Direction) {
    func cut(_ ids: inout [Int32], to n: Int) {
        guard ids.count > n else { return }
        if direction == .right { ids.removeLast(ids.count - n) } else { ids.removeFirst(ids.count - n) }
    }
    let total = first.count + (second?.count ?? 0)
    if maxLength == 0 {
        first.removeAll()
        second = second.map { _ in [] }
        return
    }
    guard total > maxLength else { return }
    let toRemove = total - maxLength
    switch strategy {
    case .longestFirst:
        guard var other = second else { cut(&first, to: first.count - toRemove); return }
        var n1 = first.count, n2 = other.count
        let swapped = n1 > n2
        if swapped { swap(&n1, &n2) }
        n2 = n1 > maxLength ? n1 : max(n1, maxLength - n1)
        if n1 + n2 > maxLength {
            n1 = maxLength / 2
            n2 = n1 + maxLength % 2
        }
        if swapped { swap(&n1, &n2) }
        cut(&first, to: n1)
        cut(&other, to: n2)
        second = other
    case .onlyFirst:
        // `tokenizers` refuses when the chosen sequence is too short; keep it whole then.
        if first.count > toRemove { cut(&first, to: first.count - toRemove) }
    case .onlySecond:
        if var other = second, other.count > toRemove {
            cut(&other, to: other.count - toRemove)
            second = other
        }
    }
}
