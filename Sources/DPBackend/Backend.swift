// The one interface that every compute backend implements: the CPU reference on OpenBLAS and
// CUDA. There are no default implementations, so a backend that lacks an op does not compile.
//
// Conventions, after llm.c: each layer is a forward/backward pair whose arguments are outputs,
// then inputs, then dimensions. Parameter gradients accumulate (+=); activation gradients are
// assigned (=). Pointers live in the backend's memory (host memory for the CPU backend).
//
// Letters in shape comments: B batch, T tokens (padded to the longest sequence of the batch),
// C channels, NH heads, HS head size (C / NH), V vocabulary, P positions, TV token types,
// K labels, N rows of a flattened (B * T) tensor, OC output channels.

public enum GELUForm: String, Sendable, CaseIterable {
    /// `hidden_act: gelu`: x * Phi(x) with the exact erf.
    case erf
    /// `hidden_act: gelu_new` (also gelu_pytorch_tanh): the tanh approximation.
    case tanh
}

/// Identifies one dropout application so that its mask is a pure function of
/// (seed, step, site, global example index, position inside the example). The mask therefore
/// does not depend on the number of ranks, the micro-batch split or the padded length, and
/// backward regenerates it instead of storing it.
public struct DropoutSite {
    public var probability: Float
    public var seed: UInt64
    public var step: UInt64
    /// Which application inside the model (e.g. layer 3, attention probabilities).
    public var site: UInt64
    /// The global index of each example of the batch. // (B)
    public var exampleIndices: UnsafePointer<Int32>

    public init(probability: Float, seed: UInt64, step: UInt64, site: UInt64,
                exampleIndices: UnsafePointer<Int32>) {
        self.probability = probability
        self.seed = seed
        self.step = step
        self.site = site
        self.exampleIndices = exampleIndices
    }

    public var isActive: Bool { probability > 0 }
}

/// Identifies one linear weight's Mixout draw: column c of the weight is kept (mixed in) or
/// replaced by its target as a pure function of (seed, step, site, c), with the hash that
/// dropout uses, so every rank draws the same mask and backward regenerates it.
public struct MixoutSite: Sendable {
    /// The chance that a column is replaced by its target (Lee et al.'s p).
    public var probability: Float
    public var seed: UInt64
    public var step: UInt64
    /// Which weight of the model (Mixout hashes its name).
    public var site: UInt64

    public init(probability: Float, seed: UInt64, step: UInt64, site: UInt64) {
        self.probability = probability
        self.seed = seed
        self.step = step
        self.site = site
    }
}

/// The branch that forward dropped and added to the residual stream just before a LayerNorm
/// (`dropoutResidualForward`): LayerNorm's backward also writes the branch's gradient, its own
/// dInput through the same dropout, instead of leaving that pass to `dropoutBackward`.
public struct DroppedBranch {
    public var dInput: UnsafeMutablePointer<Float>  // (B, T, C)
    public var dropout: DropoutSite
    /// Also receives `dInput` rounded as a product's operands (tf32 and bf16 only), for the
    /// branch's linear layer, whose dOut it is.
    public var operands: UnsafeMutableRawPointer?   // (B, T, C)

    public init(dInput: UnsafeMutablePointer<Float>, dropout: DropoutSite, operands: UnsafeMutableRawPointer? = nil) {
        self.dInput = dInput
        self.dropout = dropout
        self.operands = operands
    }
}

public struct AdamWHyperparameters: Sendable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    /// 1 - beta1^t when bias correction is on, 1 for BERTAdam.
    public var biasCorrection1: Float
    /// 1 - beta2^t when bias correction is on, 1 for BERTAdam.
    public var biasCorrection2: Float
    /// Multiplies each gradient as it is read: the global-norm clip's coefficient (1 when the
    /// norm is within bounds), so that clipping needs no pass over the gradients of its own.
    public var gradientScale: Float

    public init(learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float,
                biasCorrection1: Float, biasCorrection2: Float, gradientScale: Float = 1) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.biasCorrection1 = biasCorrection1
        self.biasCorrection2 = biasCorrection2
        self.gradientScale = gradientScale
    }
}

/// Backend.adamW's weight-decay mask for `count` parameters: bit i % 32 of word i / 32 is set
/// where parameter i lies in one of `decaying`. Whole words at a time, since a parameter table's
/// decaying tensors cover most of 100M parameters.
public func weightDecayMask(count: Int, decaying: [Range<Int>]) -> [Int32] {
    var words = [UInt32](repeating: 0, count: (count + 31) / 32)
    for range in decaying {
        var i = range.lowerBound
        while i < range.upperBound {
            let bit = i & 31, run = min(32 - bit, range.upperBound - i)
            words[i >> 5] |= UInt32(truncatingIfNeeded: (UInt64(1) << UInt64(run)) - 1) << UInt32(bit)
            i += run
        }
    }
    return words.map { Int32(bitPattern: $0) }
}

/// A download under way (Backend.startDownload), to be waited for once, from any thread.
public struct PendingDownload: @unchecked Sendable {
    /// The backend's own handle (a CUDA event); nil where the copy was already done.
    public let handle: OpaquePointer?

    public init(handle: OpaquePointer?) { self.handle = handle }
}

/// Values as a product multiplies them (Precision.swift). In fp32, the fp32 values where they lie.
/// In tf32 and bf16, a copy that `roundOperands` rounded into the backend's operand format
/// (`operandBytes` per element: rounded Floats on the CPU; tf32-exact words or bf16 halves on a
/// GPU). The copy outlives the call, so the parameters are rounded once a pass and an input once
/// for forward and backward, not once per product. The precision travels with the pointer, so a
/// backend refuses an fp32 view in a rounded mode instead of multiplying unrounded values.
public struct Operands {
    public let base: UnsafeRawPointer
    public let precision: Precision
    public let elementBytes: Int

    /// fp32 values, read in place.
    public init(fp32 values: UnsafePointer<Float>) {
        self.init(base: UnsafeRawPointer(values), precision: .fp32, elementBytes: MemoryLayout<Float>.stride)
    }

    /// A rounded copy in `backend`'s operand format, in its precision.
    public init(copy: UnsafeRawPointer, on backend: any Backend) {
        self.init(base: copy, precision: backend.precision, elementBytes: backend.operandBytes)
    }

    private init(base: UnsafeRawPointer, precision: Precision, elementBytes: Int) {
        self.base = base
        self.precision = precision
        self.elementBytes = elementBytes
    }

    /// The operands from element `count` on.
    public func advanced(by count: Int) -> Operands {
        Operands(base: base + count * elementBytes, precision: precision, elementBytes: elementBytes)
    }

    /// `base`, for a product in `precision`, which must be these operands' own.
    public func base(for precision: Precision) -> UnsafeRawPointer {
        precondition(self.precision == precision, "a \(self.precision) operand passed to a \(precision) product")
        return base
    }
}

public protocol Backend: AnyObject {
    var name: String { get }
    /// Where this rank's ops run, for the training log: its threads, or its GPU.
    var placement: String { get }
    /// What the products compute in (Precision.swift defines each mode).
    var precision: Precision { get }
    /// Whether the buffers live in host memory, where MPI can sum them in place; a GPU
    /// backend's gradients are summed through a host copy instead.
    var memoryIsHost: Bool { get }

    // MARK: Memory

    /// `count` zeroed floats in the backend's memory.
    func allocate(count: Int) -> UnsafeMutablePointer<Float>
    func deallocate(_ buffer: UnsafeMutablePointer<Float>)
    func allocateIndices(count: Int) -> UnsafeMutablePointer<Int32>
    func deallocateIndices(_ buffer: UnsafeMutablePointer<Int32>)
    func upload(_ destination: UnsafeMutablePointer<Float>, from host: UnsafePointer<Float>, count: Int)
    func download(_ destination: UnsafeMutablePointer<Float>, from device: UnsafePointer<Float>, count: Int)
    func uploadIndices(_ destination: UnsafeMutablePointer<Int32>, from host: UnsafePointer<Int32>, count: Int)
    /// `count` floats of host memory that downloads land in while the backend goes on computing
    /// (page-locked on a GPU), for the gradients' trip through MPI.
    func allocateStaging(count: Int) -> UnsafeMutablePointer<Float>
    func deallocateStaging(_ buffer: UnsafeMutablePointer<Float>)
    /// Starts copying `count` floats into staging memory once everything issued before this call
    /// has run, and returns without waiting: the ops issued after it keep the GPU busy meanwhile.
    func startDownload(_ destination: UnsafeMutablePointer<Float>, from device: UnsafePointer<Float>,
                       count: Int) -> PendingDownload
    /// Blocks the calling thread, which may be any thread, until `download` has landed.
    func waitForDownload(_ download: PendingDownload)
    func zero(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    func copy(_ destination: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, count: Int)
    /// Sum of squares for the global gradient norm: Float partial sums over short blocks, added
    /// up in Double (relative error about 1e-8 on 1M elements; a single Float sum is 1e-4 off).
    func sumOfSquares(_ buffer: UnsafePointer<Float>, count: Int) -> Double

    // MARK: Product operands (tf32 and bf16 modes; fp32 products read their values in place)

    /// Bytes of one operand element in this backend's precision.
    var operandBytes: Int { get }
    /// Room for `count` operand elements.
    func allocateOperands(count: Int) -> UnsafeMutableRawPointer
    func deallocateOperands(_ buffer: UnsafeMutableRawPointer)
    /// `values` (count) rounded into `out` (count operand elements). Only in tf32 and bf16 modes.
    func roundOperands(out: UnsafeMutableRawPointer, values: UnsafePointer<Float>, count: Int) -> Operands

    // MARK: Embeddings

    func embeddingsForward(out: UnsafeMutablePointer<Float>,              // (B, T, C)
                           wordIds: UnsafePointer<Int32>,                 // (B, T)
                           positionIds: UnsafePointer<Int32>,             // (B, T)
                           typeIds: UnsafePointer<Int32>,                 // (B, T)
                           wordTable: UnsafePointer<Float>,               // (V, C)
                           positionTable: UnsafePointer<Float>,           // (P, C)
                           typeTable: UnsafePointer<Float>,               // (TV, C)
                           B: Int, T: Int, C: Int)
    func embeddingsBackward(dWordTable: UnsafeMutablePointer<Float>,      // (V, C)
                            dPositionTable: UnsafeMutablePointer<Float>,  // (P, C)
                            dTypeTable: UnsafeMutablePointer<Float>,      // (TV, C)
                            dOut: UnsafePointer<Float>,                   // (B, T, C)
                            wordIds: UnsafePointer<Int32>,                // (B, T)
                            positionIds: UnsafePointer<Int32>,            // (B, T)
                            typeIds: UnsafePointer<Int32>,                // (B, T)
                            B: Int, T: Int, C: Int)

    // MARK: Linear layers (PyTorch layout: weight is (OC, C))

    func matmulForward(out: UnsafeMutablePointer<Float>,                  // (N, OC)
                       input: Operands,                                   // (N, C)
                       weight: Operands,                                  // (OC, C)
                       bias: UnsafePointer<Float>?,                       // (OC)
                       N: Int, C: Int, OC: Int)
    /// `accumulatesDInput` adds the input's gradient to `dInput` (beta 1) instead of assigning it:
    /// a residual branch's gradient then needs no separate add. The products read `dOutOperands`
    /// (rounded by whatever wrote dOut, where it could); the bias gradient sums the fp32 `dOut`.
    func matmulBackward(dInput: UnsafeMutablePointer<Float>?,             // (N, C)
                        accumulatesDInput: Bool,
                        dWeight: UnsafeMutablePointer<Float>,             // (OC, C)
                        dBias: UnsafeMutablePointer<Float>?,              // (OC)
                        dOut: UnsafePointer<Float>,                       // (N, OC)
                        dOutOperands: Operands,                           // (N, OC)
                        input: Operands,                                  // (N, C)
                        weight: Operands,                                 // (OC, C)
                        N: Int, C: Int, OC: Int)

    // MARK: LayerNorm

    /// `operands`, if given (tf32 and bf16 only), also receives `out` rounded as the operands
    /// of the linear layer that reads it, in the same pass; likewise for GELU's.
    func layerNormForward(out: UnsafeMutablePointer<Float>,               // (N, C)
                          operands: UnsafeMutableRawPointer?,             // (N, C)
                          mean: UnsafeMutablePointer<Float>,              // (N)
                          rstd: UnsafeMutablePointer<Float>,              // (N)
                          input: UnsafePointer<Float>,                    // (N, C)
                          weight: UnsafePointer<Float>,                   // (C)
                          bias: UnsafePointer<Float>,                     // (C)
                          N: Int, C: Int, epsilon: Float)
    func layerNormBackward(dInput: UnsafeMutablePointer<Float>,           // (B, T, C)
                           branch: DroppedBranch?,
                           dWeight: UnsafeMutablePointer<Float>,          // (C)
                           dBias: UnsafeMutablePointer<Float>,            // (C)
                           dOut: UnsafePointer<Float>,                    // (B, T, C)
                           input: UnsafePointer<Float>,                   // (B, T, C)
                           weight: UnsafePointer<Float>,                  // (C)
                           mean: UnsafePointer<Float>,                    // (B, T)
                           rstd: UnsafePointer<Float>,                    // (B, T)
                           B: Int, T: Int, C: Int)

    // MARK: Activations

    /// out = GELU(input + bias), in place if out == input. The bias is the linear layer's before
    /// it, added here rather than by matmulForward to save a pass over the activations. With
    /// `slope`, also keeps GELU' there, so that backward is one multiply instead of a second pass
    /// through erf and exp.
    func geluForward(out: UnsafeMutablePointer<Float>,                    // (N, C), may be input
                     operands: UnsafeMutableRawPointer?,                  // (N, C)
                     slope: UnsafeMutablePointer<Float>?,                 // (N, C)
                     input: UnsafePointer<Float>,                         // (N, C)
                     bias: UnsafePointer<Float>?,                         // (C)
                     N: Int, C: Int, form: GELUForm)
    func geluBackward(dInput: UnsafeMutablePointer<Float>,                // (count)
                      operands: UnsafeMutableRawPointer?,                 // (count)
                      dOut: UnsafePointer<Float>,                         // (count)
                      slope: UnsafePointer<Float>,                        // (count)
                      count: Int)
    func tanhForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int)
    /// Uses the forward output: d tanh(x) = 1 - tanh(x)^2.
    func tanhBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                      out: UnsafePointer<Float>, count: Int)

    // MARK: Dropout (inverted: kept values are scaled by 1 / (1 - p))

    func dropoutForward(out: UnsafeMutablePointer<Float>,                 // (B, R)
                        input: UnsafePointer<Float>,                      // (B, R)
                        dropout: DropoutSite, B: Int, R: Int)
    func dropoutBackward(dInput: UnsafeMutablePointer<Float>,             // (B, R)
                         dOut: UnsafePointer<Float>,                      // (B, R)
                         dropout: DropoutSite, B: Int, R: Int)
    /// out = dropout(input + bias) + residual: a sublayer's output, with the bias of its linear
    /// layer, joining the residual stream in one pass (out may be input). Its backward is
    /// dropoutBackward; the residual's gradient is dOut, the bias's that of the linear layer.
    func dropoutResidualForward(out: UnsafeMutablePointer<Float>,         // (B, T, C)
                                input: UnsafePointer<Float>,              // (B, T, C)
                                bias: UnsafePointer<Float>?,              // (C)
                                residual: UnsafePointer<Float>,           // (B, T, C)
                                dropout: DropoutSite, B: Int, T: Int, C: Int)

    // MARK: Mixout (Lee et al. 2020): a linear weight mixed with its target, one mask per input column
    /// weights = ((1 - M) target + M weights - p target) / (1 - p) in place, M = 1 for a kept
    /// column (chance 1 - p), so a replaced column becomes its target; `original` receives the
    /// weights as they were, for the restore after backward.
    func mixoutForward(weights: UnsafeMutablePointer<Float>,              // (OC, C), in place
                       original: UnsafeMutablePointer<Float>,             // (OC, C)
                       target: UnsafePointer<Float>,                      // (OC, C)
                       mixout: MixoutSite, OC: Int, C: Int)
    /// dWeights = M dWeights / (1 - p) in place: the gradient of the mixed weight carried back to
    /// the weight itself.
    func mixoutBackward(dWeights: UnsafeMutablePointer<Float>,            // (OC, C), in place
                        mixout: MixoutSite, OC: Int, C: Int)

    // MARK: Self-attention over a fused (query | key | value) projection
    // The products read `qkv` and `dOut` as the caller's operands, as the linear layers do; the
    // probabilities and dScores they multiply in tf32 and bf16 are rounded here.

    func attentionForward(out: UnsafeMutablePointer<Float>,               // (B, T, C)
                          probabilities: UnsafeMutablePointer<Float>,     // (B, NH, T, T), before dropout
                          qkv: Operands,                                  // (B, T, 3C)
                          attentionMask: UnsafePointer<Float>,            // (B, T), 1 = token, 0 = padding
                          dropout: DropoutSite,
                          B: Int, T: Int, C: Int, NH: Int)
    func attentionBackward(dQKV: UnsafeMutablePointer<Float>,             // (B, T, 3C)
                           scratch: UnsafeMutablePointer<Float>,          // (B, NH, T, T)
                           dOut: Operands,                                // (B, T, C)
                           qkv: Operands,                                 // (B, T, 3C)
                           probabilities: UnsafePointer<Float>,           // (B, NH, T, T)
                           dropout: DropoutSite,
                           B: Int, T: Int, C: Int, NH: Int)

    // MARK: Pooling over tokens

    func firstTokenForward(out: UnsafeMutablePointer<Float>,              // (B, C)
                           input: UnsafePointer<Float>,                   // (B, T, C)
                           B: Int, T: Int, C: Int)
    func firstTokenBackward(dInput: UnsafeMutablePointer<Float>,          // (B, T, C)
                            dOut: UnsafePointer<Float>,                   // (B, C)
                            B: Int, T: Int, C: Int)
    /// Mean over the tokens whose mask is 1.
    func meanPoolForward(out: UnsafeMutablePointer<Float>,                // (B, C)
                         input: UnsafePointer<Float>,                     // (B, T, C)
                         attentionMask: UnsafePointer<Float>,             // (B, T)
                         B: Int, T: Int, C: Int)
    func meanPoolBackward(dInput: UnsafeMutablePointer<Float>,            // (B, T, C)
                          dOut: UnsafePointer<Float>,                     // (B, C)
                          attentionMask: UnsafePointer<Float>,            // (B, T)
                          B: Int, T: Int, C: Int)
    /// The attention pooling head's last step: weights = the scores' softmax over the tokens whose
    /// mask is 1 (padding gets exactly 0), out = the weighted sum of the token states.
    func attentionPoolForward(out: UnsafeMutablePointer<Float>,           // (B, C)
                              weights: UnsafeMutablePointer<Float>,       // (B, T)
                              scores: UnsafePointer<Float>,               // (B, T)
                              input: UnsafePointer<Float>,                // (B, T, C)
                              attentionMask: UnsafePointer<Float>,        // (B, T)
                              B: Int, T: Int, C: Int)
    /// Writes dInput's weighted-sum part, weights[b, t] dOut[b], which the score's path then
    /// adds to, and dScores, softmax's backward of dOut . input[b, t].
    func attentionPoolBackward(dInput: UnsafeMutablePointer<Float>,       // (B, T, C)
                               dScores: UnsafeMutablePointer<Float>,      // (B, T)
                               dOut: UnsafePointer<Float>,                // (B, C)
                               weights: UnsafePointer<Float>,             // (B, T)
                               input: UnsafePointer<Float>,               // (B, T, C)
                               B: Int, T: Int, C: Int)

    /// The weighted layer pooling head: the first token of K hidden states, the state l at
    /// `states + l * stride`, mixed by weights[l] / (sum of the weights).
    func layerPoolForward(out: UnsafeMutablePointer<Float>,               // (B, C)
                          states: UnsafePointer<Float>,                   // K x (B, T, C), `stride` apart
                          stride: Int,
                          weights: UnsafePointer<Float>,                  // (K)
                          B: Int, T: Int, C: Int, K: Int)
    /// Adds to dWeights[l] the sum over b of dOut[b] . (state l's first token - out[b]), over
    /// the weights' sum: the gradient of the normalised mixture.
    func layerPoolWeightsBackward(dWeights: UnsafeMutablePointer<Float>,  // (K)
                                  dOut: UnsafePointer<Float>,             // (B, C)
                                  out: UnsafePointer<Float>,              // (B, C)
                                  states: UnsafePointer<Float>,           // K x (B, T, C), `stride` apart
                                  stride: Int,
                                  weights: UnsafePointer<Float>,          // (K)
                                  B: Int, T: Int, C: Int, K: Int)
    /// State `layer`'s share of dOut, weights[layer] / (sum of the weights) dOut[b], into its
    /// first token's row of dInput: added to what backward brought down from the layers above,
    /// or, when `accumulates` is false (the last state), assigned with every other row zeroed.
    func layerPoolStateBackward(dInput: UnsafeMutablePointer<Float>,      // (B, T, C)
                                accumulates: Bool,
                                dOut: UnsafePointer<Float>,               // (B, C)
                                weights: UnsafePointer<Float>,            // (K)
                                layer: Int,
                                B: Int, T: Int, C: Int, K: Int)

    // MARK: Losses (forward and backward fused; the gradient is of gradScale * sum of losses)

    func mseLoss(losses: UnsafeMutablePointer<Float>,                     // (B)
                 dPredictions: UnsafeMutablePointer<Float>,               // (B)
                 predictions: UnsafePointer<Float>,                       // (B)
                 targets: UnsafePointer<Float>,                           // (B)
                 B: Int, gradScale: Float)
    func crossEntropyLoss(losses: UnsafeMutablePointer<Float>,            // (B)
                          dLogits: UnsafeMutablePointer<Float>,           // (B, K)
                          logits: UnsafePointer<Float>,                   // (B, K)
                          labels: UnsafePointer<Int32>,                   // (B)
                          B: Int, K: Int, gradScale: Float)

    // MARK: Optimizer

    /// torch.optim.AdamW's update with decoupled weight decay applied first, on the gradients
    /// times `gradientScale` (g = s * gradient):
    /// p -= lr * wd * p; m, v updated; p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
    /// With bc1 = bc2 = 1 this is BERTAdam: p -= lr * m / (sqrt(v) + eps).
    /// The decay applies where `decays` says so: bit i % 32 of word i / 32 is parameter i's. One
    /// call covers the whole flat buffer, so a GPU runs one kernel a step rather than one per
    /// run of biases and weights. With a `decayTarget` the decay pulls toward it instead of 0,
    /// p -= lr * wd * (p - target): Zhang et al.'s pretrained weight decay.
    func adamW(parameters: UnsafeMutablePointer<Float>,                  // (count)
               gradients: UnsafePointer<Float>,                          // (count)
               m: UnsafeMutablePointer<Float>,                           // (count)
               v: UnsafeMutablePointer<Float>,                           // (count)
               decays: UnsafePointer<Int32>,                             // ((count + 31) / 32)
               decayTarget: UnsafePointer<Float>?,                       // (count)
               count: Int, hyperparameters: AdamWHyperparameters)
}
