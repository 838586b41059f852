// torch.optim.AdamW's fused update over the flat buffer, eight lanes at a time.

extension CPUBackend {
    public func adamW(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                      m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, decays: UnsafePointer<Int32>,
                      decayTarget: UnsafePointer<Float>?, count: Int, hyperparameters h: AdamWHyperparameters) {
        let decayRate = h.learningRate * h.weightDecay, decayFactor = 1 - decayRate
        let stepSize = h.learningRate / h.biasCorrection1
        let inverseSqrtCorrection2 = 1 / h.biasCorrection2.squareRoot()
        parallelRanges(count, minimumPerChunk: 1 << 15) { range in
            var i = range.lowerBound
            while i < range.upperBound {
                let lanes = min(8, range.upperBound - i)
                let decaying = decayLanes(i, lanes, decays)
                let g = load(gradients, i, lanes) * h.gradientScale
                let mi = h.beta1 * load(m, i, lanes) + (1 - h.beta1) * g
                let vi = h.beta2 * load(v, i, lanes) + (1 - h.beta2) * g * g
                let denominator = vi.squareRoot() * inverseSqrtCorrection2 + h.epsilon
                store(mi, m, i, lanes)
                store(vi, v, i, lanes)
                let p = load(parameters, i, lanes)
                // torch's p.mul_(1 - lr wd), or Zhang et al.'s p.add_(p - target, alpha=-lr wd).
                let decayed: Float8
                if let decayTarget {
                    decayed = p - select(decayRate, 0, where: decaying) * (p - load(decayTarget, i, lanes))
                } else {
                    decayed = p * select(decayFactor, 1, where: decaying)
                }
                store(decayed - stepSize * mi / denominator, parameters, i, lanes)
                i += lanes
            }
        }
    }
}

/// Lane k's bit of the decay mask moved to the sign bit, by multiplying it by 2^(31 - k).
private let laneBitsToSign = SIMD8<UInt32>(1 << 31, 1 << 30, 1 << 29, 1 << 28, 1 << 27, 1 << 26, 1 << 25, 1 << 24)

/// Bits i ..< i + lanes of the decay mask that Backend.adamW takes, as all-ones or all-zero
/// lanes. Integer arithmetic rather than `.!=` and `replacing(with:where:)`: the compiler built
/// that mask one lane at a time through the stack, which made AdamW four times slower than its
/// memory traffic. The group may straddle two mask words.
@inline(__always) private func decayLanes(_ i: Int, _ lanes: Int, _ decays: UnsafePointer<Int32>) -> SIMD8<Int32> {
    let first = i >> 5, last = (i + lanes - 1) >> 5, shift = UInt64(i & 31)
    var bits = UInt64(UInt32(bitPattern: decays[first])) >> shift
    if last != first { bits |= UInt64(UInt32(bitPattern: decays[last])) << (32 - shift) }
    let signs = SIMD8(repeating: UInt32(truncatingIfNeeded: bits)) &* laneBitsToSign
    return unsafeBitCast(signs, to: SIMD8<Int32>.self) &>> 31
}

/// `chosen` where `lanes` is all ones, `otherwise` where it is zero, through the bit patterns.
@inline(__always) private func select(_ chosen: Float, _ otherwise: Float, where lanes: SIMD8<Int32>) -> Float8 {
    let chosenBits = SIMD8<Int32>(repeating: Int32(bitPattern: chosen.bitPattern))
    let otherBits = SIMD8<Int32>(repeating: Int32(bitPattern: otherwise.bitPattern))
    return unsafeBitCast((chosenBits & lanes) | (otherBits & ~lanes), to: Float8.self)
}
