// Fresh weights as transformers' _init_weights gives them: N(0, initializer_range) for linear and
// embedding weights, 1 and 0 for LayerNorm, 0 for biases, and 1 for the weighted_layers head's
// mixing weights. Used for a task head a checkpoint
// lacks, for the top layers that --reinit-layers re-initialises, and for the random-init
// benchmark sizes.

import DPBackend
import DPTensor
import Foundation

extension ParameterSpec {
    var isLayerNormWeight: Bool {
        (name.contains("LayerNorm") || name.contains("layer_norm")) && name.hasSuffix(".weight")
    }

    /// The weighted_layers head's weights start equal, as the notebooks' torch.tensor([1] * K).
    var isLayerPoolWeight: Bool { name == "layer_pool.weight" }

    /// This tensor's initial values, drawn from `generator`.
    func initialValues(standardDeviation: Float, using generator: inout SeededGenerator) -> [Float] {
        if isLayerNormWeight || isLayerPoolWeight { return Array(repeating: 1, count: count) }
        if shape.count == 1 { return Array(repeating: 0, count: count) }
        return (0..<count).map { _ in standardDeviation * generator.nextGaussian() }
    }
}

extension EncoderModel {
    /// A model with every tensor freshly initialised from `seed`.
    public static func initialised(layout: EncoderLayout, backend: Backend, seed: UInt64) -> EncoderModel {
        let model = EncoderModel(layout: layout, backend: backend)
        var generator = SeededGenerator(seed: seed)
        for spec in layout.table.specs {
            model.setParameter(spec, spec.initialValues(standardDeviation: layout.config.initializerRange, using: &generator))
        }
        return model
    }

    /// Zhang et al. 2020's re-initialisation (arXiv 2006.05987): the top `layers` encoder layers
    /// and the BertPooler, whose pretrained weights serve pretraining's objectives, start fresh.
    /// The draws come from their own stream of `seed`, apart from the fresh head's. BERT and
    /// RoBERTa only: ALBERT's layers share one set of weights. Returns the tensors' names.
    public func reinitialiseTopLayers(_ layers: Int, seed: UInt64) -> [String] {
        precondition(layout.config.modelType != .albert && (0...layout.config.numHiddenLayers).contains(layers),
                     "re-initialising \(layers) of \(layout.config.numHiddenLayers) unshared layers")
        guard layers > 0 else { return [] }
        let firstFresh = layout.config.numHiddenLayers - layers
        let reinitialised = table.specs.filter { spec in
            if let layer = spec.layer { return layer >= firstFresh }
            return layout.head.pooling == .pooler && spec.name.hasPrefix("pooler.")
        }
        var generator = SeededGenerator(seed: seed ^ Self.reinitialisationStream)
        for spec in reinitialised {
            setParameter(spec, spec.initialValues(standardDeviation: layout.config.initializerRange, using: &generator))
        }
        return reinitialised.map(\.name)
    }

    /// Sets the re-initialisation's draws apart from the head's, which use `seed` itself.
    private static let reinitialisationStream: UInt64 = 0x5245_494E_4954 // "REINIT"

    func setParameter(_ spec: ParameterSpec, _ values: [Float]) {
        precondition(values.count == spec.count, "\(spec.name): \(values.count) values for \(spec.count) elements")
        values.withUnsafeBufferPointer { backend.upload(parameters + spec.offset, from: $0.baseAddress!, count: spec.count) }
    }
}

extension ModelConfig {
    /// The architectures of bert-base-uncased and roberta-base, for benchmarks without a download.
    public static func named(_ name: String) -> ModelConfig? {
        let common: [String: JSONValue] = [
            "hidden_size": .int(768), "num_hidden_layers": .int(12), "num_attention_heads": .int(12),
            "intermediate_size": .int(3072), "hidden_act": .string("gelu"), "layer_norm_eps": .double(1e-12),
        ]
        let specific: [String: JSONValue]
        switch name {
        case "bert-base":
            specific = ["model_type": .string("bert"), "vocab_size": .int(30522), "max_position_embeddings": .int(512),
                        "type_vocab_size": .int(2), "pad_token_id": .int(0)]
        case "roberta-base":
            specific = ["model_type": .string("roberta"), "vocab_size": .int(50265), "max_position_embeddings": .int(514),
                        "type_vocab_size": .int(1), "pad_token_id": .int(1), "layer_norm_eps": .double(1e-5)]
        default:
            return nil
        }
        let object = JSONValue.object(common.merging(specific) { _, new in new })
        return try? ModelConfig(jsonData: object.encoded(), source: name)
    }

    public static let namedSizes = ["bert-base", "roberta-base"]
}
