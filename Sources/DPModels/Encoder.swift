// BertForSequenceClassification, RobertaForSequenceClassification and
// AlbertForSequenceClassification (plus first-token, mean-pooled, attention and weighted-layer
// heads), forward and backward, on any Backend. It must match transformers: BertEmbeddings ->
// BertLayer x L (post-LayerNorm: attention, dense, dropout, add & norm; intermediate GELU, dense,
// dropout, add & norm) -> head. ALBERT adds the embedding projection and runs shared blocks.

import DPBackend
import DPTensor

/// Dropout for one training step; nil means evaluation (no dropout).
public struct DropoutSettings: Sendable {
    public var hidden: Float
    public var attention: Float
    public var classifier: Float
    public var seed: UInt64
    public var step: UInt64

    public init(hidden: Float, attention: Float, classifier: Float, seed: UInt64, step: UInt64) {
        self.hidden = hidden
        self.attention = attention
        self.classifier = classifier
        self.seed = seed
        self.step = step
    }
}

public enum Targets: Sendable {
    case regression([Float])
    case classification([Int32])
}

/// Identifies each dropout application in the model, so that masks never collide.
enum DropoutKind: UInt64 {
    case embeddings = 0, attentionProbabilities, attentionOutput, feedForwardOutput, classifierHidden, classifierInput

    func site(application: Int) -> UInt64 { UInt64(application + 1) << 8 | rawValue }
}

public final class EncoderModel {
    public let layout: EncoderLayout
    public let backend: Backend
    public var table: ParameterTable { layout.table }
    public var parameterCount: Int { table.totalCount }
    public let parameters: UnsafeMutablePointer<Float>  // (P)
    public let gradients: UnsafeMutablePointer<Float>   // (P)
    /// The parameters from the first linear layer's weight on, as the products read them: rounded
    /// once a forward pass in tf32 and bf16 (for its products and backward's), in place in fp32.
    private let weights: SavedOperand                     // (P - weightsOrigin)
    private let weightsOrigin: Int
    private var store: ActivationStore?
    private var current: (B: Int, T: Int, dropout: DropoutSettings?) = (0, 0, nil)

    public init(layout: EncoderLayout, backend: Backend) {
        self.layout = layout
        self.backend = backend
        parameters = backend.allocate(count: layout.table.totalCount)
        gradients = backend.allocate(count: layout.table.totalCount)
        // Only the embedding tables come before it; the products never read them.
        weightsOrigin = layout.embeddingProjection?.weight ?? layout.blocks[0].qkvWeight
        let count = layout.table.totalCount - weightsOrigin
        weights = SavedOperand(values: parameters + weightsOrigin,
                               copy: backend.precision == .fp32 ? nil : backend.allocateOperands(count: count))
    }

    deinit {
        backend.deallocate(parameters)
        backend.deallocate(gradients)
        weights.copy.map(backend.deallocateOperands)
    }

    public func zeroGradients() { backend.zero(gradients, count: parameterCount) }

    /// The hidden state after `index` block applications (0 = embeddings output), on the host. // (B, T, C)
    public func hiddenState(_ index: Int) -> [Float] {
        download(activations.states[index], count: current.B * current.T * layout.C)
    }

    /// The head's input vector after pooling (features) and after the pooler dense + tanh. // (B, C)
    public func pooledFeatures() -> [Float] { download(activations.features, count: current.B * layout.C) }
    public func poolerOutput() -> [Float] { download(activations.poolerOutput, count: current.B * layout.C) }
    public func logits() -> [Float] { download(activations.logits, count: current.B * layout.K) }
    /// The attention head's softmax over the tokens. // (B, T)
    public func attentionPoolWeights() -> [Float] {
        download(activations.attentionWeights, count: layout.attentionPool == nil ? 0 : current.B * current.T)
    }

    private var activations: ActivationStore {
        guard let store else { preconditionFailure("forward has not run") }
        return store
    }

    private func download(_ pointer: UnsafePointer<Float>, count: Int) -> [Float] {
        var host = [Float](repeating: 0, count: count)
        host.withUnsafeMutableBufferPointer { backend.download($0.baseAddress!, from: pointer, count: count) }
        return host
    }

    private func parameter(_ offset: Int) -> UnsafeMutablePointer<Float> { parameters + offset }
    private func gradient(_ offset: Int) -> UnsafeMutablePointer<Float> { gradients + offset }

    /// Fills the first `count` elements of `saved`'s rounded copy for the products that read them;
    /// fp32 products read the values.
    private func round(_ saved: SavedOperand, count: Int) {
        if let copy = saved.copy { _ = backend.roundOperands(out: copy, values: saved.values, count: count) }
    }

    /// `saved` as the products read it, once `round` has filled it.
    private func operands(_ saved: SavedOperand) -> Operands {
        guard let copy = saved.copy else { return Operands(fp32: saved.values) }
        return Operands(copy: copy, on: backend)
    }

    /// `dOut` of a linear layer, with backward's copy for its products.
    private func dOutOperand(_ dOut: UnsafePointer<Float>) -> SavedOperand {
        SavedOperand(values: dOut, copy: activations.dOutCopy)
    }

    /// The linear layer weight at `offset` in the parameter table, as the products read it.
    private func weight(_ offset: Int) -> Operands { operands(weights).advanced(by: offset - weightsOrigin) }

    private func dropoutSite(_ probability: Float, _ kind: DropoutKind, application: Int = -1) -> DropoutSite {
        DropoutSite(probability: current.dropout == nil ? 0 : probability,
                    seed: current.dropout?.seed ?? 0, step: current.dropout?.step ?? 0,
                    site: kind.site(application: application),
                    exampleIndices: activations.exampleIndices)
    }

    // MARK: Forward

    public func forward(_ batch: EncoderBatch, dropout: DropoutSettings?) {
        let (B, T) = (batch.B, batch.T)
        if store.map({ $0.B < B || $0.T < T }) ?? true {
            let capacity = (B: max(B, store?.B ?? 0), T: max(T, store?.T ?? 0))
            store = nil // frees the old arena before the larger one is allocated
            store = ActivationStore(layout: layout, backend: backend, B: capacity.B, T: capacity.T)
        }
        current = (B, T, dropout)
        let a = activations
        backend.uploadIndices(a.inputIds, from: batch.inputIds, count: B * T)
        backend.uploadIndices(a.typeIds, from: batch.typeIds, count: B * T)
        backend.uploadIndices(a.positionIds, from: batch.positionIds, count: B * T)
        backend.uploadIndices(a.exampleIndices, from: batch.exampleIndices, count: B)
        backend.upload(a.attentionMask, from: batch.attentionMask, count: B * T)

        round(weights, count: parameterCount - weightsOrigin)
        embedForward(B: B, T: T)
        for (application, block) in layout.schedule.enumerated() {
            blockForward(application: application, block: layout.blocks[block], B: B, T: T)
        }
        headForward(B: B, T: T)
    }

    private func embedForward(B: Int, T: Int) {
        let a = activations, l = layout, N = B * T
        let hiddenDropout = current.dropout?.hidden ?? 0
        backend.embeddingsForward(out: a.embeddingSum, wordIds: a.inputIds, positionIds: a.positionIds,
                                  typeIds: a.typeIds, wordTable: parameter(l.wordEmbeddings),
                                  positionTable: parameter(l.positionEmbeddings),
                                  typeTable: parameter(l.typeEmbeddings), B: B, T: T, C: l.E)
        let normed = l.embeddingProjection == nil ? a.states[0] : a.embeddingNormed
        backend.layerNormForward(out: normed, operands: nil, mean: a.embeddingMean, rstd: a.embeddingRstd,
                                 input: a.embeddingSum, weight: parameter(l.embeddingNormWeight),
                                 bias: parameter(l.embeddingNormBias), N: N, C: l.E, epsilon: l.config.layerNormEps)
        backend.dropoutForward(out: normed, input: normed, dropout: dropoutSite(hiddenDropout, .embeddings),
                               B: B, R: T * l.E)
        if let projection = l.embeddingProjection {
            round(a.embeddingProjectionInput, count: N * l.E)
            backend.matmulForward(out: a.states[0], input: operands(a.embeddingProjectionInput),
                                  weight: weight(projection.weight), bias: parameter(projection.bias),
                                  N: N, C: l.E, OC: l.C)
        }
    }

    private func blockForward(application: Int, block w: BlockOffsets, B: Int, T: Int) {
        let a = activations.blocks[application], o = activations.blockOperands[application]
        let l = layout, N = B * T, C = l.C, I = l.I
        let input = activations.states[application], output = activations.states[application + 1]
        let hidden = current.dropout?.hidden ?? 0, attention = current.dropout?.attention ?? 0
        // In tf32 and bf16, LayerNorm and GELU write the next product's rounded operands as they
        // write their outputs; the embeddings' output and attention's get a pass of their own.
        let nextInput = application + 1 < layout.schedule.count ? activations.blockOperands[application + 1].input
            : layout.attentionPool == nil ? nil : activations.lastStateOperand

        if application == 0 { round(o.input, count: N * C) }
        backend.matmulForward(out: a.qkv, input: operands(o.input), weight: weight(w.qkvWeight),
                              bias: parameter(w.qkvBias), N: N, C: C, OC: 3 * C)
        round(o.qkv, count: N * 3 * C)
        backend.attentionForward(out: a.context, probabilities: a.probabilities, qkv: operands(o.qkv),
                                 attentionMask: activations.attentionMask,
                                 dropout: dropoutSite(attention, .attentionProbabilities, application: application),
                                 B: B, T: T, C: C, NH: l.NH)
        round(o.context, count: N * C)
        // The biases of this and the two feed-forward products join the pass that follows each.
        backend.matmulForward(out: a.residual1, input: operands(o.context), weight: weight(w.attentionOutputWeight),
                              bias: nil, N: N, C: C, OC: C)
        backend.dropoutResidualForward(out: a.residual1, input: a.residual1, bias: parameter(w.attentionOutputBias),
                                       residual: input,
                                       dropout: dropoutSite(hidden, .attentionOutput, application: application),
                                       B: B, T: T, C: C)
        backend.layerNormForward(out: a.hidden1, operands: o.hidden1.copy, mean: a.mean1, rstd: a.rstd1,
                                 input: a.residual1, weight: parameter(w.attentionNormWeight),
                                 bias: parameter(w.attentionNormBias), N: N, C: C, epsilon: l.config.layerNormEps)

        backend.matmulForward(out: a.activated, input: operands(o.hidden1), weight: weight(w.intermediateWeight),
                              bias: nil, N: N, C: C, OC: I)
        backend.geluForward(out: a.activated, operands: o.activated.copy, slope: a.geluSlope, input: a.activated,
                            bias: parameter(w.intermediateBias), N: N, C: I, form: l.config.hiddenAct)
        backend.matmulForward(out: a.residual2, input: operands(o.activated), weight: weight(w.outputWeight),
                              bias: nil, N: N, C: I, OC: C)
        backend.dropoutResidualForward(out: a.residual2, input: a.residual2, bias: parameter(w.outputBias),
                                       residual: a.hidden1,
                                       dropout: dropoutSite(hidden, .feedForwardOutput, application: application),
                                       B: B, T: T, C: C)
        backend.layerNormForward(out: output, operands: nextInput?.copy, mean: a.mean2, rstd: a.rstd2,
                                 input: a.residual2, weight: parameter(w.outputNormWeight),
                                 bias: parameter(w.outputNormBias), N: N, C: C, epsilon: l.config.layerNormEps)
    }

    private func headForward(B: Int, T: Int) {
        let a = activations, l = layout, C = l.C
        let last = a.states[l.schedule.count]
        let classifierDropout = current.dropout?.classifier ?? 0
        switch l.head.pooling {
        case .mean:
            backend.meanPoolForward(out: a.features, input: last, attentionMask: a.attentionMask, B: B, T: T, C: C)
        case .pooler, .firstToken, .robertaHead:
            backend.firstTokenForward(out: a.features, input: last, B: B, T: T, C: C)
        case .attention:
            attentionHeadForward(B: B, T: T)
        case .weightedLayers:
            guard let weights = l.layerPoolWeights else { preconditionFailure("a weighted_layers head without weights") }
            backend.layerPoolForward(out: a.features, states: a.states[firstPooledState], stride: a.stateStride,
                                     weights: parameter(weights), B: B, T: T, C: C, K: l.head.pooledLayers)
        }
        var vector = a.features
        if let dense = l.poolerDense {
            if l.head.pooling == .robertaHead {
                backend.dropoutForward(out: a.denseInput, input: a.features,
                                       dropout: dropoutSite(classifierDropout, .classifierHidden), B: B, R: C)
            }
            round(a.denseInputOperand, count: B * C)
            backend.matmulForward(out: a.poolerOutput, input: operands(a.denseInputOperand), weight: weight(dense.weight),
                                  bias: parameter(dense.bias), N: B, C: C, OC: C)
            backend.tanhForward(out: a.poolerOutput, input: a.poolerOutput, count: B * C)
            vector = a.poolerOutput
        }
        backend.dropoutForward(out: a.classifierInput, input: vector,
                               dropout: dropoutSite(classifierDropout, .classifierInput), B: B, R: C)
        round(a.classifierInputOperand, count: B * C)
        backend.matmulForward(out: a.logits, input: operands(a.classifierInputOperand),
                              weight: weight(l.classifier.weight), bias: parameter(l.classifier.bias),
                              N: B, C: C, OC: l.K)
    }

    private func attentionHeadForward(B: Int, T: Int) {
        let a = activations, N = B * T, C = layout.C
        guard let pool = layout.attentionPool else { preconditionFailure("an attention head without its tensors") }
        backend.matmulForward(out: a.attentionHidden, input: operands(a.lastStateOperand),
                              weight: weight(pool.denseWeight), bias: parameter(pool.denseBias), N: N, C: C, OC: C)
        backend.tanhForward(out: a.attentionHidden, input: a.attentionHidden, count: N * C)
        round(a.attentionHiddenOperand, count: N * C)
        backend.matmulForward(out: a.attentionScores, input: operands(a.attentionHiddenOperand),
                              weight: weight(pool.scoreWeight), bias: nil, N: N, C: C, OC: 1)
        backend.attentionPoolForward(out: a.features, weights: a.attentionWeights, scores: a.attentionScores,
                                     input: a.states[layout.schedule.count], attentionMask: a.attentionMask,
                                     B: B, T: T, C: C)
    }

    // MARK: Loss

    /// Per-example losses of the last forward pass; prepares backward to compute the gradient of
    /// gradScale * (sum of the losses).
    public func loss(_ targets: Targets, gradScale: Float) -> [Float] {
        let a = activations, B = current.B
        switch targets {
        case .regression(let values):
            precondition(layout.K == 1 && values.count == B, "regression needs one target per example")
            backend.upload(a.targets, from: values, count: B)
            backend.mseLoss(losses: a.losses, dPredictions: a.dLogits, predictions: a.logits, targets: a.targets,
                            B: B, gradScale: gradScale)
        case .classification(let labels):
            precondition(labels.count == B, "classification needs one label per example")
            backend.uploadIndices(a.labels, from: labels, count: B)
            backend.crossEntropyLoss(losses: a.losses, dLogits: a.dLogits, logits: a.logits, labels: a.labels,
                                     B: B, K: layout.K, gradScale: gradScale)
        }
        return download(a.losses, count: B)
    }

    // MARK: Backward

    /// Accumulates the gradient of the last loss into `gradients`. `completed` hears of each span
    /// of the flat buffer as soon as backward no longer writes it (head, blocks, embeddings), so
    /// that the caller can start reducing it while the rest of backward runs.
    public func backward(completed: ((Range<Int>) -> Void)? = nil) {
        let (B, T) = (current.B, current.T)
        headBackward(B: B, T: T)
        completed?(layout.headRange)
        for (application, block) in layout.schedule.enumerated().reversed() {
            blockBackward(application: application, block: layout.blocks[block], B: B, T: T)
            layerPoolStateBackward(state: application, B: B, T: T)
            // ALBERT's shared blocks are complete only after their earliest application.
            if layout.schedule.firstIndex(of: block) == application { completed?(layout.blockRange(block)) }
        }
        embedBackward(B: B, T: T)
        completed?(layout.embeddingRange)
    }

    private func headBackward(B: Int, T: Int) {
        let a = activations, l = layout, C = l.C
        let classifierDropout = current.dropout?.classifier ?? 0
        let dLogits = dOutOperand(a.dLogits)
        round(dLogits, count: B * l.K)
        backend.matmulBackward(dInput: a.dHeadA, accumulatesDInput: false, dWeight: gradient(l.classifier.weight),
                               dBias: gradient(l.classifier.bias), dOut: a.dLogits, dOutOperands: operands(dLogits),
                               input: operands(a.classifierInputOperand), weight: weight(l.classifier.weight),
                               N: B, C: C, OC: l.K)
        backend.dropoutBackward(dInput: a.dHeadA, dOut: a.dHeadA,
                                dropout: dropoutSite(classifierDropout, .classifierInput), B: B, R: C)
        var dFeatures = a.dHeadA
        if let dense = l.poolerDense {
            backend.tanhBackward(dInput: a.dHeadA, dOut: a.dHeadA, out: a.poolerOutput, count: B * C)
            let dDense = dOutOperand(a.dHeadA)
            round(dDense, count: B * C)
            backend.matmulBackward(dInput: a.dHeadB, accumulatesDInput: false, dWeight: gradient(dense.weight),
                                   dBias: gradient(dense.bias), dOut: a.dHeadA, dOutOperands: operands(dDense),
                                   input: operands(a.denseInputOperand), weight: weight(dense.weight), N: B, C: C, OC: C)
            if l.head.pooling == .robertaHead {
                backend.dropoutBackward(dInput: a.dHeadB, dOut: a.dHeadB,
                                        dropout: dropoutSite(classifierDropout, .classifierHidden), B: B, R: C)
            }
            dFeatures = a.dHeadB
        }
        switch l.head.pooling {
        case .mean:
            backend.meanPoolBackward(dInput: a.dState, dOut: dFeatures, attentionMask: a.attentionMask, B: B, T: T, C: C)
        case .pooler, .firstToken, .robertaHead:
            backend.firstTokenBackward(dInput: a.dState, dOut: dFeatures, B: B, T: T, C: C)
        case .attention:
            attentionHeadBackward(dFeatures: dFeatures, B: B, T: T)
        case .weightedLayers:
            guard let weights = l.layerPoolWeights else { preconditionFailure("a weighted_layers head without weights") }
            backend.layerPoolWeightsBackward(dWeights: gradient(weights), dOut: dFeatures, out: a.features,
                                             states: a.states[firstPooledState], stride: a.stateStride,
                                             weights: parameter(weights), B: B, T: T, C: C, K: l.head.pooledLayers)
            layerPoolStateBackward(state: l.schedule.count, B: B, T: T)
        }
    }

    /// The hidden state the weighted_layers head mixes first; the rest follow it up to the last.
    private var firstPooledState: Int { layout.schedule.count + 1 - layout.head.pooledLayers }

    /// The weighted_layers head's share of the gradient of hidden state `state`, once dState holds
    /// what flowed down to it: the last state's is all it has, each lower one's joins it.
    private func layerPoolStateBackward(state: Int, B: Int, T: Int) {
        guard let weights = layout.layerPoolWeights, state >= firstPooledState else { return }
        backend.layerPoolStateBackward(dInput: activations.dState, accumulates: state < layout.schedule.count,
                                       dOut: activations.dHeadA, weights: parameter(weights),
                                       layer: state - firstPooledState, B: B, T: T, C: layout.C,
                                       K: layout.head.pooledLayers)
    }

    /// The last state's gradient has two paths: the weighted sum, and each token's score.
    private func attentionHeadBackward(dFeatures: UnsafePointer<Float>, B: Int, T: Int) {
        let a = activations, N = B * T, C = layout.C
        guard let pool = layout.attentionPool else { preconditionFailure("an attention head without its tensors") }
        backend.attentionPoolBackward(dInput: a.dState, dScores: a.dAttentionScores, dOut: dFeatures,
                                      weights: a.attentionWeights, input: a.states[layout.schedule.count],
                                      B: B, T: T, C: C)
        let dScores = dOutOperand(a.dAttentionScores)
        round(dScores, count: N)
        backend.matmulBackward(dInput: a.dResidual, accumulatesDInput: false, dWeight: gradient(pool.scoreWeight),
                               dBias: nil, dOut: a.dAttentionScores, dOutOperands: operands(dScores),
                               input: operands(a.attentionHiddenOperand), weight: weight(pool.scoreWeight),
                               N: N, C: C, OC: 1)
        backend.tanhBackward(dInput: a.dResidual, dOut: a.dResidual, out: a.attentionHidden, count: N * C)
        let dHidden = dOutOperand(a.dResidual)
        round(dHidden, count: N * C)
        backend.matmulBackward(dInput: a.dState, accumulatesDInput: true, dWeight: gradient(pool.denseWeight),
                               dBias: gradient(pool.denseBias), dOut: a.dResidual, dOutOperands: operands(dHidden),
                               input: operands(a.lastStateOperand), weight: weight(pool.denseWeight),
                               N: N, C: C, OC: C)
    }

    /// On entry dState holds the gradient of this application's output; on exit, of its input.
    private func blockBackward(application: Int, block w: BlockOffsets, B: Int, T: Int) {
        let s = activations, a = s.blocks[application], o = s.blockOperands[application]
        let l = layout, N = B * T, C = l.C, I = l.I
        let hidden = current.dropout?.hidden ?? 0, attention = current.dropout?.attention ?? 0

        // Each LayerNorm's backward also takes its dropped branch back through the dropout, and
        // like GELU's writes the result as the next product's dOut operands too.
        let dTemporary = dOutOperand(s.dTemporary), dIntermediate = dOutOperand(s.dIntermediate)
        let feedForwardBranch = DroppedBranch(dInput: s.dTemporary,
                                              dropout: dropoutSite(hidden, .feedForwardOutput, application: application),
                                              operands: dTemporary.copy)
        backend.layerNormBackward(dInput: s.dResidual, branch: feedForwardBranch, dWeight: gradient(w.outputNormWeight),
                                  dBias: gradient(w.outputNormBias), dOut: s.dState, input: a.residual2,
                                  weight: parameter(w.outputNormWeight), mean: a.mean2, rstd: a.rstd2, B: B, T: T, C: C)
        backend.matmulBackward(dInput: s.dIntermediate, accumulatesDInput: false, dWeight: gradient(w.outputWeight),
                               dBias: gradient(w.outputBias), dOut: s.dTemporary, dOutOperands: operands(dTemporary),
                               input: operands(o.activated), weight: weight(w.outputWeight), N: N, C: I, OC: C)
        backend.geluBackward(dInput: s.dIntermediate, operands: dIntermediate.copy, dOut: s.dIntermediate,
                             slope: a.geluSlope, count: N * I)
        // hidden1 feeds both the feed-forward branch and the residual: its gradient is the sum.
        backend.matmulBackward(dInput: s.dResidual, accumulatesDInput: true, dWeight: gradient(w.intermediateWeight),
                               dBias: gradient(w.intermediateBias), dOut: s.dIntermediate,
                               dOutOperands: operands(dIntermediate), input: operands(o.hidden1),
                               weight: weight(w.intermediateWeight), N: N, C: C, OC: I)

        let attentionBranch = DroppedBranch(dInput: s.dTemporary,
                                            dropout: dropoutSite(hidden, .attentionOutput, application: application),
                                            operands: dTemporary.copy)
        backend.layerNormBackward(dInput: s.dState, branch: attentionBranch, dWeight: gradient(w.attentionNormWeight),
                                  dBias: gradient(w.attentionNormBias), dOut: s.dResidual, input: a.residual1,
                                  weight: parameter(w.attentionNormWeight), mean: a.mean1, rstd: a.rstd1, B: B, T: T, C: C)
        backend.matmulBackward(dInput: s.dResidual, accumulatesDInput: false, dWeight: gradient(w.attentionOutputWeight),
                               dBias: gradient(w.attentionOutputBias), dOut: s.dTemporary,
                               dOutOperands: operands(dTemporary), input: operands(o.context),
                               weight: weight(w.attentionOutputWeight), N: N, C: C, OC: C)
        let dContext = dOutOperand(s.dResidual)
        round(dContext, count: N * C)
        backend.attentionBackward(dQKV: s.dQKV, scratch: s.dProbabilities, dOut: operands(dContext), qkv: operands(o.qkv),
                                  probabilities: a.probabilities,
                                  dropout: dropoutSite(attention, .attentionProbabilities, application: application),
                                  B: B, T: T, C: C, NH: l.NH)
        // Likewise the block's input, through attention and through the residual.
        let dQKV = dOutOperand(s.dQKV)
        round(dQKV, count: N * 3 * C)
        backend.matmulBackward(dInput: s.dState, accumulatesDInput: true, dWeight: gradient(w.qkvWeight),
                               dBias: gradient(w.qkvBias), dOut: s.dQKV, dOutOperands: operands(dQKV),
                               input: operands(o.input), weight: weight(w.qkvWeight), N: N, C: C, OC: 3 * C)
        // The key bias adds q.b to every score of a query's row, which softmax ignores: its true
        // gradient is exactly 0. Left as round-off, Adam's m/sqrt(v) would turn that noise into
        // full-sized updates that differ with the summation order, e.g. between rank counts.
        backend.zero(gradient(w.qkvBias) + C, count: C)
    }

    private func embedBackward(B: Int, T: Int) {
        let s = activations, l = layout, N = B * T
        let hiddenDropout = current.dropout?.hidden ?? 0
        var dNormed = s.dState
        if let projection = l.embeddingProjection {
            let dProjection = dOutOperand(s.dState)
            round(dProjection, count: N * l.C)
            backend.matmulBackward(dInput: s.dEmbeddingNormed, accumulatesDInput: false,
                                   dWeight: gradient(projection.weight), dBias: gradient(projection.bias),
                                   dOut: s.dState, dOutOperands: operands(dProjection),
                                   input: operands(s.embeddingProjectionInput),
                                   weight: weight(projection.weight), N: N, C: l.E, OC: l.C)
            dNormed = s.dEmbeddingNormed
        }
        backend.dropoutBackward(dInput: dNormed, dOut: dNormed, dropout: dropoutSite(hiddenDropout, .embeddings),
                                B: B, R: T * l.E)
        backend.layerNormBackward(dInput: s.dEmbedding, branch: nil, dWeight: gradient(l.embeddingNormWeight),
                                  dBias: gradient(l.embeddingNormBias), dOut: dNormed, input: s.embeddingSum,
                                  weight: parameter(l.embeddingNormWeight), mean: s.embeddingMean,
                                  rstd: s.embeddingRstd, B: B, T: T, C: l.E)
        backend.embeddingsBackward(dWordTable: gradient(l.wordEmbeddings), dPositionTable: gradient(l.positionEmbeddings),
                                   dTypeTable: gradient(l.typeEmbeddings), dOut: s.dEmbedding, wordIds: s.inputIds,
                                   positionIds: s.positionIds, typeIds: s.typeIds, B: B, T: T, C: l.E)
        // nn.Embedding(padding_idx=pad) never trains its padding row: the word table's in every
        // model, and RoBERTa's position table, whose padding positions are numbered pad too.
        let pad = l.config.padTokenId
        backend.zero(gradient(l.wordEmbeddings + pad * l.E), count: l.E)
        if l.config.modelType == .roberta {
            backend.zero(gradient(l.positionEmbeddings + pad * l.E), count: l.E)
        }
    }
}
