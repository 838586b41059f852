// The fused AdamW update on the GPU (cuda/kernels/adamw.cu).

import CDPCUDA

extension CUDABackend {
    public func adamW(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                      m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, decays: UnsafePointer<Int32>,
                      decayTarget: UnsafePointer<Float>?, count: Int, hyperparameters h: AdamWHyperparameters) {
        let settings = dpc_adamw(learning_rate: h.learningRate, beta1: h.beta1, beta2: h.beta2, epsilon: h.epsilon,
                                 weight_decay: h.weightDecay, bias_correction1: h.biasCorrection1,
                                 bias_correction2: h.biasCorrection2, gradient_scale: h.gradientScale)
        let words = UnsafeRawPointer(decays).assumingMemoryBound(to: UInt32.self)
        check(api.dpc_adamw_step(parameters, gradients, m, v, words, decayTarget, Int64(count), settings), "adamW")
    }
}
