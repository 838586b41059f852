// Everything the forward pass keeps for backward, carved from one allocation sized for a batch
// of B examples padded to T tokens. A longer batch replaces the arena; a shorter one reuses it,
// so memory stays flat across steps.

import DPBackend

/// Hands out consecutive slices of one backend allocation.
struct Arena {
    let base: UnsafeMutablePointer<Float>
    private(set) var used = 0
    let capacity: Int

    init(base: UnsafeMutablePointer<Float>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    mutating func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        precondition(used + count <= capacity, "activation arena overflow")
        defer { used += count }
        return base + used
    }
}

/// Values that a linear layer multiplies, saved between forward and backward: the fp32 `values`,
/// and in tf32 and bf16 modes the room for their rounded copy (Backend.Operands), which forward
/// fills and backward reads again.
struct SavedOperand {
    let values: UnsafePointer<Float>
    let copy: UnsafeMutableRawPointer?
}

/// Hands out consecutive operand copies of one backend allocation; none in fp32.
struct OperandArena {
    let base: UnsafeMutableRawPointer?
    let elementBytes: Int
    private(set) var used = 0

    init(base: UnsafeMutableRawPointer?, elementBytes: Int) {
        self.base = base
        self.elementBytes = elementBytes
    }

    mutating func saved(_ values: UnsafePointer<Float>, count: Int) -> SavedOperand {
        SavedOperand(values: values, copy: room(count))
    }

    mutating func room(_ count: Int) -> UnsafeMutableRawPointer? {
        guard let base else { return nil }
        defer { used += count }
        return base + used * elementBytes
    }
}

/// The inputs of one block application's linear layers. // N = B * T
struct BlockOperands {
    let input: SavedOperand      // (N, C), the block's input, into the query/key/value product
    let qkv: SavedOperand        // (N, 3C), into attention's products
    let context: SavedOperand    // (N, C)
    let hidden1: SavedOperand    // (N, C)
    let activated: SavedOperand  // (N, I)
}

/// Saved activations of one block application. // N = B * T
struct BlockActivations {
    let qkv: UnsafeMutablePointer<Float>            // (N, 3C)
    let probabilities: UnsafeMutablePointer<Float>  // (B, NH, T, T)
    let context: UnsafeMutablePointer<Float>        // (N, C), attention output before its dense
    let residual1: UnsafeMutablePointer<Float>      // (N, C), input of the attention LayerNorm
    let mean1: UnsafeMutablePointer<Float>          // (N)
    let rstd1: UnsafeMutablePointer<Float>          // (N)
    let hidden1: UnsafeMutablePointer<Float>        // (N, C), attention LayerNorm output
    let geluSlope: UnsafeMutablePointer<Float>      // (N, I), GELU' at the intermediate dense output
    let activated: UnsafeMutablePointer<Float>      // (N, I), after GELU
    let residual2: UnsafeMutablePointer<Float>      // (N, C), input of the output LayerNorm
    let mean2: UnsafeMutablePointer<Float>          // (N)
    let rstd2: UnsafeMutablePointer<Float>          // (N)
}

/// The forward pass's saved state and backward's scratch for one (B, T) capacity.
final class ActivationStore {
    let backend: Backend
    let B: Int
    let T: Int
    private let storage: UnsafeMutablePointer<Float>
    private let indexStorage: UnsafeMutablePointer<Int32>
    private let operandStorage: UnsafeMutableRawPointer?

    // Inputs, in backend memory.
    let inputIds: UnsafeMutablePointer<Int32>        // (B, T)
    let typeIds: UnsafeMutablePointer<Int32>         // (B, T)
    let positionIds: UnsafeMutablePointer<Int32>     // (B, T)
    let exampleIndices: UnsafeMutablePointer<Int32>  // (B)
    let labels: UnsafeMutablePointer<Int32>          // (B)
    let attentionMask: UnsafeMutablePointer<Float>   // (B, T)
    let targets: UnsafeMutablePointer<Float>         // (B)

    // Embeddings.
    let embeddingSum: UnsafeMutablePointer<Float>    // (N, E), input of the embedding LayerNorm
    let embeddingMean: UnsafeMutablePointer<Float>   // (N)
    let embeddingRstd: UnsafeMutablePointer<Float>   // (N)
    let embeddingNormed: UnsafeMutablePointer<Float> // (N, E), after LayerNorm and dropout (ALBERT only)
    /// states[0] enters the first block; states[a + 1] leaves block application a. // (N, C) each
    let states: [UnsafeMutablePointer<Float>]
    /// How far apart consecutive states lie: they are carved back to back, so that the weighted
    /// layer pooling head reads any run of them as one strided array.
    let stateStride: Int
    let blocks: [BlockActivations]
    let blockOperands: [BlockOperands]
    let embeddingProjectionInput: SavedOperand  // (N, E), ALBERT only
    let denseInputOperand: SavedOperand         // (B, C), the pooler's or RoBERTa head's dense input
    let classifierInputOperand: SavedOperand    // (B, C)
    /// The attention head's products' inputs: the last state, and tanh(W h + b). // (N, C) each
    let lastStateOperand: SavedOperand
    let attentionHiddenOperand: SavedOperand
    /// Backward's rounded copy of one linear layer's dOut at a time: each is read by the product
    /// right after the op that writes it. // (max(N I, N 3C, B K))
    let dOutCopy: UnsafeMutableRawPointer?

    // Head.
    let features: UnsafeMutablePointer<Float>        // (B, C), first token, mean or attention's sum
    // The attention head's; empty for the other heads.
    let attentionHidden: UnsafeMutablePointer<Float> // (N, C), tanh(W h + b)
    let attentionScores: UnsafeMutablePointer<Float> // (B, T)
    let attentionWeights: UnsafeMutablePointer<Float> // (B, T), softmax over the tokens
    let denseInput: UnsafeMutablePointer<Float>      // (B, C), RoBERTa head: features after dropout
    let poolerOutput: UnsafeMutablePointer<Float>    // (B, C), after dense and tanh
    let classifierInput: UnsafeMutablePointer<Float> // (B, C), after dropout
    let logits: UnsafeMutablePointer<Float>          // (B, K)
    let dLogits: UnsafeMutablePointer<Float>         // (B, K)
    let losses: UnsafeMutablePointer<Float>          // (B)

    // Backward scratch, shared by all blocks.
    let dState: UnsafeMutablePointer<Float>          // (N, C)
    let dResidual: UnsafeMutablePointer<Float>       // (N, C)
    let dTemporary: UnsafeMutablePointer<Float>      // (N, C)
    let dIntermediate: UnsafeMutablePointer<Float>   // (N, I)
    let dQKV: UnsafeMutablePointer<Float>            // (N, 3C)
    let dProbabilities: UnsafeMutablePointer<Float>  // (B, NH, T, T)
    let dEmbedding: UnsafeMutablePointer<Float>      // (N, E)
    let dEmbeddingNormed: UnsafeMutablePointer<Float> // (N, E)
    let dHeadA: UnsafeMutablePointer<Float>          // (B, C)
    let dHeadB: UnsafeMutablePointer<Float>          // (B, C)
    let dAttentionScores: UnsafeMutablePointer<Float> // (B, T), the attention head's

    init(layout: EncoderLayout, backend: Backend, B: Int, T: Int) {
        self.backend = backend
        self.B = B
        self.T = T
        let N = B * T
        let (E, C, I, NH, K) = (layout.E, layout.C, layout.I, layout.NH, layout.K)
        let applications = layout.schedule.count
        let attentionHead = layout.head.pooling == .attention
        let attentionCount = attentionHead ? N * C + 3 * N : 0
        let perBlock = N * 3 * C + B * NH * T * T + N * C * 4 + N * I * 2 + N * 4
        let total = N + B
            + N * E * 2 + N * 2
            + (applications + 1) * N * C
            + applications * perBlock
            + B * C * 4 + B * K * 2 + B
            + N * C * 3 + N * I + N * 3 * C + B * NH * T * T + N * E * 2 + B * C * 2
            + attentionCount
        storage = backend.allocate(count: total)
        indexStorage = backend.allocateIndices(count: 3 * N + 2 * B)
        var arena = Arena(base: storage, capacity: total)
        let dOutCount = max(N * I, N * 3 * C, B * K)
        let operandCount = applications * (N * 6 * C + N * I) + N * E + B * C * 2 + dOutCount
            + (attentionHead ? 2 * N * C : 0)
        operandStorage = backend.precision == .fp32 ? nil : backend.allocateOperands(count: operandCount)
        var operands = OperandArena(base: operandStorage, elementBytes: backend.operandBytes)

        inputIds = indexStorage
        typeIds = indexStorage + N
        positionIds = indexStorage + 2 * N
        exampleIndices = indexStorage + 3 * N
        labels = indexStorage + 3 * N + B
        attentionMask = arena.take(N)
        targets = arena.take(B)

        embeddingSum = arena.take(N * E)
        embeddingMean = arena.take(N)
        embeddingRstd = arena.take(N)
        embeddingNormed = arena.take(N * E)
        states = (0...applications).map { _ in arena.take(N * C) }
        stateStride = N * C
        blocks = (0..<applications).map { _ in
            BlockActivations(qkv: arena.take(N * 3 * C), probabilities: arena.take(B * NH * T * T),
                             context: arena.take(N * C), residual1: arena.take(N * C),
                             mean1: arena.take(N), rstd1: arena.take(N), hidden1: arena.take(N * C),
                             geluSlope: arena.take(N * I), activated: arena.take(N * I),
                             residual2: arena.take(N * C), mean2: arena.take(N), rstd2: arena.take(N))
        }
        features = arena.take(B * C)
        denseInput = arena.take(B * C)
        poolerOutput = arena.take(B * C)
        classifierInput = arena.take(B * C)
        attentionHidden = arena.take(attentionHead ? N * C : 0)
        attentionScores = arena.take(attentionHead ? N : 0)
        attentionWeights = arena.take(attentionHead ? N : 0)
        let savedStates = states
        blockOperands = zip(blocks, 0..<applications).map { block, application in
            BlockOperands(input: operands.saved(savedStates[application], count: N * C),
                          qkv: operands.saved(block.qkv, count: N * 3 * C),
                          context: operands.saved(block.context, count: N * C),
                          hidden1: operands.saved(block.hidden1, count: N * C),
                          activated: operands.saved(block.activated, count: N * I))
        }
        embeddingProjectionInput = operands.saved(embeddingNormed, count: N * E)
        denseInputOperand = operands.saved(layout.head.pooling == .robertaHead ? denseInput : features, count: B * C)
        classifierInputOperand = operands.saved(classifierInput, count: B * C)
        dOutCopy = operands.room(dOutCount)
        lastStateOperand = operands.saved(states[applications], count: attentionHead ? N * C : 0)
        attentionHiddenOperand = operands.saved(attentionHidden, count: attentionHead ? N * C : 0)
        logits = arena.take(B * K)
        dLogits = arena.take(B * K)
        losses = arena.take(B)

        dState = arena.take(N * C)
        dResidual = arena.take(N * C)
        dTemporary = arena.take(N * C)
        dIntermediate = arena.take(N * I)
        dQKV = arena.take(N * 3 * C)
        dProbabilities = arena.take(B * NH * T * T)
        dEmbedding = arena.take(N * E)
        dEmbeddingNormed = arena.take(N * E)
        dHeadA = arena.take(B * C)
        dHeadB = arena.take(B * C)
        dAttentionScores = arena.take(attentionHead ? N : 0)
        // `total` is worked out apart from the takes above; a size that is too large would
        // otherwise waste memory without a word.
        precondition(arena.used == total, "activation arena sized for \(total) floats, carved \(arena.used)")
        precondition(operandStorage == nil || operands.used == operandCount,
                     "operand arena sized for \(operandCount) elements, carved \(operands.used)")
    }

    deinit {
        backend.deallocate(storage)
        backend.deallocateIndices(indexStorage)
        operandStorage.map(backend.deallocateOperands)
    }
}
