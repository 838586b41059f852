// One fused AdamW loop over a contiguous run of parameters that share a weight decay.

extension CPUBackend {
    public func adamW(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                      m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                      count: Int, hyperparameters h: AdamWHyperparameters) {
        let decayFactor = 1 - h.learningRate * h.weightDecay
        let stepSize = h.learningRate / h.biasCorrection1
        let inverseSqrtCorrection2 = 1 / h.biasCorrection2.squareRoot()
        parallelRanges(count, minimumPerChunk: 1 << 15) { range in
            var i = range.lowerBound
            while i < range.upperBound {
                let lanes = min(8, range.upperBound - i)
                let g = load(gradients, i, lanes)
                let mi = h.beta1 * load(m, i, lanes) + (1 - h.beta1) * g
                let vi = h.beta2 * load(v, i, lanes) + (1 - h.beta2) * g * g
                let denominator = vi.squareRoot() * inverseSqrtCorrection2 + h.epsilon
                store(mi, m, i, lanes)
                store(vi, v, i, lanes)
                store(load(parameters, i, lanes) * decayFactor - stepSize * mi / denominator, parameters, i, lanes)
                i += lanes
            }
        }
    }
}
