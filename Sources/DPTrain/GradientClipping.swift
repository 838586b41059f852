// torch.nn.utils.clip_grad_norm_ over the whole (already averaged) gradient: one global L2 norm,
// and a scale of max_norm / (norm + 1e-6) only when that is below 1.

import DPBackend

/// Returns the norm before clipping. A `maxNorm` of 0 turns clipping off.
@discardableResult
public func clipGradientNorm(_ gradients: UnsafeMutablePointer<Float>, count: Int, maxNorm: Float,
                             backend: Backend) -> Float {
    let norm = Float(backend.sumOfSquares(gradients, count: count).squareRoot())
    if maxNorm > 0 {
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 { backend.scale(gradients, by: coefficient, count: count) }
    }
    return norm
}
