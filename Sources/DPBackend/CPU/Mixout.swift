// Mixout (Lee et al. 2020, arXiv 1909.11299) of a linear layer's (OC, C) weight, as their
// `mixout` function draws it for nn.Linear: one Bernoulli(1 - p) draw per input column, shared
// by every output row. A kept column is (w - p target) / (1 - p), a replaced one is its target,
// so the mixed weight's expectation is the weight itself. The mask is dropout's counter hash
// over the columns (DropoutMask, example 0), so forward and backward draw the same columns.
// Lee et al.'s own backward multiplies the gradient by M alone; the derivative of the mixed
// weight, which finite differences confirm, is M / (1 - p), and that is what this computes.

extension CPUBackend {
    public func mixoutForward(weights: UnsafeMutablePointer<Float>, original: UnsafeMutablePointer<Float>,
                              target: UnsafePointer<Float>, mixout: MixoutSite, OC: Int, C: Int) {
        let mask = DropoutMask(mixout)
        let keeps = columnsKept(mask, C: C)
        let p = mixout.probability
        parallelRanges(OC, minimumPerChunk: max(1, 4096 / C)) { rows in
            for row in rows {
                for c in 0..<C {
                    let i = row * C + c
                    let weight = weights[i], anchor = target[i]
                    original[i] = weight
                    weights[i] = ((keeps[c] ? weight : anchor) - p * anchor) * mask.scale
                }
            }
        }
    }

    public func mixoutBackward(dWeights: UnsafeMutablePointer<Float>, mixout: MixoutSite, OC: Int, C: Int) {
        let mask = DropoutMask(mixout)
        let keeps = columnsKept(mask, C: C)
        parallelRanges(OC, minimumPerChunk: max(1, 4096 / C)) { rows in
            for row in rows {
                for c in 0..<C { dWeights[row * C + c] = keeps[c] ? dWeights[row * C + c] * mask.scale : 0 }
            }
        }
    }

    private func columnsKept(_ mask: DropoutMask, C: Int) -> [Bool] {
        let key = mask.exampleKey(0)
        return (0..<C).map { mask.keeps(position: UInt64($0), exampleKey: key) }
    }
}
