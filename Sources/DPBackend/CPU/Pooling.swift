// Sentence vectors from token states: the first token (BERT's [CLS], RoBERTa's <s>), the
// masked mean of sentence-transformers, which ignores padding, the softmax-weighted sum of
// the attention pooling head, and the weighted layer pooling head's mixture of first tokens.

import Foundation

extension CPUBackend {
    public func firstTokenForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                  B: Int, T: Int, C: Int) {
        for b in 0..<B { (out + b * C).update(from: input + b * T * C, count: C) }
    }

    public func firstTokenBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                   B: Int, T: Int, C: Int) {
        dInput.update(repeating: 0, count: B * T * C)
        for b in 0..<B { (dInput + b * T * C).update(from: dOut + b * C, count: C) }
    }

    public func meanPoolForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                attentionMask: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        for b in 0..<B {
            let y = out + b * C
            y.update(repeating: 0, count: C)
            var tokens: Float = 0
            for t in 0..<T where attentionMask[b * T + t] != 0 {
                let x = input + (b * T + t) * C
                for c in 0..<C { y[c] += x[c] }
                tokens += 1
            }
            // sentence-transformers clamps the token count at 1e-9 to survive empty rows.
            let inverse = 1 / max(tokens, 1e-9)
            for c in 0..<C { y[c] *= inverse }
        }
    }

    public func meanPoolBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                 attentionMask: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        for b in 0..<B {
            var tokens: Float = 0
            for t in 0..<T where attentionMask[b * T + t] != 0 { tokens += 1 }
            let inverse = 1 / max(tokens, 1e-9)
            let dy = dOut + b * C
            for t in 0..<T {
                let dx = dInput + (b * T + t) * C
                if attentionMask[b * T + t] != 0 {
                    for c in 0..<C { dx[c] = dy[c] * inverse }
                } else {
                    dx.update(repeating: 0, count: C)
                }
            }
        }
    }

    public func attentionPoolForward(out: UnsafeMutablePointer<Float>, weights: UnsafeMutablePointer<Float>,
                                     scores: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                     attentionMask: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        for b in 0..<B {
            let s = scores + b * T, mask = attentionMask + b * T, a = weights + b * T
            var maximum = -Float.infinity
            for t in 0..<T where mask[t] != 0 { maximum = max(maximum, s[t]) }
            var sum: Float = 0
            for t in 0..<T {
                a[t] = mask[t] != 0 ? expf(s[t] - maximum) : 0
                sum += a[t]
            }
            // A row of padding alone pools to zero rather than to NaN.
            let inverse = sum > 0 ? 1 / sum : 0
            let y = out + b * C
            y.update(repeating: 0, count: C)
            for t in 0..<T {
                a[t] *= inverse
                guard a[t] != 0 else { continue }
                let x = input + (b * T + t) * C
                for c in 0..<C { y[c] += a[t] * x[c] }
            }
        }
    }

    public func attentionPoolBackward(dInput: UnsafeMutablePointer<Float>, dScores: UnsafeMutablePointer<Float>,
                                      dOut: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                                      input: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        for b in 0..<B {
            let dy = dOut + b * C, a = weights + b * T, ds = dScores + b * T
            var weighted: Float = 0 // sum over t of a[t] (dy . x[t])
            for t in 0..<T {
                let x = input + (b * T + t) * C, dx = dInput + (b * T + t) * C
                var dot: Float = 0
                for c in 0..<C {
                    dot += dy[c] * x[c]
                    dx[c] = a[t] * dy[c]
                }
                ds[t] = dot
                weighted += a[t] * dot
            }
            for t in 0..<T { ds[t] = a[t] * (ds[t] - weighted) }
        }
    }

    private func inverseSum(_ weights: UnsafePointer<Float>, _ K: Int) -> Float {
        var sum: Float = 0
        for l in 0..<K { sum += weights[l] }
        return 1 / sum
    }

    public func layerPoolForward(out: UnsafeMutablePointer<Float>, states: UnsafePointer<Float>, stride: Int,
                                 weights: UnsafePointer<Float>, B: Int, T: Int, C: Int, K: Int) {
        let inverse = inverseSum(weights, K)
        for b in 0..<B {
            let y = out + b * C
            y.update(repeating: 0, count: C)
            for l in 0..<K {
                let x = states + l * stride + b * T * C
                for c in 0..<C { y[c] += weights[l] * x[c] }
            }
            for c in 0..<C { y[c] *= inverse }
        }
    }

    public func layerPoolWeightsBackward(dWeights: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                         out: UnsafePointer<Float>, states: UnsafePointer<Float>, stride: Int,
                                         weights: UnsafePointer<Float>, B: Int, T: Int, C: Int, K: Int) {
        let inverse = inverseSum(weights, K)
        for l in 0..<K {
            // Each example's products summed apart first: one running sum over all B C of them
            // would lose about as many bits as the cancelling differences carry.
            var sum: Float = 0
            for b in 0..<B {
                let x = states + l * stride + b * T * C, y = out + b * C, dy = dOut + b * C
                var example: Float = 0
                for c in 0..<C { example += dy[c] * (x[c] - y[c]) }
                sum += example
            }
            dWeights[l] += sum * inverse
        }
    }

    public func layerPoolStateBackward(dInput: UnsafeMutablePointer<Float>, accumulates: Bool,
                                       dOut: UnsafePointer<Float>, weights: UnsafePointer<Float>, layer: Int,
                                       B: Int, T: Int, C: Int, K: Int) {
        let share = weights[layer] * inverseSum(weights, K)
        if !accumulates { dInput.update(repeating: 0, count: B * T * C) }
        for b in 0..<B {
            let dx = dInput + b * T * C, dy = dOut + b * C
            for c in 0..<C { dx[c] += share * dy[c] }
        }
    }
}
