// Per-example MSE and cross-entropy with fused gradients on the GPU (cuda/kernels/losses.cu).

import CDPCUDA

extension CUDABackend {
    public func mseLoss(losses: UnsafeMutablePointer<Float>, dPredictions: UnsafeMutablePointer<Float>,
                        predictions: UnsafePointer<Float>, targets: UnsafePointer<Float>,
                        B: Int, gradScale: Float) {
        check(api.dpc_mse_loss(losses, dPredictions, predictions, targets, Int32(B), gradScale), "mseLoss")
    }

    public func crossEntropyLoss(losses: UnsafeMutablePointer<Float>, dLogits: UnsafeMutablePointer<Float>,
                                 logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                 B: Int, K: Int, gradScale: Float) {
        check(api.dpc_cross_entropy_loss(losses, dLogits, logits, labels, Int32(B), Int32(K), gradScale),
              "crossEntropyLoss")
    }
}
