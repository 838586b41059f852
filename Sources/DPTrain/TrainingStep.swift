// One optimizer step on one process: forward, loss, backward, global-norm clipping, AdamW.
// The data-parallel trainer wraps the same sequence with an allreduce between backward and
// clipping.

import DPBackend
import DPModels

public struct StepStatistics: Sendable {
    /// Mean loss over the batch.
    public var loss: Float
    /// Global gradient norm before clipping.
    public var gradientNorm: Float
}

public struct StepSettings: Sendable {
    public var learningRate: Float
    public var maxGradientNorm: Float
    public var dropout: DropoutSettings?

    public init(learningRate: Float, maxGradientNorm: Float, dropout: DropoutSettings?) {
        self.learningRate = learningRate
        self.maxGradientNorm = maxGradientNorm
        self.dropout = dropout
    }
}

public func trainingStep(model: EncoderModel, optimizer: AdamWOptimizer, batch: EncoderBatch, targets: Targets,
                         settings: StepSettings) -> StepStatistics {
    model.zeroGradients()
    model.forward(batch, dropout: settings.dropout)
    let losses = model.loss(targets, gradScale: 1 / Float(batch.B))
    model.backward()
    let clip = GradientClip(model.gradients, count: model.parameterCount, maxNorm: settings.maxGradientNorm,
                            backend: model.backend)
    optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: settings.learningRate,
                     gradientScale: clip.scale)
    return StepStatistics(loss: losses.reduce(0, +) / Float(batch.B), gradientNorm: clip.norm)
}
