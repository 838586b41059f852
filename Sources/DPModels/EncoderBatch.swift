// A batch of token sequences padded to its own longest member (never to the maximum length),
// with the position ids each architecture expects.

import DPTensor

public struct EncoderBatch: Sendable {
    public let B: Int
    public let T: Int
    public var inputIds: [Int32]       // (B, T)
    public var typeIds: [Int32]        // (B, T)
    public var attentionMask: [Float]  // (B, T), 1 = token, 0 = padding
    public var positionIds: [Int32]    // (B, T)
    /// Each example's index in the global batch order; keys its dropout masks. // (B)
    public var exampleIndices: [Int32]

    /// Right-pads `sequences` with `padTokenId` to the longest one.
    public init(sequences: [[Int32]], typeIds: [[Int32]]? = nil, exampleIndices: [Int32]? = nil,
                modelType: ModelConfig.ModelType, padTokenId: Int) {
        precondition(!sequences.isEmpty, "a batch needs at least one sequence")
        B = sequences.count
        T = max(1, sequences.map(\.count).max() ?? 1)
        inputIds = Array(repeating: Int32(padTokenId), count: B * T)
        self.typeIds = Array(repeating: 0, count: B * T)
        attentionMask = Array(repeating: 0, count: B * T)
        for (b, sequence) in sequences.enumerated() {
            for (t, id) in sequence.enumerated() {
                inputIds[b * T + t] = id
                attentionMask[b * T + t] = 1
                if let typeIds { self.typeIds[b * T + t] = typeIds[b][t] }
            }
        }
        positionIds = Self.positionIds(inputIds: inputIds, B: B, T: T, modelType: modelType, padTokenId: padTokenId)
        self.exampleIndices = exampleIndices ?? (0..<B).map(Int32.init)
    }

    /// A batch that is already padded, e.g. golden inputs from transformers.
    public init(inputIds: [Int32], typeIds: [Int32], attentionMask: [Float], B: Int, T: Int,
                modelType: ModelConfig.ModelType, padTokenId: Int) {
        precondition(inputIds.count == B * T && typeIds.count == B * T && attentionMask.count == B * T)
        self.B = B
        self.T = T
        self.inputIds = inputIds
        self.typeIds = typeIds
        self.attentionMask = attentionMask
        positionIds = Self.positionIds(inputIds: inputIds, B: B, T: T, modelType: modelType, padTokenId: padTokenId)
        exampleIndices = (0..<B).map(Int32.init)
    }

    /// BERT and ALBERT number positions 0..<T. RoBERTa numbers real tokens from padding_idx + 1
    /// and gives padding the position padding_idx (create_position_ids_from_input_ids).
    static func positionIds(inputIds: [Int32], B: Int, T: Int, modelType: ModelConfig.ModelType, padTokenId: Int) -> [Int32] {
        var positions = [Int32](repeating: 0, count: B * T)
        for b in 0..<B {
            var seen: Int32 = 0
            for t in 0..<T {
                switch modelType {
                case .bert, .albert:
                    positions[b * T + t] = Int32(t)
                case .roberta:
                    if inputIds[b * T + t] != Int32(padTokenId) {
                        seen += 1
                        positions[b * T + t] = Int32(padTokenId) + seen
                    } else {
                        positions[b * T + t] = Int32(padTokenId)
                    }
                }
            }
        }
        return positions
    }
}
