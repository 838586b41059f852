// AdamW over the flat parameter buffer. Its two moments are flat buffers laid out like the
// parameters, and the weight-decay decision comes from the parameter table (never biases or
// LayerNorm) as one bit per parameter in backend memory, so one backend call covers the whole
// buffer.
//
// Bias correction on is torch.optim.AdamW: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// Bias correction off is BERTAdam, as in the original BERT code: p -= lr * m / (sqrt(v) + eps).
// Both apply decoupled weight decay first: p -= lr * wd * p.

import DPBackend
import DPTensor
import Foundation

public struct AdamWSettings: Sendable, Equatable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-6
    public var weightDecay: Float = 0.01
    public var biasCorrection = true

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-6, weightDecay: Float = 0.01,
                biasCorrection: Bool = true) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.biasCorrection = biasCorrection
    }
}

public final class AdamWOptimizer {
    public let settings: AdamWSettings
    public let backend: Backend
    public let count: Int
    public let m: UnsafeMutablePointer<Float>  // (P)
    public let v: UnsafeMutablePointer<Float>  // (P)
    /// Updates taken so far; the next update is number `step + 1` in Adam's bias correction.
    public internal(set) var step = 0
    /// Which parameters decay, in backend memory: bit i % 32 of word i / 32 is parameter i's.
    let decays: UnsafeMutablePointer<Int32>  // ((P + 31) / 32)

    public init(table: ParameterTable, settings: AdamWSettings, backend: Backend) {
        self.settings = settings
        self.backend = backend
        count = table.totalCount
        m = backend.allocate(count: count)
        v = backend.allocate(count: count)
        let words = weightDecayMask(count: count, decaying: table.specs.filter(\.decays).map(\.range))
        decays = backend.allocateIndices(count: words.count)
        words.withUnsafeBufferPointer { backend.uploadIndices(decays, from: $0.baseAddress!, count: $0.count) }
    }

    deinit {
        backend.deallocate(m)
        backend.deallocate(v)
        backend.deallocateIndices(decays)
    }

    public func update(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate: Float) {
        step += 1
        let t = Float(step)
        let hyperparameters = AdamWHyperparameters(
            learningRate: learningRate, beta1: settings.beta1, beta2: settings.beta2, epsilon: settings.epsilon,
            weightDecay: settings.weightDecay,
            biasCorrection1: settings.biasCorrection ? 1 - powf(settings.beta1, t) : 1,
            biasCorrection2: settings.biasCorrection ? 1 - powf(settings.beta2, t) : 1)
        backend.adamW(parameters: parameters, gradients: gradients, m: m, v: v, decays: decays, count: count,
                      hyperparameters: hyperparameters)
    }
}
