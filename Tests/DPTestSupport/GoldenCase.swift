// Golden tensors written by scripts/golden.py with PyTorch/transformers: a checkpoint folder
// (config.json, model.safetensors) plus golden.safetensors with the inputs, every hidden state,
// the pooled vectors, logits, loss and the gradient of every parameter.

import DPBackend
import DPModels
import Foundation

public struct GoldenCase {
    public let name: String
    public let directory: URL
    public let golden: SafeTensorsFile

    public init(directory: URL) throws {
        self.directory = directory
        name = directory.lastPathComponent
        golden = try SafeTensorsFile(contentsOf: directory.appendingPathComponent("golden.safetensors"))
    }

    /// The committed tiny cases, next to the test sources.
    public static func committed(in testFile: String = #filePath) throws -> [GoldenCase] {
        let root = URL(fileURLWithPath: testFile).deletingLastPathComponent().appendingPathComponent("Golden")
        let folders = try FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)
            .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("golden.safetensors").path) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        return try folders.map(GoldenCase.init(directory:))
    }

    public func floats(_ name: String) throws -> [Float] { try golden.floats(name) }
    public func has(_ name: String) -> Bool { golden.info(name) != nil }

    /// The batch exactly as transformers saw it.
    public func batch(for model: EncoderModel) throws -> EncoderBatch {
        guard let shape = golden.info("input_ids")?.shape, shape.count == 2 else {
            throw GoldenError.missing(name, "input_ids")
        }
        return EncoderBatch(inputIds: try golden.int32s("input_ids"), typeIds: try golden.int32s("token_type_ids"),
                            attentionMask: try golden.int32s("attention_mask").map(Float.init),
                            B: shape[0], T: shape[1], modelType: model.layout.config.modelType,
                            padTokenId: model.layout.config.padTokenId)
    }

    public func targets(for model: EncoderModel) throws -> Targets {
        switch model.layout.head.task {
        case .regression: return .regression(try golden.floats("labels"))
        case .classification: return .classification(try golden.int32s("labels"))
        }
    }
}

extension GoldenCase {
    /// Forward activations: the same fp32 arithmetic as PyTorch in another summation order,
    /// through up to a dozen LayerNorms; measured against the tensor's own scale.
    public static let activationTolerance = Tolerance(relative: 1e-4, absolute: 2e-5)
    /// Gradients pass the same chain twice and sum over the batch; an element is held to the
    /// scale of its whole tensor, so tiny gradients that cancel are not held to relative bounds.
    public static let gradientTolerance = Tolerance(relative: 1e-3, absolute: 1e-4)

    /// Every way this checkpoint, run on `backend`, differs from transformers: the tensors it
    /// loads, the position ids, every hidden state, the pooled vectors, logits, loss and the
    /// gradient of every parameter. Empty when it matches.
    public func mismatchesWithTransformers(on backend: any Backend) throws -> [String] {
        let (model, report) = try EncoderModel.load(from: directory, backend: backend)
        var problems: [String] = []
        func expect(_ got: [Float], _ tensor: String, _ tolerance: Tolerance) throws {
            if let problem = mismatch(got, try floats(tensor).map(Double.init), tolerance) {
                problems.append("\(name) \(tensor) on \(backend.placement): \(problem)")
            }
        }
        if !report.initialised.isEmpty {
            problems.append("\(name): the checkpoint lacks \(report.initialised)")
        }
        let batch = try batch(for: model)
        if batch.positionIds != (try golden.int32s("position_ids")) {
            problems.append("\(name): position ids \(batch.positionIds) differ from transformers'")
        }

        model.forward(batch, dropout: nil)
        for index in 0...model.layout.schedule.count {
            try expect(model.hiddenState(index), "hidden_states.\(index)", Self.activationTolerance)
        }
        if has("pooled_output") { try expect(model.poolerOutput(), "pooled_output", Self.activationTolerance) }
        if has("pooled") { try expect(model.pooledFeatures(), "pooled", Self.activationTolerance) }
        if has("attention_weights") {
            try expect(model.attentionPoolWeights(), "attention_weights", Self.activationTolerance)
        }
        try expect(model.logits(), "logits", Self.activationTolerance)
        let losses = model.loss(try targets(for: model), gradScale: 1 / Float(batch.B))
        try expect([losses.reduce(0, +) / Float(batch.B)], "loss", Self.activationTolerance)

        model.zeroGradients()
        model.backward()
        var gradients = [Float](repeating: 0, count: model.parameterCount)
        gradients.withUnsafeMutableBufferPointer {
            backend.download($0.baseAddress!, from: model.gradients, count: model.parameterCount)
        }
        let stored = Set(try CheckpointFolder(directory: directory).loadTensorNames())
        for spec in model.table.specs {
            let tensor = stored.contains(spec.name) ? spec.name : model.layout.prefix + spec.name
            try expect(Array(gradients[spec.range]), "grad." + tensor, Self.gradientTolerance)
        }
        return problems
    }

    /// Why a test of the real model skips when miniLM() is nil.
    public static let miniLMUnset =
        "DPTRAIN_MINILM_GOLDEN is not set; scripts/test.sh generates the all-MiniLM-L6-v2 golden tensors"

    /// The all-MiniLM-L6-v2 case that scripts/test.sh generates, or nil when DPTRAIN_MINILM_GOLDEN is unset.
    public static func miniLM() throws -> GoldenCase? {
        guard let path = ProcessInfo.processInfo.environment["DPTRAIN_MINILM_GOLDEN"] else { return nil }
        return try GoldenCase(directory: URL(fileURLWithPath: path))
    }
}

public enum GoldenError: Error, CustomStringConvertible {
    case missing(String, String)

    public var description: String {
        switch self {
        case let .missing(golden, tensor): return "golden case \(golden) lacks tensor \(tensor)"
        }
    }
}
