// torch.optim.AdamW's fused update over the flat buffer, eight lanes at a time.

extension CPUBackend {
    public func adamW(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                      m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, decays: UnsafePointer<Int32>,
                      count: Int, hyperparameters h: AdamWHyperparameters) {
        let decayFactor = 1 - h.learningRate * h.weightDecay
        let stepSize = h.learningRate / h.biasCorrection1
        let inverseSqrtCorrection2 = 1 / h.biasCorrection2.squareRoot()
        parallelRanges(count, minimumPerChunk: 1 << 15) { range in
            var i = range.lowerBound
            while i < range.upperBound {
                let lanes = min(8, range.upperBound - i)
                var decayFactors = Float8(repeating: 1)
                for lane in 0..<lanes where takesDecay(i + lane, decays) { decayFactors[lane] = decayFactor }
                let g = load(gradients, i, lanes)
                let mi = h.beta1 * load(m, i, lanes) + (1 - h.beta1) * g
                let vi = h.beta2 * load(v, i, lanes) + (1 - h.beta2) * g * g
                let denominator = vi.squareRoot() * inverseSqrtCorrection2 + h.epsilon
                store(mi, m, i, lanes)
                store(vi, v, i, lanes)
                store(load(parameters, i, lanes) * decayFactors - stepSize * mi / denominator, parameters, i, lanes)
                i += lanes
            }
        }
    }
}

/// Bit i of the decay mask that Backend.adamW takes.
@inline(__always) func takesDecay(_ i: Int, _ decays: UnsafePointer<Int32>) -> Bool {
    (UInt32(bitPattern: decays[i >> 5]) >> UInt32(i & 31)) & 1 != 0
}
