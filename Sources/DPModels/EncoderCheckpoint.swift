// Loading an encoder from a Hugging Face folder and writing it back in the same layout, so that
// `transformers` loads what dp-train fine-tuned. Names are matched with or without the
// `bert.` / `roberta.` / `albert.` prefix; a missing task head (and pooler) is initialised
// fresh, N(0, 0.02) weights and zero biases, as transformers' _init_weights does.

import DPBackend
import DPTensor
import Foundation

/// What loading did besides copying tensors, for the caller to report.
public struct LoadReport: Sendable {
    /// Tensors the checkpoint lacked and that were initialised fresh.
    public var initialised: [String] = []
    /// Checkpoint tensors the model does not use (e.g. a pretraining head).
    public var unused: [String] = []
}

extension HeadSpec {
    /// The head a checkpoint's config.json describes: dp-train's own `dp_train_pooling` key when
    /// present, otherwise what transformers' …ForSequenceClassification would build.
    public init(config: ModelConfig) {
        let pooling = config.headPooling ?? (config.modelType == .roberta ? .robertaHead : .pooler)
        let regression = config.problemType == "regression" || (config.problemType == nil && config.numLabels == 1)
        self.init(pooling: pooling, task: regression ? .regression : .classification,
                  numLabels: regression ? 1 : config.numLabels,
                  pooledLayers: pooling == .weightedLayers ? config.pooledLayers ?? Self.defaultPooledLayers(config) : 0)
    }

    /// The last four hidden states, the notebooks' usual choice, or every state of a shallower model.
    public static func defaultPooledLayers(_ config: ModelConfig) -> Int { min(4, config.hiddenStateCount) }
}

extension EncoderModel {
    /// Loads `directory`. `head` overrides the head that config.json describes; `seed` drives the
    /// initialisation of whatever the checkpoint lacks.
    public static func load(from directory: URL, head: HeadSpec? = nil, backend: Backend,
                            seed: UInt64 = 0) throws -> (EncoderModel, LoadReport) {
        let folder = try CheckpointFolder(directory: directory)
        let config = try folder.config()
        let layout = EncoderLayout(config: config, head: head ?? HeadSpec(config: config))
        let encoder = EncoderModel(layout: layout, backend: backend)
        let report = try encoder.loadParameters(from: folder, seed: seed)
        return (encoder, report)
    }

    func loadParameters(from folder: CheckpointFolder, seed: UInt64) throws -> LoadReport {
        var byName: [String: String] = [:]
        for stored in try folder.loadTensorNames() {
            let bare = stored.hasPrefix(layout.prefix) ? String(stored.dropFirst(layout.prefix.count)) : stored
            byName[bare] = stored
        }
        var report = LoadReport()
        var generator = SeededGenerator(seed: seed)
        for spec in table.specs {
            let host: [Float]
            if let stored = byName.removeValue(forKey: spec.name) {
                host = try folder.floats(stored, shape: spec.shape)
            } else if layout.isHeadTensor(spec.name) {
                host = spec.initialValues(standardDeviation: layout.config.initializerRange, using: &generator)
                report.initialised.append(spec.name)
            } else {
                throw CheckpointError.missingTensor(file: folder.weightsURL.path, tensor: layout.prefix + spec.name)
            }
            setParameter(spec, host)
        }
        report.unused = byName.values.sorted()
        return report
    }

    /// The name a tensor gets in a saved task model: the head at top level, the rest prefixed.
    func checkpointName(_ name: String) -> String {
        layout.isOutsideEncoder(name) ? name : layout.prefix + name
    }

    /// Writes config.json and model.safetensors (atomically) plus `extraFiles` such as the tokenizer.
    /// `labels` names the classes in id2label; transformers' LABEL_i when nil.
    public func save(to directory: URL, extraFiles: [URL] = [], labels: [String]? = nil) throws {
        var host = [Float](repeating: 0, count: parameterCount)
        host.withUnsafeMutableBufferPointer { backend.download($0.baseAddress!, from: parameters, count: parameterCount) }
        let config = try layout.config.jsonData(updating: savedConfigKeys(labels: labels))
        try host.withUnsafeBufferPointer { all in
            let tensors = table.specs.map { spec in
                (name: checkpointName(spec.name), shape: spec.shape,
                 values: UnsafeBufferPointer(rebasing: all[spec.range]))
            }
            try CheckpointWriter.write(config: config, tensors: tensors, to: directory, extraFiles: extraFiles)
        }
    }

    private func savedConfigKeys(labels given: [String]?) -> [String: JSONValue] {
        let head = layout.head
        let family = switch layout.config.modelType {
        case .bert: "Bert"
        case .roberta: "Roberta"
        case .albert: "Albert"
        }
        let standardHead = head.pooling == .pooler || head.pooling == .robertaHead
        let labels = given.flatMap { $0.count == head.numLabels ? $0 : nil } ?? (0..<head.numLabels).map { "LABEL_\($0)" }
        return [
            "architectures": .array([.string(family + (standardHead ? "ForSequenceClassification" : "Model"))]),
            "dp_train_pooling": .string(head.pooling.rawValue),
            "dp_train_pooled_layers": head.pooledLayers > 0 ? .int(Int64(head.pooledLayers)) : .null,
            "num_labels": .int(Int64(head.numLabels)),
            "problem_type": .string(head.task == .regression ? "regression" : "single_label_classification"),
            "id2label": .object(Dictionary(uniqueKeysWithValues: labels.enumerated().map { ("\($0.offset)", .string($0.element)) })),
            "label2id": .object(Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($0.element, .int(Int64($0.offset))) })),
        ]
    }
}
