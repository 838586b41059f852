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

public enum GoldenError: Error, CustomStringConvertible {
    case missing(String, String)

    public var description: String {
        switch self {
        case let .missing(golden, tensor): return "golden case \(golden) lacks tensor \(tensor)"
        }
    }
}
