// The Hugging Face `config.json` of a BERT, RoBERTa or ALBERT checkpoint (transformers'
// BertConfig, RobertaConfig, AlbertConfig). Keys that fix tensor shapes are required; the
// others take transformers' class defaults. The parsed JSON object is kept whole so that a
// fine-tuned checkpoint is written back with every key we do not interpret.

import Foundation
import DPBackend

public struct ModelConfig: Sendable, Equatable {
    public enum ModelType: String, Sendable, CaseIterable {
        case bert, roberta, albert
    }

    /// Where the JSON came from, for error messages.
    public let source: String
    public let modelType: ModelType
    public let vocabSize: Int
    public let hiddenSize: Int
    public let numHiddenLayers: Int
    public let numAttentionHeads: Int
    public let intermediateSize: Int
    public let hiddenAct: GELUForm
    public let hiddenDropoutProb: Float
    public let attentionProbsDropoutProb: Float
    public let maxPositionEmbeddings: Int
    public let typeVocabSize: Int
    public let layerNormEps: Float
    /// The standard deviation of transformers' _init_weights for fresh linear and embedding weights.
    public let initializerRange: Float
    public let padTokenId: Int
    /// ALBERT factorises the embeddings; for BERT and RoBERTa this equals hiddenSize.
    public let embeddingSize: Int
    /// ALBERT's layer sharing; 1 and 1 for BERT and RoBERTa.
    public let numHiddenGroups: Int
    public let innerGroupNum: Int
    /// ALBERT's `classifier_dropout_prob`, BERT's and RoBERTa's `classifier_dropout`; nil
    /// means the head uses hiddenDropoutProb.
    public let classifierDropoutProb: Float?
    public let numLabels: Int
    public let problemType: String?
    public let id2label: [Int: String]?
    /// dp-train's own keys, naming the head a saved model was trained with: `dp_train_pooling`
    /// and, for weighted_layers, `dp_train_pooled_layers`.
    public let headPooling: Pooling?
    public let pooledLayers: Int?
    /// The hidden states a forward pass leaves: the embeddings' output and each layer's.
    public var hiddenStateCount: Int { numHiddenLayers * innerGroupNum + 1 }
    /// The whole JSON object as read.
    public let raw: [String: JSONValue]

    public static let problemTypes = ["regression", "single_label_classification", "multi_label_classification"]

    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CheckpointError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        try self.init(jsonData: data, source: url.path)
    }

    public init(jsonData: Data, source: String) throws {
        guard case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: jsonData) else {
            throw CheckpointError.unreadable(file: source, reason: "not a JSON object")
        }
        let keys = ConfigKeys(object: object, file: source)
        let modelType = try keys.modelType()
        let isAlbert = modelType == .albert
        self.source = source
        self.modelType = modelType
        vocabSize = try keys.positiveInt("vocab_size")
        hiddenSize = try keys.positiveInt("hidden_size")
        numHiddenLayers = try keys.positiveInt("num_hidden_layers")
        numAttentionHeads = try keys.positiveInt("num_attention_heads")
        intermediateSize = try keys.positiveInt("intermediate_size")
        hiddenAct = try keys.gelu(default: isAlbert ? "gelu_new" : "gelu")
        hiddenDropoutProb = try keys.probability("hidden_dropout_prob", default: isAlbert ? 0 : 0.1)
        attentionProbsDropoutProb = try keys.probability("attention_probs_dropout_prob", default: isAlbert ? 0 : 0.1)
        maxPositionEmbeddings = try keys.positiveInt("max_position_embeddings")
        typeVocabSize = try keys.positiveInt("type_vocab_size")
        layerNormEps = try keys.positiveFloat("layer_norm_eps", default: 1e-12)
        initializerRange = try keys.positiveFloat("initializer_range", default: 0.02)
        padTokenId = try keys.index("pad_token_id", below: vocabSize, default: modelType == .roberta ? 1 : 0)
        embeddingSize = try isAlbert ? keys.positiveInt("embedding_size") : hiddenSize
        numHiddenGroups = try isAlbert ? keys.positiveInt("num_hidden_groups", default: 1) : 1
        innerGroupNum = try isAlbert ? keys.positiveInt("inner_group_num", default: 1) : 1
        classifierDropoutProb = try isAlbert
            ? keys.optionalProbability("classifier_dropout_prob", default: 0.1)
            : keys.optionalProbability("classifier_dropout", default: nil)
        id2label = try keys.id2label()
        numLabels = try keys.numLabels(id2label: id2label)
        problemType = try keys.oneOf("problem_type", Self.problemTypes)
        headPooling = try keys.oneOf("dp_train_pooling", Pooling.allCases.map(\.rawValue)).flatMap(Pooling.init(rawValue:))
        pooledLayers = try keys.optionalInt("dp_train_pooled_layers",
                                            in: 1...(numHiddenLayers * innerGroupNum + 1))
        raw = object
        try keys.checkAbsolutePositions()
        try checkDivisibility()
    }

    private func checkDivisibility() throws {
        guard hiddenSize % numAttentionHeads == 0 else {
            throw CheckpointError.invalidValue(file: source, key: "hidden_size", value: "\(hiddenSize)",
                                               reason: "is not divisible by num_attention_heads = \(numAttentionHeads)")
        }
        guard numHiddenLayers % numHiddenGroups == 0 else {
            throw CheckpointError.invalidValue(file: source, key: "num_hidden_layers", value: "\(numHiddenLayers)",
                                               reason: "is not divisible by num_hidden_groups = \(numHiddenGroups)")
        }
    }

    /// The config with `overrides` applied (e.g. `architectures`, `num_labels`,
    /// `problem_type`), as sorted, indented JSON. When num_labels changes and no new id2label
    /// is given, id2label and label2id are reset to transformers' LABEL_i defaults so the file
    /// stays consistent. An override of null removes its key. The result is parsed again, so an invalid override throws here rather
    /// than when the checkpoint is next loaded.
    public func jsonData(updating overrides: [String: JSONValue]) throws -> Data {
        var object = raw.merging(overrides) { _, new in new }.filter { $0.value != .null || raw[$0.key] == .null }
        if overrides["id2label"] == nil, case .int(let count)? = overrides["num_labels"],
           count != numLabels, count > 0 {
            let labels = (0..<Int(count)).map { ($0, "LABEL_\($0)") }
            object["id2label"] = .object(Dictionary(uniqueKeysWithValues: labels.map { ("\($0.0)", .string($0.1)) }))
            object["label2id"] = .object(Dictionary(uniqueKeysWithValues: labels.map { ($0.1, .int(Int64($0.0))) }))
        }
        let data = try JSONValue.object(object).encoded(pretty: true)
        _ = try ModelConfig(jsonData: data, source: source)
        return data
    }
}

// MARK: - Reading keys

/// Typed access to the keys of one config object; every failure names the file and the key.
private struct ConfigKeys {
    let object: [String: JSONValue]
    let file: String

    /// A key set to null counts as absent, as in transformers.
    private func value(_ key: String) -> JSONValue? {
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    private func invalid(_ key: String, _ reason: String) -> CheckpointError {
        .invalidValue(file: file, key: key, value: object[key].map { "\($0)" } ?? "null", reason: reason)
    }

    func modelType() throws -> ModelConfig.ModelType {
        guard let value = value("model_type") else { throw CheckpointError.missingKey(file: file, key: "model_type") }
        guard case .string(let name) = value, let type = ModelConfig.ModelType(rawValue: name) else {
            throw CheckpointError.unsupportedModelType(file: file, value: value.text,
                                                       supported: ModelConfig.ModelType.allCases.map(\.rawValue))
        }
        return type
    }

    private func int(_ key: String, default fallback: Int?) throws -> Int {
        guard let value = value(key) else {
            guard let fallback else { throw CheckpointError.missingKey(file: file, key: key) }
            return fallback
        }
        guard let number = value.integer else { throw invalid(key, "is not an integer") }
        return number
    }

    func positiveInt(_ key: String, default fallback: Int? = nil) throws -> Int {
        let number = try int(key, default: fallback)
        guard number > 0 else { throw invalid(key, "must be positive") }
        return number
    }

    func optionalInt(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard value(key) != nil else { return nil }
        let number = try int(key, default: nil)
        guard range.contains(number) else { throw invalid(key, "must lie in \(range.lowerBound)...\(range.upperBound)") }
        return number
    }

    func index(_ key: String, below limit: Int, default fallback: Int) throws -> Int {
        let number = try int(key, default: fallback)
        guard (0..<limit).contains(number) else { throw invalid(key, "must lie in 0..<\(limit)") }
        return number
    }

    private func float(_ key: String) throws -> Float? {
        guard let value = value(key) else { return nil }
        guard let number = value.number else { throw invalid(key, "is not a number") }
        return Float(number)
    }

    func positiveFloat(_ key: String, default fallback: Float) throws -> Float {
        let number = try float(key) ?? fallback
        guard number > 0 else { throw invalid(key, "must be positive") }
        return number
    }

    func optionalProbability(_ key: String, default fallback: Float?) throws -> Float? {
        if object[key] == .null { return nil }
        guard let number = try float(key) ?? fallback else { return nil }
        guard (0..<1).contains(number) else { throw invalid(key, "must lie in [0, 1)") }
        return number
    }

    func probability(_ key: String, default fallback: Float) throws -> Float {
        try optionalProbability(key, default: fallback) ?? fallback
    }

    private func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else { throw invalid(key, "is not a string") }
        return text
    }

    func oneOf(_ key: String, _ allowed: [String]) throws -> String? {
        guard let text = try string(key) else { return nil }
        guard allowed.contains(text) else { throw invalid(key, "is not one of \(allowed.joined(separator: ", "))") }
        return text
    }

    func gelu(default fallback: String) throws -> GELUForm {
        switch try string("hidden_act") ?? fallback {
        case "gelu", "gelu_python": return .erf
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": return .tanh
        default:
            throw invalid("hidden_act", "is not supported (supported: gelu, gelu_python, gelu_new, "
                          + "gelu_pytorch_tanh, gelu_fast)")
        }
    }

    /// Relative position embeddings change the attention itself, which we do not implement.
    func checkAbsolutePositions() throws {
        guard let kind = try string("position_embedding_type"), kind != "absolute" else { return }
        throw invalid("position_embedding_type", "is not supported (dp-train implements absolute positions only)")
    }

    func id2label() throws -> [Int: String]? {
        guard let value = value("id2label") else { return nil }
        guard case .object(let map) = value else { throw invalid("id2label", "is not an object") }
        return try Dictionary(uniqueKeysWithValues: map.map { key, label in
            guard let index = Int(key), case .string(let name) = label else {
                throw invalid("id2label", "must map integer strings to label names")
            }
            return (index, name)
        })
    }

    /// transformers derives num_labels from id2label; a file that states both must agree.
    func numLabels(id2label: [Int: String]?) throws -> Int {
        let stated = try value("num_labels").map { _ in try positiveInt("num_labels") }
        guard let id2label else { return stated ?? 2 }
        if let stated, stated != id2label.count {
            throw invalid("num_labels", "disagrees with the \(id2label.count) entries of id2label")
        }
        return id2label.count
    }
}

// MARK: - JSON values

/// A JSON value that keeps integers apart from floating-point numbers, so that a config is
/// written back with `768`, not `768.0`.
public enum JSONValue: Sendable, Equatable, Codable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Sorted keys, as transformers writes them.
    public func encoded(pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                                          : [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    public var description: String {
        (try? encoded()).flatMap { String(data: $0, encoding: .utf8) } ?? "(unprintable)"
    }

    /// The value for messages: strings without quotes.
    var text: String {
        if case .string(let value) = self { return value }
        return description
    }

    var integer: Int? {
        switch self {
        case .int(let value): return Int(exactly: value)
        case .double(let value): return Int(exactly: value)
        default: return nil
        }
    }

    var number: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }
}
