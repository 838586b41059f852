// torch.nn.utils.clip_grad_norm_ over the whole (already averaged) gradient: one global L2 norm,
// and a scale of max_norm / (norm + 1e-6) only when that is below 1. The scale is not applied
// here: AdamW multiplies each gradient by it as it reads it, which saves a pass over them.

import DPBackend

public struct GradientClip: Sendable {
    /// The global norm before clipping.
    public var norm: Float
    /// What the gradients are to be multiplied by: 1 when the norm is within bounds.
    public var scale: Float

    /// A `maxNorm` of 0 turns clipping off.
    public init(_ gradients: UnsafePointer<Float>, count: Int, maxNorm: Float, backend: Backend) {
        norm = Float(backend.sumOfSquares(gradients, count: count).squareRoot())
        let coefficient = maxNorm / (norm + 1e-6)
        scale = maxNorm > 0 && coefficient < 1 ? coefficient : 1
    }
}
