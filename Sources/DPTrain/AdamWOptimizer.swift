// AdamW over the flat parameter buffer. Its two moments are flat buffers laid out like the
// parameters, and the weight-decay decision comes from the parameter table (never biases or
// LayerNorm) as one bit per parameter in backend memory, so one backend call covers the whole
// buffer, or one call per learning-rate group with layer-wise decay (torch's param_groups: each
// group's rate also drives its decoupled decay).
//
// Bias correction on is torch.optim.AdamW: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// Bias correction off is BERTAdam, as in the original BERT code: p -= lr * m / (sqrt(v) + eps).
// Both apply decoupled weight decay first: p -= lr * wd * p, or with WeightDecayTarget.pretrained
// p -= lr * wd * (p - p0), Zhang et al.'s pretrained weight decay (arXiv 2006.05987), where p0 is
// the parameters training started from.

import DPBackend
import DPModels
import DPTensor
import Foundation

/// What decoupled weight decay pulls the parameters toward.
public enum WeightDecayTarget: String, Sendable, CaseIterable, Codable {
    /// 0, as torch.optim.AdamW.
    case zero
    /// The values training started from: the pretrained weights, and a fresh head's initial draw.
    case pretrained
}

public struct AdamWSettings: Sendable, Equatable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-6
    public var weightDecay: Float = 0.01
    public var biasCorrection = true
    public var decayTarget = WeightDecayTarget.zero

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-6, weightDecay: Float = 0.01,
                biasCorrection: Bool = true, decayTarget: WeightDecayTarget = .zero) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.biasCorrection = biasCorrection
        self.decayTarget = decayTarget
    }
}

/// A span of the flat buffer that steps at `scale` times the scheduled learning rate.
public struct LearningRateGroup: Sendable, Equatable {
    public var range: Range<Int>
    public var scale: Float

    public init(range: Range<Int>, scale: Float) {
        self.range = range
        self.scale = scale
    }
}

public final class AdamWOptimizer {
    public let settings: AdamWSettings
    public let backend: Backend
    public let count: Int
    public let m: UnsafeMutablePointer<Float>  // (P)
    public let v: UnsafeMutablePointer<Float>  // (P)
    /// The parameters training started from, kept where something pulls toward them: the decay,
    /// with WeightDecayTarget.pretrained, and Mixout. Set by `anchor(at:)`, saved with the moments.
    public let startingWeights: UnsafeMutablePointer<Float>?  // (P)
    /// Updates taken so far; the next update is number `step + 1` in Adam's bias correction.
    public internal(set) var step = 0
    public let groups: [LearningRateGroup]
    /// Which parameters of each group decay, in backend memory: bit i % 32 of word i / 32 is the
    /// group's parameter i's, counted from the group's start.
    let decays: [UnsafeMutablePointer<Int32>]  // ((group count + 31) / 32) each

    /// `groups` must tile the buffer in order; nil is one group at the scheduled rate.
    /// `keepsStartingWeights` keeps them for Mixout even where the decay pulls toward 0.
    public init(table: ParameterTable, settings: AdamWSettings, backend: Backend, groups: [LearningRateGroup]? = nil,
                keepsStartingWeights: Bool = false) {
        self.settings = settings
        self.backend = backend
        count = table.totalCount
        let groups = groups ?? [LearningRateGroup(range: 0..<table.totalCount, scale: 1)]
        precondition(zip(groups, groups.dropFirst()).allSatisfy { $0.range.upperBound == $1.range.lowerBound }
                     && groups.first?.range.lowerBound == 0 && groups.last?.range.upperBound == count,
                     "learning-rate groups must tile the parameter buffer in order")
        self.groups = groups
        m = backend.allocate(count: count)
        v = backend.allocate(count: count)
        startingWeights = settings.decayTarget == .pretrained || keepsStartingWeights ? backend.allocate(count: count) : nil
        let decaying = table.specs.filter(\.decays).map(\.range)
        decays = groups.map { group in
            let relative = decaying.map { $0.clamped(to: group.range) }.filter { !$0.isEmpty }
                .map { ($0.lowerBound - group.range.lowerBound)..<($0.upperBound - group.range.lowerBound) }
            let words = weightDecayMask(count: group.range.count, decaying: relative)
            let mask = backend.allocateIndices(count: words.count)
            words.withUnsafeBufferPointer { backend.uploadIndices(mask, from: $0.baseAddress!, count: $0.count) }
            return mask
        }
    }

    deinit {
        backend.deallocate(m)
        backend.deallocate(v)
        startingWeights.map(backend.deallocate)
        decays.forEach(backend.deallocateIndices)
    }

    /// Keeps `parameters`, the values training starts from, as the starting weights.
    public func anchor(at parameters: UnsafePointer<Float>) {
        startingWeights.map { backend.copy($0, from: parameters, count: count) }
    }

    /// One step on `gradients` times `gradientScale` (GradientClip's scale).
    public func update(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate: Float,
                       gradientScale: Float = 1) {
        step += 1
        let t = Float(step)
        var hyperparameters = AdamWHyperparameters(
            learningRate: learningRate, beta1: settings.beta1, beta2: settings.beta2, epsilon: settings.epsilon,
            weightDecay: settings.weightDecay,
            biasCorrection1: settings.biasCorrection ? 1 - powf(settings.beta1, t) : 1,
            biasCorrection2: settings.biasCorrection ? 1 - powf(settings.beta2, t) : 1, gradientScale: gradientScale)
        let decayTarget = settings.decayTarget == .pretrained ? startingWeights : nil
        for (group, mask) in zip(groups, decays) {
            let start = group.range.lowerBound
            hyperparameters.learningRate = learningRate * group.scale
            backend.adamW(parameters: parameters + start, gradients: gradients + start, m: m + start, v: v + start,
                          decays: mask, decayTarget: decayTarget.map { $0 + start }, count: group.range.count,
                          hyperparameters: hyperparameters)
        }
    }
}

extension EncoderLayout {
    /// Layer-wise learning-rate decay (LLRD, as in Zhang et al. 2020 and Sun et al. 2019): the
    /// head and pooler step at the scheduled rate, and going down each layer's rate is `decay`
    /// times the one above it, so that with L layers layer l gets decay^(L - l) and the
    /// embeddings decay^(L + 1). The groups follow the flat layout: embeddings, layers, head.
    public func layerwiseLearningRateGroups(decay: Float) -> [LearningRateGroup] {
        precondition(blocks.count == config.numHiddenLayers, "one block per layer (not ALBERT's shared blocks)")
        let L = blocks.count
        func scale(depthBelowHead: Int) -> Float { Float(pow(Double(decay), Double(depthBelowHead))) }
        return [LearningRateGroup(range: embeddingRange, scale: scale(depthBelowHead: L + 1))]
            + (0..<L).map { LearningRateGroup(range: blockRange($0), scale: scale(depthBelowHead: L - $0)) }
            + [LearningRateGroup(range: headRange, scale: 1)]
    }
}
