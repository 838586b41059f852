// Per-example losses with their gradients fused in. The gradient is of gradScale * sum of the
// losses, so the trainer chooses the mean over the global batch, across ranks, by its scale.

import Foundation

extension CPUBackend {
    /// torch.nn.MSELoss per example: (prediction - target)^2.
    public func mseLoss(losses: UnsafeMutablePointer<Float>, dPredictions: UnsafeMutablePointer<Float>,
                        predictions: UnsafePointer<Float>, targets: UnsafePointer<Float>,
                        B: Int, gradScale: Float) {
        for b in 0..<B {
            let difference = predictions[b] - targets[b]
            losses[b] = difference * difference
            dPredictions[b] = 2 * difference * gradScale
        }
    }

    /// torch.nn.CrossEntropyLoss per example, through a max-shifted log-sum-exp.
    public func crossEntropyLoss(losses: UnsafeMutablePointer<Float>, dLogits: UnsafeMutablePointer<Float>,
                                 logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                 B: Int, K: Int, gradScale: Float) {
        for b in 0..<B {
            let z = logits + b * K
            let dz = dLogits + b * K
            var maximum = -Float.infinity
            for k in 0..<K { maximum = max(maximum, z[k]) }
            var sum: Float = 0
            for k in 0..<K { sum += expf(z[k] - maximum) }
            let label = Int(labels[b])
            losses[b] = maximum + logf(sum) - z[label]
            for k in 0..<K {
                let probability = expf(z[k] - maximum) / sum
                dz[k] = (probability - (k == label ? 1 : 0)) * gradScale
            }
        }
    }
}
