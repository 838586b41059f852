// One fused AdamW loop over a contiguous run of parameters that share a weight decay.

extension CPUBackend {
    public func adamW(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                      m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                      count: Int, hyperparameters h: AdamWHyperparameters) {
        let decayFactor = 1 - h.learningRate * h.weightDecay
        let stepSize = h.learningRate / h.biasCorrection1
        let inverseSqrtCorrection2 = 1 / h.biasCorrection2.squareRoot()
        parallelRanges(count, minimumPerChunk: 1 << 15) { range in
            for i in range {
                let g = gradients[i]
                let mi = h.beta1 * m[i] + (1 - h.beta1) * g
                let vi = h.beta2 * v[i] + (1 - h.beta2) * g * g
                m[i] = mi
                v[i] = vi
                let denominator = vi.squareRoot() * inverseSqrtCorrection2 + h.epsilon
                parameters[i] = parameters[i] * decayFactor - stepSize * mi / denominator
            }
        }
    }
}
