// Inverted dropout whose mask is a counter-based hash rather than a stream of random numbers:
// an element's fate depends only on (seed, step, site, global example index, position inside
// the example), so the same run gives the same masks on any number of ranks, with any
// micro-batch split or padded length, and backward recomputes the mask instead of storing it.

@inline(__always)
func splitMix(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// One hash feeds four elements: 16 bits each is ample resolution for a drop probability.
struct DropoutMask {
    let scale: Float
    let threshold: UInt64
    let seedKey: UInt64

    init(_ dropout: DropoutSite) {
        self.init(probability: dropout.probability, seed: dropout.seed, step: dropout.step, site: dropout.site)
    }

    /// Mixout's mask is dropout's over the positions of one "example", the weight's columns.
    init(_ mixout: MixoutSite) {
        self.init(probability: mixout.probability, seed: mixout.seed, step: mixout.step, site: mixout.site)
    }

    private init(probability: Float, seed: UInt64, step: UInt64, site: UInt64) {
        scale = 1 / (1 - probability)
        threshold = UInt64((Double(probability) * 65536).rounded())
        seedKey = splitMix(splitMix(splitMix(seed) ^ step) ^ site)
    }

    /// Whether the element at `position` is kept: its 16 bits of its group's hash.
    @inline(__always)
    func keeps(position: UInt64, exampleKey: UInt64) -> Bool {
        (groupBits(position >> 2, exampleKey) >> ((position & 3) << 4)) & 0xFFFF >= threshold
    }

    @inline(__always)
    func exampleKey(_ exampleIndex: Int32) -> UInt64 {
        splitMix(seedKey ^ UInt64(UInt32(bitPattern: exampleIndex)))
    }

    /// out[i] = input[i] * (0 or 1/(1-p)) for i in `range`, element i sitting at position
    /// `base + i` of its example. One hash serves the four positions that share `position >> 2`.
    /// `alsoDropping`, when given, is dropped in place by the same mask in the same pass.
    @inline(__always)
    func apply(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, range: Range<Int>,
               base: UInt64, exampleKey: UInt64, alsoDropping other: UnsafeMutablePointer<Float>? = nil) {
        var i = range.lowerBound
        while i < range.upperBound && (base &+ UInt64(i)) & 3 != 0 {
            applyOne(out, input, i, base: base, exampleKey: exampleKey, alsoDropping: other)
            i += 1
        }
        // Eight elements from two hashes at a time, without a branch per element: a dropped
        // element is a mispredicted branch one time in ten.
        let keepBelow = SIMD8<Int32>(repeating: Int32(threshold) - 1)
        while i + 8 <= range.upperBound {
            let group = (base &+ UInt64(i)) >> 2
            let low = groupBits(group, exampleKey), high = groupBits(group &+ 1, exampleKey)
            let fields = SIMD8<Int32>(Int32(truncatingIfNeeded: low & 0xFFFF), Int32(truncatingIfNeeded: (low >> 16) & 0xFFFF),
                                      Int32(truncatingIfNeeded: (low >> 32) & 0xFFFF), Int32(truncatingIfNeeded: low >> 48),
                                      Int32(truncatingIfNeeded: high & 0xFFFF), Int32(truncatingIfNeeded: (high >> 16) & 0xFFFF),
                                      Int32(truncatingIfNeeded: (high >> 32) & 0xFFFF), Int32(truncatingIfNeeded: high >> 48))
            let kept = (keepBelow &- fields) &>> 31  // all ones where field >= threshold
            out.store8(dropped(input.load8(i), kept), at: i)
            if let other { other.store8(dropped(other.load8(i), kept), at: i) }
            i += 8
        }
        while i < range.upperBound {
            applyOne(out, input, i, base: base, exampleKey: exampleKey, alsoDropping: other)
            i += 1
        }
    }

    /// x / (1 - p) in the lanes of `kept` that are all ones, exactly 0 in the others.
    @inline(__always)
    private func dropped(_ x: Float8, _ kept: SIMD8<Int32>) -> Float8 {
        unsafeBitCast(unsafeBitCast(x * scale, to: SIMD8<Int32>.self) & kept, to: Float8.self)
    }

    @inline(__always)
    private func groupBits(_ group: UInt64, _ exampleKey: UInt64) -> UInt64 {
        splitMix(exampleKey &+ group &* 0xD1B5_4A32_D192_ED03)
    }

    @inline(__always)
    private func applyOne(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, _ i: Int,
                          base: UInt64, exampleKey: UInt64, alsoDropping other: UnsafeMutablePointer<Float>?) {
        let kept = keeps(position: base &+ UInt64(i), exampleKey: exampleKey)
        out[i] = kept ? input[i] * scale : 0
        if let other { other[i] = kept ? other[i] * scale : 0 }
    }
}

extension CPUBackend {
    public func dropoutForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                               dropout: DropoutSite, B: Int, R: Int) {
        applyDropout(out, input, dropout, B: B, R: R)
    }

    public func dropoutBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                dropout: DropoutSite, B: Int, R: Int) {
        applyDropout(dInput, dOut, dropout, B: B, R: R)
    }

    public func dropoutResidualForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                       bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>,
                                       dropout: DropoutSite, B: Int, T: Int, C: Int) {
        var input = input
        if let bias {
            addRowBias(out, input, bias, N: B * T, C: C)
            input = UnsafePointer(out)
        }
        applyDropout(out, input, dropout, B: B, R: T * C)
        parallelRanges(B * T * C, minimumPerChunk: 1 << 16) { range in
            for i in range { out[i] += residual[i] }
        }
    }

    /// out (N, C) = input + bias (C) on every row; out may be input.
    private func addRowBias(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                            N: Int, C: Int) {
        parallelRanges(N, minimumPerChunk: max(1, 4096 / C)) { rows in
            for row in rows {
                for c in 0..<C { out[row * C + c] = input[row * C + c] + bias[c] }
            }
        }
    }

    /// Forward and backward are the same product with the same mask.
    private func applyDropout(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                              _ dropout: DropoutSite, B: Int, R: Int) {
        guard dropout.isActive else {
            if UnsafePointer(out) != input { out.update(from: input, count: B * R) }
            return
        }
        let mask = DropoutMask(dropout)
        for b in 0..<B {
            let key = mask.exampleKey(dropout.exampleIndices[b])
            let x = input + b * R, y = out + b * R
            parallelRanges(R) { range in
                mask.apply(y, x, range: range, base: 0, exampleKey: key)
            }
        }
    }
}
