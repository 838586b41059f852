// Where every tensor of a BERT, RoBERTa or ALBERT encoder and its task head lives in the flat
// parameter buffer, under the exact names transformers uses (without the `bert.` / `roberta.` /
// `albert.` prefix). The query, key and value projections of a block are laid out back to back,
// so that together they form one (3C, C) matrix and the block runs one fused sgemm for all three.

import DPBackend
import DPTensor

/// How the head turns token states into one vector per example.
public enum Pooling: String, Sendable, CaseIterable {
    /// BertPooler / AlbertPooler: dense + tanh over the first token (…ForSequenceClassification).
    case pooler
    /// The first token's final state, no pooler.
    case firstToken = "first_token"
    /// sentence-transformers' mean over the tokens that are not padding.
    case mean
    /// RobertaClassificationHead: first token, dense, tanh, out_proj.
    case robertaHead = "roberta_head"
    /// The CommonLit notebooks' attention head: a score v . tanh(W h_t + b) per token, softmax
    /// over the tokens that are not padding, and the weighted sum of their final states.
    case attention
    /// The CommonLit notebooks' WeightedLayerPooling: the first token of the last K hidden states
    /// (the embeddings' output counts as one), mixed by learned weights w_l / sum(w), all 1 at first.
    case weightedLayers = "weighted_layers"
}

public enum Task: String, Sendable, CaseIterable {
    /// One output and mean squared error.
    case regression
    /// K outputs and cross-entropy.
    case classification
}

public struct HeadSpec: Sendable, Equatable {
    public var pooling: Pooling
    public var task: Task
    public var numLabels: Int
    /// How many of the last hidden states the weighted_layers head mixes; 0 for the other heads.
    public var pooledLayers: Int

    public init(pooling: Pooling, task: Task, numLabels: Int, pooledLayers: Int = 0) {
        precondition(task == .classification || numLabels == 1, "regression has exactly one output")
        precondition((pooling == .weightedLayers) == (pooledLayers > 0), "pooledLayers is the weighted_layers head's alone")
        self.pooling = pooling
        self.task = task
        self.numLabels = numLabels
        self.pooledLayers = pooledLayers
    }
}

/// Offsets of one transformer block's tensors in the flat buffers.
public struct BlockOffsets: Sendable {
    public let qkvWeight: Int              // (3C, C): query, key, value weights, contiguous
    public let qkvBias: Int                // (3C)
    public let attentionOutputWeight: Int  // (C, C)
    public let attentionOutputBias: Int    // (C)
    public let attentionNormWeight: Int    // (C)
    public let attentionNormBias: Int      // (C)
    public let intermediateWeight: Int     // (I, C)
    public let intermediateBias: Int       // (I)
    public let outputWeight: Int           // (C, I)
    public let outputBias: Int             // (C)
    public let outputNormWeight: Int       // (C)
    public let outputNormBias: Int         // (C)
}

public struct EncoderLayout: Sendable {
    public let config: ModelConfig
    public let head: HeadSpec
    public let table: ParameterTable

    /// Sizes: E embedding width (= C except for ALBERT), C hidden, I intermediate.
    public var E: Int { config.embeddingSize }
    public var C: Int { config.hiddenSize }
    public var I: Int { config.intermediateSize }
    public var NH: Int { config.numAttentionHeads }
    public var K: Int { head.numLabels }

    public let wordEmbeddings: Int       // (V, E)
    public let positionEmbeddings: Int   // (P, E)
    public let typeEmbeddings: Int       // (TV, E)
    public let embeddingNormWeight: Int  // (E)
    public let embeddingNormBias: Int    // (E)
    /// ALBERT's embedding_hidden_mapping_in: (C, E) and (C); nil elsewhere.
    public let embeddingProjection: (weight: Int, bias: Int)?
    /// The distinct blocks: one per layer for BERT and RoBERTa, one per (group, inner layer) for ALBERT.
    public let blocks: [BlockOffsets]
    /// The block run at each step of the forward pass, in order. ALBERT repeats its shared blocks.
    public let schedule: [Int]
    /// Dense + tanh before the classifier: BertPooler, AlbertPooler, or RoBERTa's classifier.dense.
    public let poolerDense: (weight: Int, bias: Int)?  // (C, C), (C)
    /// The attention head's W and b, and its score vector v. The score has no bias: softmax
    /// ignores a shift shared by every token, so its gradient would be round-off alone.
    public let attentionPool: (denseWeight: Int, denseBias: Int, scoreWeight: Int)?  // (C, C), (C), (1, C)
    /// The weighted_layers head's mixing weights, one per pooled hidden state, oldest first.
    public let layerPoolWeights: Int?  // (pooledLayers)
    /// Where the head's tensors begin: everything from here on belongs to it.
    private let headStart: Int
    public let classifier: (weight: Int, bias: Int)    // (K, C), (K)

    /// The `model_type` prefix transformers puts before the encoder's tensors in a task model.
    public var prefix: String { config.modelType.rawValue + "." }

    public init(config: ModelConfig, head: HeadSpec) {
        self.config = config
        self.head = head
        var table = ParameterTable()
        let (E, C, I, K) = (config.embeddingSize, config.hiddenSize, config.intermediateSize, head.numLabels)

        wordEmbeddings = table.append("embeddings.word_embeddings.weight", [config.vocabSize, E], decays: true, layer: nil)
        positionEmbeddings = table.append("embeddings.position_embeddings.weight",
                                          [config.maxPositionEmbeddings, E], decays: true, layer: nil)
        typeEmbeddings = table.append("embeddings.token_type_embeddings.weight", [config.typeVocabSize, E],
                                      decays: true, layer: nil)
        embeddingNormWeight = table.append("embeddings.LayerNorm.weight", [E], decays: false, layer: nil)
        embeddingNormBias = table.append("embeddings.LayerNorm.bias", [E], decays: false, layer: nil)

        var blocks: [BlockOffsets] = []
        var schedule: [Int] = []
        switch config.modelType {
        case .bert, .roberta:
            embeddingProjection = nil
            for layer in 0..<config.numHiddenLayers {
                blocks.append(Self.appendBlock(&table, .bert, prefix: "encoder.layer.\(layer).", layer: layer, C: C, I: I))
                schedule.append(layer)
            }
        case .albert:
            embeddingProjection = (
                table.append("encoder.embedding_hidden_mapping_in.weight", [C, E], decays: true, layer: nil),
                table.append("encoder.embedding_hidden_mapping_in.bias", [C], decays: false, layer: nil))
            let layersPerGroup = config.numHiddenLayers / config.numHiddenGroups
            for group in 0..<config.numHiddenGroups {
                for inner in 0..<config.innerGroupNum {
                    // A shared block is tagged with the first encoder layer that runs it.
                    blocks.append(Self.appendBlock(
                        &table, .albert, prefix: "encoder.albert_layer_groups.\(group).albert_layers.\(inner).",
                        layer: group * layersPerGroup, C: C, I: I))
                }
            }
            for layer in 0..<config.numHiddenLayers {
                let group = layer / layersPerGroup
                for inner in 0..<config.innerGroupNum { schedule.append(group * config.innerGroupNum + inner) }
            }
        }
        // BertPooler wraps its Linear as `pooler.dense`; AlbertPooler is the Linear itself.
        let denseName: String? = switch head.pooling {
        case .pooler: config.modelType == .albert ? "pooler" : "pooler.dense"
        case .robertaHead: "classifier.dense"
        case .firstToken, .mean, .attention, .weightedLayers: nil
        }
        headStart = table.totalCount
        poolerDense = denseName.map { name in
            (table.append(name + ".weight", [C, C], decays: true, layer: nil),
             table.append(name + ".bias", [C], decays: false, layer: nil))
        }
        attentionPool = head.pooling != .attention ? nil : (
            table.append("attention_pool.dense.weight", [C, C], decays: true, layer: nil),
            table.append("attention_pool.dense.bias", [C], decays: false, layer: nil),
            table.append("attention_pool.score.weight", [1, C], decays: true, layer: nil))
        precondition(head.pooledLayers <= schedule.count + 1,
                     "\(head.pooledLayers) pooled states of \(schedule.count + 1) hidden states")
        // Not decayed: decay would shrink every weight alike, which the normalised mixture ignores.
        layerPoolWeights = head.pooling != .weightedLayers ? nil
            : table.append("layer_pool.weight", [head.pooledLayers], decays: false, layer: nil)
        let classifierName = head.pooling == .robertaHead ? "classifier.out_proj" : "classifier"
        classifier = (table.append("\(classifierName).weight", [K, C], decays: true, layer: nil),
                      table.append("\(classifierName).bias", [K], decays: false, layer: nil))
        self.blocks = blocks
        self.schedule = schedule
        self.table = table
    }

    /// The flat buffer cut into the spans that backward completes one after another: the head,
    /// then each block, then the embeddings. They tile [0, parameters) with no gaps, because the
    /// table lists the embeddings, the blocks in order, then the head.
    public var headRange: Range<Int> { headStart..<table.totalCount }
    public var embeddingRange: Range<Int> { 0..<blocks[0].qkvWeight }
    public func blockRange(_ block: Int) -> Range<Int> {
        blocks[block].qkvWeight..<(block + 1 < blocks.count ? blocks[block + 1].qkvWeight : headRange.lowerBound)
    }

    /// The weights of the model's nn.Linear modules, (OC, C) each: every matrix outside the
    /// embedding tables (the layers' projections, the pooler, the heads' dense layers and the
    /// classifier), which Mixout mixes.
    public var linearWeights: [ParameterSpec] {
        table.specs.filter { $0.shape.count == 2 && !$0.name.hasPrefix("embeddings.") }
    }

    /// Tensors that belong to the task head (and RoBERTa's head dense), which a base checkpoint
    /// lacks and which are then initialised fresh.
    public func isHeadTensor(_ name: String) -> Bool {
        isOutsideEncoder(name) || name.hasPrefix("pooler.")
    }

    /// The head's tensors that are no part of transformers' base model, which a saved task model
    /// keeps at its top level, unprefixed, as …ForSequenceClassification keeps `classifier.*`.
    public func isOutsideEncoder(_ name: String) -> Bool {
        name.hasPrefix("classifier.") || name.hasPrefix("attention_pool.") || name.hasPrefix("layer_pool.")
    }

    /// transformers' names for the tensors of one block, which differ between BertLayer and AlbertLayer.
    struct BlockNames {
        let query, key, value, attentionOutput, attentionNorm, intermediate, output, outputNorm: String

        static let bert = BlockNames(
            query: "attention.self.query", key: "attention.self.key", value: "attention.self.value",
            attentionOutput: "attention.output.dense", attentionNorm: "attention.output.LayerNorm",
            intermediate: "intermediate.dense", output: "output.dense", outputNorm: "output.LayerNorm")
        static let albert = BlockNames(
            query: "attention.query", key: "attention.key", value: "attention.value",
            attentionOutput: "attention.dense", attentionNorm: "attention.LayerNorm",
            intermediate: "ffn", output: "ffn_output", outputNorm: "full_layer_layer_norm")
    }

    private static func appendBlock(_ table: inout ParameterTable, _ names: BlockNames, prefix p: String, layer: Int,
                                    C: Int, I: Int) -> BlockOffsets {
        // Matrices decay; LayerNorm weights, the only vector weights here, do not.
        func weight(_ name: String, _ shape: [Int]) -> Int {
            table.append(p + name + ".weight", shape, decays: shape.count == 2, layer: layer)
        }
        func bias(_ name: String, _ count: Int) -> Int {
            table.append(p + name + ".bias", [count], decays: false, layer: layer)
        }
        let qkvWeight = weight(names.query, [C, C])
        _ = weight(names.key, [C, C])
        _ = weight(names.value, [C, C])
        let qkvBias = bias(names.query, C)
        _ = bias(names.key, C)
        _ = bias(names.value, C)
        return BlockOffsets(
            qkvWeight: qkvWeight, qkvBias: qkvBias,
            attentionOutputWeight: weight(names.attentionOutput, [C, C]), attentionOutputBias: bias(names.attentionOutput, C),
            attentionNormWeight: weight(names.attentionNorm, [C]), attentionNormBias: bias(names.attentionNorm, C),
            intermediateWeight: weight(names.intermediate, [I, C]), intermediateBias: bias(names.intermediate, I),
            outputWeight: weight(names.output, [C, I]), outputBias: bias(names.output, C),
            outputNormWeight: weight(names.outputNorm, [C]), outputNormBias: bias(names.outputNorm, C))
    }
}
