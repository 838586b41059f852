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
                let decayFactors = Float8(repeating: 1)
                    .replacing(with: decayFactor, where: decayLanes(i, lanes, decays) & laneBits .!= 0)
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

private let laneBits = SIMD8<UInt32>(1, 2, 4, 8, 16, 32, 64, 128)

/// Bits i ..< i + lanes of the decay mask that Backend.adamW takes, as lane 0's bit 0 upwards,
/// repeated in every lane; the group may straddle two mask words.
@inline(__always) private func decayLanes(_ i: Int, _ lanes: Int, _ decays: UnsafePointer<Int32>) -> SIMD8<UInt32> {
    let first = i >> 5, last = (i + lanes - 1) >> 5, shift = UInt64(i & 31)
    var bits = UInt64(UInt32(bitPattern: decays[first])) >> shift
    if last != first { bits |= UInt64(UInt32(bitPattern: decays[last])) << (32 - shift) }
    return SIMD8(repeating: UInt32(truncatingIfNeeded: bits))
}
